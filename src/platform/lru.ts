/**
 * A map that holds at most `capacity` entries: setting one more evicts the least recently used
 * (read or written). For caches keyed by what clients send, which would otherwise grow with every
 * new key an attacker makes up. A Map iterates in insertion order, so re-inserting on use keeps the
 * least recently used first.
 */
export class LruMap<K, V> {
  readonly #entries = new Map<K, V>();

  readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = capacity;
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`an LRU map needs a capacity of at least 1, not ${capacity}`);
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: K): V | undefined {
    if (!this.#entries.has(key)) return undefined;
    const value = this.#entries.get(key)!;
    this.#entries.delete(key);
    this.#entries.set(key, value);
    return value;
  }

  set(key: K, value: V): this {
    this.#entries.delete(key);
    this.#entries.set(key, value);
    if (this.#entries.size > this.capacity) this.#entries.delete(this.#entries.keys().next().value!);
    return this;
  }

  delete(key: K): boolean {
    return this.#entries.delete(key);
  }
}
