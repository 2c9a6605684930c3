/** ioredis' own slot calculator (a dependency of ioredis, untyped); the gate's tests use it to check hash tags. */
declare module 'cluster-key-slot' {
  /** The Redis Cluster slot (0–16383) of a key, honouring its first `{hash tag}`. */
  export default function calculateSlot(key: string | Buffer): number;
  /** The slot shared by all keys, or -1 when they differ. */
  export function generateMulti(keys: ReadonlyArray<string | Buffer>): number;
}
