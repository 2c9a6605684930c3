import amqp, { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage } from 'amqplib';
import { withTimeout } from './publish.ts';

/**
 * One generation of AMQP connections: a publishing connection (a confirm channel for every publish,
 * a channel for queue checks) and a consuming connection (one channel per consumer), kept apart
 * because RabbitMQ's flow control blocks publishing connections and must never stall acks.
 *
 * amqplib does not reconnect. A session never repairs itself: the first unexpected close of any of
 * its connections or channels marks it dead (onDead runs once) and closes the rest; the broker then
 * opens a new session and declares the topology again. Unacked deliveries of a dead session go
 * back to their queues (RabbitMQ requeues them when the channel goes), so nothing is lost.
 */
export class Session {
  #alive = true;
  #closing = false;
  #models: ChannelModel[] = [];
  #channels: Channel[] = [];
  #consumers: Array<{ channel: Channel; tag: string; queue: string }> = [];
  #onDead: (error: Error) => void;
  publisher!: ChannelModel;
  consumer!: ChannelModel;
  confirm!: ConfirmChannel;
  admin!: Channel;

  private constructor(onDead: (error: Error) => void) {
    this.#onDead = onDead;
  }

  /** Opens both connections; `setup` runs on a throwaway channel (topology declaration). */
  static async open(url: string, name: string, rpcTimeoutMs: number, setup: (channel: Channel) => Promise<void>, onDead: (error: Error) => void): Promise<Session> {
    const session = new Session(onDead);
    try {
      session.publisher = await session.#connect(url, `${name} publisher`, rpcTimeoutMs);
      const setupChannel = await session.publisher.createChannel();
      setupChannel.on('error', () => {});
      await withTimeout(setup(setupChannel), rpcTimeoutMs * 4, 'declaring the RabbitMQ topology timed out');
      await setupChannel.close().catch(() => {});
      session.confirm = session.#watch(await session.publisher.createConfirmChannel(), 'publisher confirm channel');
      session.admin = session.#watch(await session.publisher.createChannel(), 'admin channel');
      session.consumer = await session.#connect(url, `${name} consumer`, rpcTimeoutMs);
      return session;
    } catch (error) {
      session.#alive = false;
      await session.close();
      throw error;
    }
  }

  get alive(): boolean {
    return this.#alive;
  }

  /** Consumes `queue` on a channel of its own with `prefetch` unacked messages at most. */
  async consume(queue: string, prefetch: number, onMessage: (channel: Channel, message: ConsumeMessage) => void): Promise<void> {
    const channel = this.#watch(await this.consumer.createChannel(), `consumer channel of ${queue}`);
    await channel.prefetch(prefetch, false);
    const { consumerTag } = await channel.consume(queue, (message) => {
      // null: RabbitMQ cancelled the consumer (queue deleted, leader lost): start over.
      if (message === null) return this.fail(new Error(`RabbitMQ cancelled the consumer of ${queue}`));
      try {
        onMessage(channel, message);
      } catch (error) {
        // An exception escaping here would tear down amqplib's frame loop for the whole connection.
        this.fail(error instanceof Error ? error : new Error(String(error)));
      }
    }, { noAck: false });
    this.#consumers.push({ channel, tag: consumerTag, queue });
  }

  /**
   * Ready messages in `queue`, asked on the channel that consumes it. RabbitMQ sends a delivery and
   * this answer from the same queue process to the same channel, in order: once it answers, every
   * message it no longer counts as ready has reached our callback. (Asked on another channel, a
   * delivery could still be on the wire, in neither count.)
   */
  async readyCount(queue: string, timeoutMs: number): Promise<number> {
    const channel = this.#consumers.find((c) => c.queue === queue)?.channel ?? this.admin;
    return (await withTimeout(channel.checkQueue(queue), timeoutMs, `checkQueue ${queue}`)).messageCount;
  }

  /**
   * Runs `use` on a publisher channel of its own, closed afterwards: a failed RPC (a missing queue,
   * arguments that differ) closes the channel it happened on, and must not take the session with it.
   */
  async onThrowawayChannel<T>(use: (channel: Channel) => Promise<T>): Promise<T> {
    const channel = await this.publisher.createChannel();
    channel.on('error', () => {});
    try {
      return await use(channel);
    } finally {
      await channel.close().catch(() => {});
    }
  }

  /** Stops every consumer (basic.cancel): no new deliveries; unacked ones stay with us until acked or closed. */
  async cancelConsumers(timeoutMs: number): Promise<void> {
    for (const { channel, tag } of this.#consumers) {
      if (this.owns(channel)) await withTimeout(channel.cancel(tag), timeoutMs, 'basic.cancel').catch(() => {});
    }
  }

  /** Whether an ack or nack on `channel` can still reach RabbitMQ. */
  owns(channel: Channel): boolean {
    return this.#alive && this.#channels.includes(channel);
  }

  /** Channels and connections, for tests that break them from outside. */
  get channels(): readonly Channel[] {
    return this.#channels;
  }

  /** Marks the session dead (once) and closes everything it holds. */
  fail(error: Error): void {
    if (!this.#alive || this.#closing) return;
    this.#alive = false;
    this.#onDead(error);
    void this.close();
  }

  /** Deliberate close: no onDead. Unacked deliveries are requeued by RabbitMQ. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#alive = false;
    for (const model of this.#models) {
      try {
        await withTimeout(model.close(), 2000, 'connection close');
      } catch {
        // already closed, or the peer is gone: nothing left to close
      }
    }
  }

  async #connect(url: string, connectionName: string, timeoutMs: number): Promise<ChannelModel> {
    // noDelay: amqplib leaves Nagle on, and a confirm or an ack then waits for the peer's delayed
    // ACK (~40 ms) — a round trip per message at a few dozen messages a second.
    const model = await amqp.connect(withHeartbeat(url), { clientProperties: { connection_name: connectionName }, timeout: timeoutMs, noDelay: true });
    this.#models.push(model);
    model.on('error', () => {}); // 'close' follows, with the error
    model.on('close', (error?: Error) => this.fail(error ?? new Error(`${connectionName} connection closed`)));
    model.on('blocked', () => {}); // flow control: publishes wait; confirm timeouts cover it
    return model;
  }

  #watch<C extends Channel>(channel: C, what: string): C {
    this.#channels.push(channel);
    let lastError: Error | undefined;
    channel.on('error', (error: Error) => {
      lastError = error;
    });
    channel.on('close', () => this.fail(lastError ?? new Error(`${what} closed`)));
    return channel;
  }
}

/** Heartbeats detect a dead peer (a silent network drop) when the URL does not choose its own. */
function withHeartbeat(url: string): string {
  try {
    const parsed = new URL(url);
    if (!parsed.searchParams.has('heartbeat')) parsed.searchParams.set('heartbeat', '15');
    return parsed.toString();
  } catch {
    return url;
  }
}
