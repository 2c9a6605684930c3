import type { FastifyInstance } from 'fastify';

/**
 * The contract every benchmark target other than flashsale itself fulfils. A baseline is one of the
 * seeds' approaches to a flash sale, implemented faithfully and small, behind the same purchase
 * route flashsale serves, so the load generator drives every run with the same requests:
 *
 *   POST /v1/orders   Authorization: Bearer <HS256 JWT, claim `sub` = buyer id>
 *   {"items": [{"saleItemId": "<uuid>", "quantity": 1}]}
 *
 *   201 {"id": "<order id>"}            accepted, durable (redis-prededuct: accepted into its queue)
 *   409 {"code": "sold_out" | "limit_exceeded", "message": "..."}
 *   401 {"code": "unauthorized", ...}   bad token
 *   503 {"code": "overloaded", ...} + Retry-After (seconds)   only if the approach sheds load
 */
export interface BenchItem {
  /** The sale item id buyers send as `saleItemId`. */
  id: string;
  stock: number;
  perUserLimit: number;
}

export interface BaselineEnv {
  /** PostgreSQL the baseline keeps its tables in. */
  databaseUrl: string;
  redisUrl: string;
  amqpUrl: string;
  jwtSecret: string;
  /**
   * Unique per run, `[a-z0-9_]{1,40}`: every schema, key and queue the baseline creates carries it,
   * so runs never see each other's data and teardown removes exactly what the run made.
   */
  namespace: string;
  /** Size of the baseline's PostgreSQL pool (default 20). */
  poolSize?: number;
}

export interface BaselineAudit {
  /** Units sold beyond the stock, summed over items, counted from the database (never the client). */
  oversold: number;
  /** Orders in the database (for redis-prededuct: once its consumer has drained the queue). */
  orders: number;
  /** Units in those orders. */
  units: number;
}

export interface RunningBaseline {
  /** Waits until asynchronous work accepted so far is durable (queue drained), then returns. */
  settle(): Promise<void>;
  audit(): Promise<BaselineAudit>;
  close(): Promise<void>;
}

export interface Baseline {
  name: 'guarded-update' | 'check-then-update' | 'serialized-consumer' | 'batched' | 'redis-prededuct';
  /** One line: which seed, and what the approach does. */
  description: string;
  /** Which engines it needs, so the bench skips it (and says why) where one is unreachable. */
  needs: ReadonlyArray<'postgres' | 'redis' | 'rabbitmq'>;
  /**
   * Creates its schema and the stock of `items` (fresh, in `env.namespace`), registers
   * `POST /v1/orders` on `app` (before `app.listen`), and returns the running baseline.
   */
  start(app: FastifyInstance, env: BaselineEnv, items: readonly BenchItem[]): Promise<RunningBaseline>;
  /** Drops everything the run created (schema, keys, queues). Safe to call twice. */
  teardown(env: BaselineEnv): Promise<void>;
}
