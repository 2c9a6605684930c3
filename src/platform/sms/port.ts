/** One text message to one phone number. `messageId` is the sender's key: a resend with the same id is the same message. */
export interface SmsMessage {
  to: string;
  text: string;
  messageId: string;
}

/**
 * The SMS port: hands a message to an SMS provider. Resolves once the provider accepted it; a
 * throw means it may or may not have been accepted, and the caller resends with the same
 * `messageId`, which the provider deduplicates.
 */
export interface SmsSender {
  readonly kind: string;
  send(message: SmsMessage): Promise<{ providerId: string }>;
  close?(): Promise<void>;
}

/** Keeps messages in memory (tests, and the demo when no SMS provider is configured). */
export class MemorySmsSender implements SmsSender {
  readonly kind = 'memory';
  readonly sent: SmsMessage[] = [];
  readonly #byId = new Map<string, string>();

  async send(message: SmsMessage): Promise<{ providerId: string }> {
    const known = this.#byId.get(message.messageId);
    if (known) return { providerId: known };
    const providerId = `mem_${this.sent.length + 1}`;
    this.#byId.set(message.messageId, providerId);
    this.sent.push(message);
    return { providerId };
  }
}
