import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Config } from '../platform/config.ts';
import { AppError, isAppError } from '../platform/errors.ts';
import { clientAddress, type App, type Hook } from '../platform/http/server.ts';
import { normalizeEmail } from './model.ts';

/** The login and register limits' settings (docs/operations.md, "Login and register limits"). */
export type AccountLimits = Pick<Config,
  | 'RATE_LIMIT_LOGIN_ACCOUNT_MAX' | 'RATE_LIMIT_LOGIN_ACCOUNT_WINDOW_MS'
  | 'RATE_LIMIT_LOGIN_IP_MAX' | 'RATE_LIMIT_LOGIN_IP_WINDOW_MS'
  | 'RATE_LIMIT_REGISTER_IP_MAX' | 'RATE_LIMIT_REGISTER_IP_WINDOW_MS'>;

export interface AccountThrottle {
  /** preHandler of login: attempts per client address. */
  loginPerAddress: Hook;
  /** preHandler of register: attempts per client address. */
  registerPerAddress: Hook;
  /** Runs the password check of a login request under the per-account limit of failed logins. */
  checkingFailures<T>(request: FastifyRequest, check: () => Promise<T>): Promise<T>;
}

const tooMany = (message: string, ttlInSeconds: number) => new AppError('rate_limited', message, { retryAfterS: Math.max(1, ttlInSeconds) });

/**
 * The limits are @fastify/rate-limit limiters (app.createRateLimit), so they count in the store the
 * plugin was registered with: Redis under `<REDIS_KEY_PREFIX>:rate-limit:` when REDIS_URL is set,
 * shared by every API process; otherwise this process's bounded LRU.
 */
export function accountThrottle(app: App, limits: AccountLimits): AccountThrottle {
  return {
    loginPerAddress: perAddress(app, 'login-ip', limits.RATE_LIMIT_LOGIN_IP_MAX, limits.RATE_LIMIT_LOGIN_IP_WINDOW_MS, 'Too many login attempts from this address; retry later.'),
    registerPerAddress: perAddress(app, 'register-ip', limits.RATE_LIMIT_REGISTER_IP_MAX, limits.RATE_LIMIT_REGISTER_IP_WINDOW_MS, 'Too many registrations from this address; retry later.'),
    checkingFailures: failedLoginLimit(app, limits.RATE_LIMIT_LOGIN_ACCOUNT_MAX, limits.RATE_LIMIT_LOGIN_ACCOUNT_WINDOW_MS),
  };
}

/** Every attempt counts; beyond `max` in the window, 429 until it ends. */
function perAddress(app: App, name: string, max: number, windowMs: number, message: string): Hook {
  const attempt = app.createRateLimit({ max, timeWindow: windowMs, keyGenerator: (request) => `${name}:${clientAddress(request)}` });
  return async (request) => {
    const verdict = await attempt(request);
    if (!verdict.isAllowed && verdict.isExceeded) throw tooMany(message, verdict.ttlInSeconds);
  };
}

/**
 * The store key of the account a login request names: a digest of the normalized email, the same
 * for a known and an unknown one (the limit must not tell which exist), and no email in clear in Redis.
 */
function accountKey(request: FastifyRequest): string {
  const { email } = request.body as { email?: unknown };
  return `login-account:${createHash('sha256').update(normalizeEmail(String(email))).digest('hex').slice(0, 32)}`;
}

/**
 * Failed logins per account, from any address. The count is read before the password is checked and
 * raised only after a wrong one, so right passwords cost nothing. Checks of one account run one at a
 * time in this process: otherwise a burst of guesses would all read the count before the first
 * failure raised it. Across N API processes a burst can still overshoot by at most N - 1.
 */
function failedLoginLimit(app: App, max: number, windowMs: number): AccountThrottle['checkingFailures'] {
  const failures = app.createRateLimit({ max, timeWindow: windowMs, keyGenerator: accountKey });
  const oneAtATime = serializedByKey();
  return (request, check) =>
    oneAtATime(accountKey(request), async () => {
      const seen = await failures(request, { increment: false });
      if (!seen.isAllowed && seen.remaining === 0) throw tooMany('Too many failed logins for this account; retry later.', seen.ttlInSeconds);
      try {
        return await check();
      } catch (error) {
        if (isAppError(error) && error.code === 'invalid_credentials') await failures(request);
        throw error;
      }
    });
}

/**
 * Runs tasks with the same key one after another. A key is forgotten when its last task ends, so the
 * map holds only keys with a task in flight (bounded by the requests in flight).
 */
function serializedByKey(): <T>(key: string, task: () => Promise<T>) => Promise<T> {
  const tails = new Map<string, Promise<void>>();
  return async (key, task) => {
    const run = (tails.get(key) ?? Promise.resolve()).then(task);
    const tail = run.then(() => undefined, () => undefined);
    tails.set(key, tail);
    try {
      return await run;
    } finally {
      if (tails.get(key) === tail) tails.delete(key);
    }
  };
}
