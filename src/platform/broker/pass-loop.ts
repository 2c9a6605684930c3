/**
 * The polling loop both brokers drive their outbox relay with: runs `pass` — never two at once —
 * again at once while a pass makes progress or someone nudged meanwhile, otherwise after `pollMs`.
 */
export class PassLoop {
  #timer: NodeJS.Timeout | undefined;
  #pass: Promise<boolean> | undefined;
  #again = false;
  #running = false;

  private readonly pass: () => Promise<boolean>;
  private readonly pollMs: number;
  private readonly onError: (error: unknown) => void;

  constructor(
    pass: () => Promise<boolean>,
    pollMs: number,
    onError: (error: unknown) => void,
  ) {
    this.pass = pass;
    this.pollMs = pollMs;
    this.onError = onError;
  }

  /** A pass is running now. */
  get busy(): boolean {
    return this.#pass !== undefined;
  }

  start(): void {
    this.#running = true;
    this.#schedule(0);
  }

  /** No new passes; resolves once the running one (if any) has ended. */
  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#timer);
    await this.#pass?.catch(() => {});
  }

  /** New work: run a pass now, or right after the running one. */
  nudge(): void {
    if (!this.#running) return;
    if (this.#pass) this.#again = true;
    else this.#schedule(0);
  }

  /** One pass, after the running one if any; true if it made progress. */
  runOnce(): Promise<boolean> {
    if (this.#pass) return this.#pass.then(() => this.runOnce(), () => this.runOnce());
    const pass = this.pass();
    this.#pass = pass;
    return pass.finally(() => {
      if (this.#pass === pass) this.#pass = undefined;
    });
  }

  #schedule(ms: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#tick(), ms);
    this.#timer.unref?.();
  }

  async #tick(): Promise<void> {
    if (!this.#running) return;
    if (this.#pass) {
      this.#again = true;
      return;
    }
    let progressed = false;
    try {
      progressed = await this.runOnce();
    } catch (error) {
      this.onError(error);
    }
    if (!this.#running) return;
    const more = progressed || this.#again;
    this.#again = false;
    this.#schedule(more ? 0 : this.pollMs);
  }
}
