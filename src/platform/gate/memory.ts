import type { Admission, GateAdjustment, GateItem, GateLine, GateQuota, StockGate } from './gate.ts';

interface ItemState extends GateItem {
  quotas: Map<string, number>;
}

/** In-process counters; JavaScript's single thread makes each decision atomic. Rebuilt from the DB at start. */
export class MemoryStockGate implements StockGate {
  readonly kind = 'memory' as const;
  #items = new Map<string, ItemState>();
  #loaded = false;

  async open(rebuild: () => Promise<void>): Promise<void> {
    await rebuild();
  }

  async load(items: readonly GateItem[], quotas: readonly GateQuota[]): Promise<void> {
    for (const item of items) this.#items.set(item.saleItemId, { ...item, quotas: new Map() });
    for (const q of quotas) this.#items.get(q.saleItemId)?.quotas.set(q.userId, q.quantity);
    this.#loaded = true;
  }

  async admit(userId: string, lines: readonly GateLine[], nowMs: number): Promise<Admission> {
    const states: ItemState[] = [];
    // Running totals, so an attempt naming one item twice is judged on its sum (as the Redis script does).
    const taken = new Map<string, number>();
    for (const line of lines) {
      const item = this.#items.get(line.saleItemId);
      if (!item) return { ok: false, reason: 'unknown_item', saleItemId: line.saleItemId, remaining: 0 };
      const before = taken.get(line.saleItemId) ?? 0;
      if (nowMs < item.startsAt || nowMs >= item.endsAt) return { ok: false, reason: 'sale_not_active', saleItemId: line.saleItemId, remaining: item.available };
      if (item.available - before < line.quantity) return { ok: false, reason: 'sold_out', saleItemId: line.saleItemId, remaining: item.available };
      if ((item.quotas.get(userId) ?? 0) + before + line.quantity > item.perUserLimit) return { ok: false, reason: 'limit_exceeded', saleItemId: line.saleItemId, remaining: item.available };
      taken.set(line.saleItemId, before + line.quantity);
      states.push(item);
    }
    const remaining = lines.map((line, i) => {
      const item = states[i]!;
      item.available -= line.quantity;
      item.quotas.set(userId, (item.quotas.get(userId) ?? 0) + line.quantity);
      return item.available;
    });
    return { ok: true, remaining };
  }

  async release(userId: string, lines: readonly GateLine[]): Promise<void> {
    for (const line of lines) {
      const item = this.#items.get(line.saleItemId);
      if (!item) continue;
      item.available += line.quantity;
      const left = (item.quotas.get(userId) ?? 0) - line.quantity;
      if (left > 0) item.quotas.set(userId, left);
      else item.quotas.delete(userId);
    }
  }

  async adjust(changes: readonly GateAdjustment[]): Promise<void> {
    for (const change of changes) {
      const item = this.#items.get(change.saleItemId);
      if (!item) continue;
      item.available += change.availableDelta;
      item.perUserLimit = change.perUserLimit;
      item.startsAt = change.startsAt;
      item.endsAt = change.endsAt;
    }
  }

  async remove(saleItemIds: readonly string[]): Promise<void> {
    for (const id of saleItemIds) this.#items.delete(id);
  }

  async available(saleItemId: string): Promise<number | undefined> {
    return this.#items.get(saleItemId)?.available;
  }

  async quota(saleItemId: string, userId: string): Promise<number> {
    return this.#items.get(saleItemId)?.quotas.get(userId) ?? 0;
  }

  async ready(): Promise<boolean> {
    return this.#loaded;
  }
}
