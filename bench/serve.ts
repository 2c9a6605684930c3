/**
 * One benchmark target as its own process, so the load generator never shares a CPU core's event
 * loop with the server it measures. The bench harness spawns:
 *
 *   node bench/serve.ts --target <ceiling|guarded-update|…> --port <n> --config <json-file>
 *
 * where the JSON file holds `{ env: BaselineEnv, items: BenchItem[] }`. Once listening on
 * 127.0.0.1:<port> it prints `READY <port>` on stdout. Besides `POST /v1/orders` it serves
 * `POST /__bench/settle` (waits for the target's queued work, answers `{}`) and `GET /__bench/audit`
 * (the BaselineAudit). SIGTERM closes the server and the baseline and tears its data down.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Baseline, BaselineAudit, BaselineEnv, BenchItem, RunningBaseline } from './baselines/baseline.ts';
import { BASELINES } from './baselines/index.ts';

const ServeConfig = Type.Object({
  env: Type.Object({
    databaseUrl: Type.String(),
    redisUrl: Type.String(),
    amqpUrl: Type.String(),
    jwtSecret: Type.String({ minLength: 1 }),
    namespace: Type.String({ pattern: '^[a-z0-9_]{1,40}$' }),
    poolSize: Type.Optional(Type.Integer({ minimum: 1 })),
  }),
  items: Type.Array(Type.Object({ id: Type.String(), stock: Type.Integer({ minimum: 0 }), perUserLimit: Type.Integer({ minimum: 1 }) })),
});
type ServeConfig = Static<typeof ServeConfig>;

interface Options {
  target: 'ceiling' | Baseline['name'];
  port: number;
  config: ServeConfig;
}

async function readOptions(argv: readonly string[]): Promise<Options> {
  const { values } = parseArgs({ args: [...argv], options: { target: { type: 'string' }, port: { type: 'string' }, config: { type: 'string' } }, strict: true });
  const target = values.target;
  if (target !== 'ceiling' && !BASELINES.some((b) => b.name === target)) throw new Error(`--target must be ceiling or one of ${BASELINES.map((b) => b.name).join(', ')}`);
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error('--port must be a port number');
  if (!values.config) throw new Error('--config <json-file> is required');
  const config: unknown = JSON.parse(await readFile(values.config, 'utf8'));
  if (!Value.Check(ServeConfig, config)) {
    const first = [...Value.Errors(ServeConfig, config)][0];
    throw new Error(`${values.config}: ${first ? `${first.path} ${first.message}` : 'not a serve config'}`);
  }
  return { target: target as Options['target'], port, config };
}

/** The upper bound of the route: Fastify's parsing and a fixed answer, nothing else. */
function ceiling(app: FastifyInstance): RunningBaseline {
  app.post('/v1/orders', async (_request, reply) => reply.code(409).send({ code: 'sold_out', message: 'sold out' }));
  const nothing: BaselineAudit = { oversold: 0, orders: 0, units: 0 };
  return { settle: async () => {}, audit: async () => nothing, close: async () => {} };
}

function benchRoutes(app: FastifyInstance, running: RunningBaseline): void {
  app.post('/__bench/settle', async () => {
    await running.settle();
    return {};
  });
  app.get('/__bench/audit', () => running.audit());
}

function fail(error: unknown): never {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
}

/** Closes in the order that loses nothing: no new requests, then the baseline's work, then its data. */
async function shutdown(app: FastifyInstance, running: RunningBaseline, baseline: Baseline | undefined, env: BaselineEnv): Promise<void> {
  await app.close();
  await running.close();
  await baseline?.teardown(env);
}

async function serve(options: Options): Promise<void> {
  const env: BaselineEnv = options.config.env;
  const items: BenchItem[] = options.config.items;
  const baseline = BASELINES.find((b) => b.name === options.target);
  const app = Fastify({ logger: false });
  let running: RunningBaseline;
  try {
    running = baseline ? await baseline.start(app, env, items) : ceiling(app);
  } catch (error) {
    // A half-started baseline may have created its schema or keys: leave nothing behind.
    await baseline?.teardown(env).catch(() => {});
    fail(error);
  }
  benchRoutes(app, running);
  await app.listen({ host: '127.0.0.1', port: options.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  process.stdout.write(`READY ${port}\n`);
  process.once('SIGTERM', () => {
    shutdown(app, running, baseline, env).then(() => process.exit(0), fail);
  });
}

readOptions(process.argv.slice(2)).then(serve).catch(fail);
