export type ErrorType = 'invalid_request_error' | 'api_error' | 'card_error' | 'idempotency_error' | 'authentication_error';

/** A Stripe-shaped error: `{ error: { type, code?, param?, message } }` with its HTTP status. */
export class PspError extends Error {
  override name = 'PspError';
  readonly status: number;
  readonly type: ErrorType;
  readonly code?: string;
  readonly param?: string;

  constructor(status: number, type: ErrorType, message: string, code?: string, param?: string) {
    super(message);
    this.status = status;
    this.type = type;
    this.code = code;
    this.param = param;
  }
  toBody(): { error: { type: ErrorType; message: string; code?: string; param?: string } } {
    return { error: { type: this.type, message: this.message, ...(this.code ? { code: this.code } : {}), ...(this.param ? { param: this.param } : {}) } };
  }
}
