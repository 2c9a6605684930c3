/**
 * Whether the broker is stopping, and the pauses stop() cuts short: a failed message held for
 * another try, or a dead letter waiting for the database, must not keep stop() waiting out a backoff.
 */
export class StopSignal {
  #stopping = false;
  #wake: Array<() => void> = [];

  get stopping(): boolean {
    return this.#stopping;
  }

  /** start(): work goes on. */
  clear(): void {
    this.#stopping = false;
  }

  /** stop(): no new work; what runs checks `stopping` and returns. */
  raise(): void {
    this.#stopping = true;
  }

  /** Ends every pause now running. */
  wakeAll(): void {
    for (const wake of this.#wake.splice(0)) wake();
  }

  /** Sleeps `ms`, or less if stop() is called. */
  pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = this.#wake.filter((w) => w !== done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref?.();
      this.#wake.push(done);
    });
  }
}
