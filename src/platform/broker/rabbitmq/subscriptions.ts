import type { Handler, SelfManagedHandler } from '../broker.ts';
import { validateConsumerName, validatePattern, type ConsumerTopology } from './topology.ts';

export type Subscription =
  | { consumer: string; topics: readonly string[]; transactional: true; handler: Handler }
  | { consumer: string; topics: readonly string[]; transactional: false; handler: SelfManagedHandler; concurrency?: number };

/** The consumer groups this process consumes, and those it only declares for other processes. */
export class Subscriptions {
  readonly #consumed: Subscription[] = [];
  /** Groups other processes consume: their queues are declared here too, never consumed. */
  readonly #declared: ConsumerTopology[] = [];

  /** The groups this process consumes, in the order they subscribed. */
  get consumed(): readonly Subscription[] {
    return this.#consumed;
  }

  add(sub: Subscription): void {
    if (this.consumes(sub.consumer)) throw new Error(`consumer ${sub.consumer} already registered`);
    validateConsumerName(sub.consumer);
    for (const topic of sub.topics) validatePattern(topic);
    this.#consumed.push(sub);
  }

  /** A group consumed elsewhere; nothing if this process consumes or declares it already. */
  declare(consumer: string, topics: readonly string[]): void {
    if (this.consumes(consumer) || this.#declared.some((d) => d.consumer === consumer)) return;
    this.#declared.push({ consumer, topics });
  }

  consumes(consumer: string): boolean {
    return this.#consumed.some((s) => s.consumer === consumer);
  }

  /**
   * Every group whose queues this process declares. Every process declares every group's queues:
   * an event published before its consumer ever ran must wait in that queue, not be dropped by an
   * exchange with nothing bound.
   */
  all(): ConsumerTopology[] {
    return [...this.#consumed, ...this.#declared.filter((d) => !this.consumes(d.consumer))];
  }
}
