/**
 * Every failure a client can see, declared once: its code, HTTP status and default message.
 * Business code throws `AppError`; only the HTTP edge turns it into a response (see http/server.ts).
 * docs/api.md documents this table.
 */
export const ERRORS = {
  validation_failed: { status: 422, message: 'The request is not valid.' },
  invalid_json: { status: 400, message: 'The body is not valid JSON.' },
  bad_request: { status: 400, message: 'The request is malformed.' },
  unsupported_media_type: { status: 415, message: 'Send the body as application/json.' },
  payload_too_large: { status: 413, message: 'The body is too large.' },
  uri_too_long: { status: 414, message: 'The URL is too long.' },
  unauthorized: { status: 401, message: 'A valid bearer token is required.' },
  invalid_credentials: { status: 401, message: 'Email or password is wrong.' },
  forbidden: { status: 403, message: 'Your role may not do this.' },
  not_found: { status: 404, message: 'Not found.' },
  route_not_found: { status: 404, message: 'No such route.' },
  method_not_allowed: { status: 405, message: 'Method not allowed.' },
  email_taken: { status: 409, message: 'That email is already registered.' },
  sold_out: { status: 409, message: 'Sold out.' },
  limit_exceeded: { status: 409, message: 'You have reached the per-buyer limit for this item.' },
  sale_not_active: { status: 409, message: 'The sale is not open.' },
  hold_mode_mismatch: { status: 409, message: 'This sale does not hold stock this way.' },
  sale_started: { status: 409, message: 'The sale has started; it can no longer be edited.' },
  sale_ended: { status: 409, message: 'The sale has ended.' },
  sale_cancelled: { status: 409, message: 'The sale was cancelled.' },
  cart_empty: { status: 409, message: 'The cart holds nothing to check out.' },
  invalid_state: { status: 409, message: 'The order is not in a state that allows this.' },
  order_shipped: { status: 409, message: 'Lines of this order have shipped; cancel the lines not yet shipped instead.' },
  idempotency_key_reused: { status: 422, message: 'This Idempotency-Key was used with a different request.' },
  idempotency_in_progress: { status: 409, message: 'A request with this Idempotency-Key is still in progress.' },
  unknown_item: { status: 422, message: 'The item does not exist.' },
  unknown_product: { status: 422, message: 'The product does not exist in your shop.' },
  invalid_signature: { status: 400, message: 'The webhook signature is missing, wrong or stale.' },
  payment_window_closed: { status: 409, message: 'The payment window of this order has closed.' },
  rate_limited: { status: 429, message: 'Too many requests; retry later.' },
  payment_unavailable: { status: 503, message: 'The payment provider is unavailable; retry later.' },
  overloaded: { status: 503, message: 'The server is shedding load; retry later.' },
  unavailable: { status: 503, message: 'A dependency is unavailable; retry later.' },
  internal: { status: 500, message: 'Internal error.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

export class AppError extends Error {
  static {
    this.prototype.name = 'AppError';
  }
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: unknown;
  /** Seconds the client should wait before retrying (429/503). */
  readonly retryAfterS: number | undefined;

  constructor(code: ErrorCode, message?: string, opts: { details?: unknown; retryAfterS?: number; cause?: unknown } = {}) {
    const status = ERRORS[code].status;
    // A client's error is an answer, not a fault: no stack to capture (a sold-out flood creates thousands a second).
    const stackTraceLimit = Error.stackTraceLimit;
    if (status < 500) Error.stackTraceLimit = 0;
    try {
      super(message ?? ERRORS[code].message, { cause: opts.cause });
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
    this.code = code;
    this.status = status;
    this.details = opts.details;
    this.retryAfterS = opts.retryAfterS;
  }
}

export const isAppError = (e: unknown): e is AppError => e instanceof AppError;
