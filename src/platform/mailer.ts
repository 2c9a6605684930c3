import nodemailer, { type Transporter } from 'nodemailer';
import type { Config } from './config.ts';

/** One email. `messageId` is the sender's id for it (the notification id), stable across resends. */
export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  messageId: string;
}

/** A message as the JSON transport kept it. */
export interface StoredMail {
  messageId: string;
  from: string;
  to: string;
  subject: string;
  text: string;
}

/**
 * The mailer port. `send` resolves once the transport accepted the message and throws otherwise
 * (the caller retries). A resend carries the same Message-ID, so a receiver can drop the copy.
 */
export interface Mailer {
  readonly kind: 'json' | 'smtp';
  send(message: MailMessage): Promise<void>;
  close(): Promise<void>;
}

/** The Message-ID header for a sender's id: `<id@flashsale.local>`. */
export const messageIdHeader = (id: string): string => `<${id}@flashsale.local>`;

/** The JSON transport keeps at most this many messages in memory, newest last. */
const JSON_KEEP = 1000;

/**
 * Nodemailer behind the port: SMTP when `SMTP_URL` is set, otherwise the JSON transport, which
 * delivers nowhere and keeps the last messages in `sent` (development and tests).
 */
export class NodemailerMailer implements Mailer {
  readonly kind: 'json' | 'smtp';
  /** Messages the JSON transport accepted, oldest first; always empty over SMTP. */
  readonly sent: StoredMail[] = [];
  readonly #transport: Transporter;
  readonly #from: string;

  constructor(config: Pick<Config, 'SMTP_URL' | 'MAIL_FROM'>) {
    this.#from = config.MAIL_FROM;
    if (config.SMTP_URL) {
      this.kind = 'smtp';
      // Handlers run one at a time per broker pass: a silent server must not hold the pass for minutes.
      this.#transport = nodemailer.createTransport({ url: config.SMTP_URL, connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 30_000 });
    } else {
      this.kind = 'json';
      this.#transport = nodemailer.createTransport({ jsonTransport: true });
    }
  }

  async send(message: MailMessage): Promise<void> {
    const messageId = messageIdHeader(message.messageId);
    await this.#transport.sendMail({ from: this.#from, to: message.to, subject: message.subject, text: message.text, messageId });
    if (this.kind === 'json') {
      this.sent.push({ messageId, from: this.#from, to: message.to, subject: message.subject, text: message.text });
      if (this.sent.length > JSON_KEEP) this.sent.splice(0, this.sent.length - JSON_KEEP);
    }
  }

  async close(): Promise<void> {
    this.#transport.close();
  }
}

export function createMailer(config: Pick<Config, 'SMTP_URL' | 'MAIL_FROM'>): NodemailerMailer {
  return new NodemailerMailer(config);
}
