import { readFileSync } from 'node:fs';
import type { Cluster, Redis } from 'ioredis';
import type { GateAdjustment, GateItem, GateLine, GateQuota } from './gate.ts';
import { gateKeys } from './redis-keys.ts';

type Arg = string | number;
type Args = Array<Arg | readonly Arg[]>;

/** One script per decision, in `lua/`, named `name-<keys>.lua` with a header listing KEYS and ARGV. */
export interface GateScripts {
  gateAdmit(numKeys: number, ...args: Args): Promise<unknown>;
  gateRelease(numKeys: number, ...args: Args): Promise<unknown>;
  gateLoad(numKeys: number, ...args: Args): Promise<unknown>;
  gateDelIfEquals(numKeys: number, ...args: Args): Promise<unknown>;
  gateAdjust(numKeys: number, ...args: Args): Promise<unknown>;
}

const SCRIPT_FILES: Record<keyof GateScripts, string> = {
  gateAdmit: 'admit-2.lua',
  gateRelease: 'release-2.lua',
  gateLoad: 'load-2.lua',
  gateDelIfEquals: 'delIfEquals-1.lua',
  gateAdjust: 'adjust-1.lua',
};

const LUA = Object.fromEntries(
  Object.entries(SCRIPT_FILES).map(([name, file]) => [name, readFileSync(new URL(`./lua/${file}`, import.meta.url), 'utf8')]),
) as Record<keyof GateScripts, string>;

/**
 * Scripts are defined once per connection with ioredis' `defineCommand`: called by SHA, and a
 * `NOSCRIPT` (Redis restarted, `SCRIPT FLUSH`) is answered by resending the script, unseen by callers.
 */
export function defineScripts(client: Redis | Cluster): GateScripts {
  for (const [name, lua] of Object.entries(LUA)) client.defineCommand(name, { lua });
  return client as (Redis | Cluster) & GateScripts;
}

/** The scripts' result codes (see the headers in `lua/`). */
export const GateCode = { ok: 0, soldOut: 1, limitExceeded: 2, saleNotActive: 3, unknownItem: 4, gateNotLoaded: 5 } as const;

export type RefusalCode = 1 | 2 | 3 | 4 | 5;
export type Reply = { code: 0; remaining: number[] } | { code: RefusalCode; /** index into the lines */ line: number; remaining: number };

export function parseReply(raw: unknown): Reply {
  const values: unknown = raw;
  if (!Array.isArray(values) || !values.every((v): v is number => typeof v === 'number')) throw new Error(`unexpected gate script reply: ${JSON.stringify(raw)}`);
  const [code, ...rest] = values;
  if (code === GateCode.ok) return { code, remaining: rest };
  if (code === 1 || code === 2 || code === 3 || code === 4 || code === 5) return { code, line: (rest[0] ?? 1) - 1, remaining: rest[1] ?? 0 };
  throw new Error(`unexpected gate script code: ${String(code)}`);
}

export async function admitScript(scripts: GateScripts, prefix: string, generation: string, userId: string, lines: readonly GateLine[], nowMs: number): Promise<Reply> {
  const keys = lineKeys(prefix, lines);
  return parseReply(await scripts.gateAdmit(keys.length, keys, generation, userId, nowMs, lines.map((l) => l.quantity)));
}

export async function releaseScript(scripts: GateScripts, prefix: string, generation: string, userId: string, lines: readonly GateLine[]): Promise<Reply> {
  const keys = lineKeys(prefix, lines);
  return parseReply(await scripts.gateRelease(keys.length, keys, generation, userId, lines.map((l) => l.quantity)));
}

export async function adjustScript(scripts: GateScripts, prefix: string, generation: string, change: GateAdjustment): Promise<Reply> {
  const keys = gateKeys(prefix, change.saleItemId);
  return parseReply(await scripts.gateAdjust(1, keys.item, generation, change.availableDelta, change.perUserLimit, change.startsAt, change.endsAt));
}

/** Writes every item whole, with all its quotas, stamped with `stamp`. */
export async function loadScript(scripts: GateScripts, prefix: string, stamp: string, items: readonly GateItem[], quotas: readonly GateQuota[]): Promise<void> {
  const perItem = new Map<string, Arg[]>(items.map((item) => [item.saleItemId, []]));
  for (const q of quotas) perItem.get(q.saleItemId)?.push(q.userId, q.quantity);
  await Promise.all(items.map((item) => {
    const keys = gateKeys(prefix, item.saleItemId);
    return scripts.gateLoad(2, keys.item, keys.quota, stamp, item.available, item.perUserLimit, item.startsAt, item.endsAt, perItem.get(item.saleItemId)!);
  }));
}

function lineKeys(prefix: string, lines: readonly GateLine[]): string[] {
  return lines.flatMap((line) => {
    const keys = gateKeys(prefix, line.saleItemId);
    return [keys.item, keys.quota];
  });
}
