const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether text is a UUID (any case) — what a `uuid` column accepts, so a query on it cannot fail with 22P02. */
export function isUuid(text: string): boolean {
  return UUID.test(text);
}
