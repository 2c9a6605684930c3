/**
 * Runs the deliveries of one consumer, at most `concurrency` at a time, in arrival order. RabbitMQ's
 * prefetch bounds how many wait here; this bounds how many handlers run.
 */
export class Worker<T> {
  #buffer: T[] = [];
  #running = 0;
  #idle: Array<() => void> = [];

  private readonly concurrency: number;
  private readonly run: (item: T) => Promise<void>;

  constructor(
    concurrency: number,
    run: (item: T) => Promise<void>,
  ) {
    this.concurrency = concurrency;
    this.run = run;
  }

  push(item: T): void {
    this.#buffer.push(item);
    this.#pump();
  }

  /** Deliveries received and not yet finished (waiting or running). */
  get busy(): number {
    return this.#buffer.length + this.#running;
  }

  /** Forgets waiting deliveries (they are unacked: RabbitMQ requeues them when their channel closes). */
  clearWaiting(): void {
    this.#buffer = [];
  }

  /** Resolves once no handler runs. */
  idle(): Promise<void> {
    if (this.#running === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #pump(): void {
    while (this.#running < this.concurrency && this.#buffer.length > 0) {
      const item = this.#buffer.shift()!;
      this.#running++;
      void this.run(item)
        .catch(() => {})
        .finally(() => {
          this.#running--;
          if (this.#running === 0) for (const resolve of this.#idle.splice(0)) resolve();
          this.#pump();
        });
    }
  }
}
