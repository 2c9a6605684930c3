import type { Channel } from 'amqplib';
import type { Logger } from '../../logger.ts';
import { Session } from './session.ts';
import type { StopSignal } from './stop-signal.ts';
import { TopologyMismatchError } from './topology.ts';

/**
 * The broker's way to RabbitMQ: the current Session, and after any lost connection or channel a
 * new one with backoff, the topology declared again (idempotent: same arguments every time).
 */

export interface ConnectionOptions {
  url: string;
  /** Sessions name their connections `<name> publisher` and `<name> consumer`. */
  name: string;
  /** Any AMQP round trip not answered within this fails. */
  rpcTimeoutMs: number;
  /** Reconnect backoff after a lost connection or channel (default 100 ms doubling to 5 s). */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
}

/** What a new session gets before the broker uses it. */
export interface SessionSetup {
  /** Declares the topology, on a channel of its own. */
  declare(channel: Channel): Promise<void>;
  /** Starts consuming; the session is current already. */
  consume(session: Session): Promise<void>;
  /** The session is up. */
  up(): void;
}

export class Connection {
  #session: Session | undefined;
  #opening: Promise<void> | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #reconnectDelay: number;

  private readonly opts: ConnectionOptions;
  private readonly log: Logger;
  private readonly signal: StopSignal;
  private readonly setup: SessionSetup;

  constructor(
    opts: ConnectionOptions,
    log: Logger,
    signal: StopSignal,
    setup: SessionSetup,
  ) {
    this.opts = opts;
    this.log = log;
    this.signal = signal;
    this.setup = setup;
    this.#reconnectDelay = opts.reconnectMinMs ?? 100;
  }

  /** The current session, alive or not yet known dead; undefined between a loss and the reconnect. */
  get session(): Session | undefined {
    return this.#session;
  }

  /** A session being opened (start() or a reconnect). */
  get opening(): Promise<void> | undefined {
    return this.#opening;
  }

  /** The live session, or an error saying RabbitMQ is not connected. */
  require(): Session {
    const session = this.#session;
    if (!session?.alive) throw new Error('RabbitMQ is not connected');
    return session;
  }

  /** Opens a session, declares the topology, starts consuming; then it is current. */
  open(): Promise<void> {
    const opening = this.#openSession();
    this.#opening = opening;
    return opening.finally(() => {
      if (this.#opening === opening) this.#opening = undefined;
    });
  }

  /** stop(): the session is no longer current (stop() closes it). */
  forget(): void {
    this.#session = undefined;
  }

  /** stop(): no reconnect now pending runs. */
  cancelReconnect(): void {
    // The handle is cleared too: a stale one would keep a later start()'s lost connection from ever reconnecting.
    this.resetReconnect();
  }

  /** A failed start(): no reconnect pending, and the next loss may schedule one. */
  resetReconnect(): void {
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
  }

  async #openSession(): Promise<void> {
    let opened: Session | undefined;
    const session = await Session.open(this.opts.url, this.opts.name, this.opts.rpcTimeoutMs, (channel) => this.setup.declare(channel), (error) => this.#lost(opened, error));
    opened = session;
    if (this.signal.stopping) {
      await session.close();
      return;
    }
    // Current before the consumers start: their first deliveries may come before this resolves.
    this.#session = session;
    try {
      await this.setup.consume(session);
      if (!session.alive) throw new Error('the connection was lost while it was being set up');
    } catch (error) {
      if (this.#session === session) this.#session = undefined;
      await session.close();
      throw error;
    }
    this.#reconnectDelay = this.opts.reconnectMinMs ?? 100;
    this.setup.up();
  }

  #lost(session: Session | undefined, error: Error): void {
    if (!session || session !== this.#session) return;
    this.#session = undefined;
    if (this.signal.stopping) return;
    this.log.warn({ err: error }, 'RabbitMQ connection or channel lost; reconnecting');
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.signal.stopping || this.#reconnectTimer) return;
    const delay = this.#reconnectDelay * (0.75 + Math.random() / 2);
    this.#reconnectDelay = Math.min(this.opts.reconnectMaxMs ?? 5000, this.#reconnectDelay * 2);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.signal.stopping) return;
      this.open().catch((error: unknown) => {
        const level = error instanceof TopologyMismatchError ? 'error' : 'warn';
        this.log[level]({ err: error }, 'RabbitMQ reconnect failed; trying again');
        this.#scheduleReconnect();
      });
    }, delay);
    this.#reconnectTimer.unref?.();
  }
}

/** Why start() failed: a topology mismatch as it is, anything else with the URL (password hidden). */
export function connectFailure(url: string, error: unknown): Error {
  return error instanceof TopologyMismatchError ? error : new Error(`RabbitMQ: could not connect to ${redact(url)}: ${String(error)}`, { cause: error });
}

function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'AMQP_URL';
  }
}
