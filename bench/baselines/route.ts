import { randomUUID } from 'node:crypto';
import { createVerifier } from 'fast-jwt';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { BaselineEnv, BenchItem } from './baseline.ts';

/** One purchase as every baseline decides it: the route has already authenticated and validated it. */
export interface Purchase {
  /** Chosen by the route, so a baseline that answers before the order exists can still name it. */
  orderId: string;
  userId: string;
  item: BenchItem;
  quantity: number;
}

export type Refusal = 'sold_out' | 'limit_exceeded';
export type Decision = { ok: true } | { ok: false; reason: Refusal };
export type Decide = (purchase: Purchase) => Promise<Decision>;

interface PurchaseBody {
  items: Array<{ saleItemId: string; quantity: number }>;
}

/** Exactly one line: seed 001's consumer owns one item, so a request spanning two has no single owner. */
const BODY_SCHEMA = {
  type: 'object',
  required: ['items'],
  properties: {
    items: {
      type: 'array',
      minItems: 1,
      maxItems: 1,
      items: {
        type: 'object',
        required: ['saleItemId', 'quantity'],
        properties: { saleItemId: { type: 'string' }, quantity: { type: 'integer', minimum: 1, maximum: 1000 } },
      },
    },
  },
} as const;

const ANSWERS = {
  unauthorized: { status: 401, message: 'a valid bearer token is required' },
  validation_failed: { status: 422, message: 'send {"items": [{"saleItemId": "<id>", "quantity": <n>}]}' },
  unknown_item: { status: 422, message: 'no such sale item' },
  sold_out: { status: 409, message: 'sold out' },
  limit_exceeded: { status: 409, message: 'per-buyer limit reached' },
} as const;

function refuse(reply: FastifyReply, code: keyof typeof ANSWERS): FastifyReply {
  const { status, message } = ANSWERS[code];
  return reply.code(status).send({ code, message });
}

/** As flashsale (src/platform/tokens.ts): no verifier cache, which costs 3x on a stream of unique buyers. */
const VERIFIER_CACHE = false;

/** The same HS256 verification, with cache, that flashsale does: every target pays the same auth cost. */
function buyerVerifier(secret: string): (authorization: string | undefined) => string | undefined {
  const verify = createVerifier({ key: secret, algorithms: ['HS256'], cache: VERIFIER_CACHE });
  return (authorization) => {
    if (!authorization?.startsWith('Bearer ')) return undefined;
    try {
      const claims: unknown = verify(authorization.slice(7).trim());
      const sub = typeof claims === 'object' && claims !== null && 'sub' in claims ? claims.sub : undefined;
      return typeof sub === 'string' && sub.length > 0 ? sub : undefined;
    } catch {
      return undefined;
    }
  };
}

/**
 * Registers `POST /v1/orders` as the contract in baseline.ts describes it; `decide` is the approach.
 * Errors `decide` throws are left to Fastify (500): a baseline that fails should be seen failing.
 */
export function registerPurchaseRoute(app: FastifyInstance, env: BaselineEnv, items: readonly BenchItem[], decide: Decide): void {
  const buyer = buyerVerifier(env.jwtSecret);
  const byId = new Map(items.map((item) => [item.id, item]));
  app.post<{ Body: PurchaseBody }>('/v1/orders', { schema: { body: BODY_SCHEMA }, attachValidation: true }, async (request, reply) => {
    const userId = buyer(request.headers.authorization);
    if (userId === undefined) return refuse(reply, 'unauthorized');
    const line = request.validationError ? undefined : request.body.items[0];
    if (!line) return refuse(reply, 'validation_failed');
    const item = byId.get(line.saleItemId);
    if (!item) return refuse(reply, 'unknown_item');
    const orderId = randomUUID();
    const decision = await decide({ orderId, userId, item, quantity: line.quantity });
    if (!decision.ok) return refuse(reply, decision.reason);
    return reply.code(201).send({ id: orderId });
  });
}
