import { createHmac, timingSafeEqual } from 'node:crypto';
import { WebhookVerificationError } from './port.ts';

export interface SignatureKeys {
  /** Accepted signing secrets: more than one while a secret is being rolled. */
  webhookSecrets: readonly string[];
  /** Timestamps further than this from now (either way) are refused. */
  toleranceS: number;
}

/**
 * Checks a `t=…,v1=…` signature header against the raw body: one of its v1 signatures must be the
 * HMAC-SHA256 of `<t>.<body>` under one of the secrets, and `t` within the tolerance of now.
 * Throws WebhookVerificationError naming what is wrong.
 */
export function verifySignature(rawBody: string, signatureHeader: string | undefined, nowMs: number, keys: SignatureKeys): void {
  if (!signatureHeader) throw new WebhookVerificationError('missing signature header');
  const { timestamp, signatures } = parseSignatureHeader(signatureHeader);
  if (timestamp === undefined) throw new WebhookVerificationError('signature header has no timestamp');
  if (signatures.length === 0) throw new WebhookVerificationError('signature header has no v1 signature');
  if (!signedWithAny(keys.webhookSecrets, `${timestamp}.${rawBody}`, signatures)) throw new WebhookVerificationError('no signature matches the payload');
  if (Math.abs(nowMs / 1000 - timestamp) > keys.toleranceS) {
    throw new WebhookVerificationError(`timestamp ${timestamp} is outside the ${keys.toleranceS} s tolerance`);
  }
}

/** The `t` and every well-formed `v1`; malformed parts are skipped. */
function parseSignatureHeader(header: string): { timestamp: number | undefined; signatures: Buffer[] } {
  let timestamp: number | undefined;
  const signatures: Buffer[] = [];
  for (const part of header.split(',')) {
    const at = part.indexOf('=');
    if (at < 0) continue;
    const key = part.slice(0, at).trim();
    const value = part.slice(at + 1).trim();
    if (key === 't' && /^\d{1,12}$/.test(value)) timestamp = Number(value);
    else if (key === 'v1' && /^[0-9a-f]{64}$/i.test(value)) signatures.push(Buffer.from(value, 'hex'));
  }
  return { timestamp, signatures };
}

function signedWithAny(secrets: readonly string[], signedText: string, signatures: Buffer[]): boolean {
  return secrets.some((secret) => {
    const expected = createHmac('sha256', secret).update(signedText).digest();
    // Every candidate is compared (no early exit on the first byte that differs), in constant time.
    return signatures.map((given) => timingSafeEqual(given, expected)).includes(true);
  });
}
