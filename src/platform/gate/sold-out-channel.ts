import type { Cluster, Redis } from 'ioredis';
import { connectRedis, type RedisTarget } from '../redis.ts';

/**
 * Tells every API process when an item sells out or comes back, so losers are turned away by a
 * local flag without asking the gate. Losing a message is harmless: flags also expire by TTL.
 */
export interface SoldOutChannel {
  publish(saleItemId: string, soldOut: boolean): void;
  /** Called for changes announced by any process, this one included. */
  subscribe(listener: (saleItemId: string, soldOut: boolean) => void): void;
  close(): Promise<void>;
}

/** One process: nothing to tell anyone else. */
export class LocalSoldOutChannel implements SoldOutChannel {
  #listeners: Array<(saleItemId: string, soldOut: boolean) => void> = [];
  publish(saleItemId: string, soldOut: boolean): void {
    for (const listener of this.#listeners) listener(saleItemId, soldOut);
  }
  subscribe(listener: (saleItemId: string, soldOut: boolean) => void): void {
    this.#listeners.push(listener);
  }
  async close(): Promise<void> {}
}

/** Redis pub/sub: one publishing connection, one subscribed connection (a subscriber can do nothing else). */
export class RedisSoldOutChannel implements SoldOutChannel {
  #pub: Redis | Cluster;
  #sub: Redis | Cluster;
  #channel: string;
  #listeners: Array<(saleItemId: string, soldOut: boolean) => void> = [];

  constructor(target: RedisTarget, prefix: string) {
    this.#pub = connectRedis(target, { maxRetriesPerRequest: 1 });
    this.#sub = connectRedis(target);
    this.#channel = `${prefix}:sold-out`;
    // Errors surface through the gate and readiness; this channel is only an optimisation.
    this.#pub.on('error', () => {});
    this.#sub.on('error', () => {});
    this.#sub.on('message', (_channel: string, text: string) => {
      const soldOut = text.startsWith('1:');
      const saleItemId = text.slice(2);
      for (const listener of this.#listeners) listener(saleItemId, soldOut);
    });
    void this.#sub.subscribe(this.#channel).catch(() => {});
  }

  publish(saleItemId: string, soldOut: boolean): void {
    void this.#pub.publish(this.#channel, `${soldOut ? 1 : 0}:${saleItemId}`).catch(() => {});
  }

  subscribe(listener: (saleItemId: string, soldOut: boolean) => void): void {
    this.#listeners.push(listener);
  }

  async close(): Promise<void> {
    this.#sub.disconnect();
    this.#pub.disconnect();
  }
}
