/**
 * Whether an error says a backend (PostgreSQL, Redis) could not be reached or dropped the
 * connection, rather than refusing the work: the caller's trouble is the outage, not its request or
 * message. HTTP answers such a failure 503 with Retry-After; the brokers retry such an attempt
 * without counting it towards dead-lettering.
 */
export function isBackendUnavailable(error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 5) return false;
  const { code = '', name = '', message = '', cause } = error as { code?: string; name?: string; message?: string; cause?: unknown };
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', '57P01', '57P02', '57P03', '08006', '08003', '08001'].includes(code)) return true;
  // node-postgres reports a connection killed mid-query (pg_terminate_backend, a failover) without a code.
  if (name === 'MaxRetriesPerRequestError' || /^(Connection is closed|Stream isn't writeable|Connection terminated|Client has encountered a connection error)/.test(message)) return true;
  return isBackendUnavailable(cause, depth + 1);
}
