import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Cluster } from 'ioredis';
import { gateContract } from '../../src/platform/gate/conformance.ts';
import { RedisStockGate } from '../../src/platform/gate/redis.ts';
import { redisTarget } from '../../src/platform/redis.ts';
import { countBy, httpClient, runConcurrently, startHarness, type Harness } from '../support/harness.ts';
import { startRedisCluster, type RedisClusterUnderTest } from '../support/redis-cluster.ts';

/**
 * REDIS_CLUSTER=true: the gate, the sold-out channel and the rate limits on a real three-master
 * Redis Cluster. Every decision touches one item's keys (one hash slot), so it shards.
 */
let cluster: RedisClusterUnderTest;
const gates: RedisStockGate[] = [];
before(async () => { cluster = await startRedisCluster(); });
after(async () => {
  await Promise.all(gates.map((g) => g.close()));
  await cluster.stop();
});

gateContract('redis cluster (three masters)', async () => {
  const gate = RedisStockGate.connect({ urls: cluster.urls, cluster: true }, { prefix: `test-${randomUUID()}` });
  gates.push(gate);
  return gate;
});

describe('the system on a Redis Cluster', () => {
  let h: Harness;
  before(async () => { h = await startHarness({ config: { REDIS_URL: cluster.urls.join(','), REDIS_CLUSTER: true, REDIS_KEY_PREFIX: `cluster-${randomUUID()}` } }); });
  after(() => h?.close());

  it('when the configuration names a cluster, then the gate talks to it as one', () => {
    assert.equal(h.system.gate.kind, 'redis');
    assert.throws(() => redisTarget({ REDIS_URL: cluster.urls.join(','), REDIS_CLUSTER: false }), /REDIS_CLUSTER/);
  });

  it('when buyers race for 3 items × 40 units with multi-line orders and every master is flushed mid-sale, then the gate is rebuilt before selling the rest and no item is oversold', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 40, perUserLimit: 1 }, { stock: 40, perUserLimit: 1 }, { stock: 40, perUserLimit: 1 }] });
    const ids = sale.items.map((i) => i.id);
    const client = httpClient(h.url, 64);
    const buy = (lines: string[]) => client.request('POST', '/v1/orders', { token: h.buyerToken().token, body: { items: lines.map((saleItemId) => ({ saleItemId, quantity: 1 })) } });
    const linesOf = (i: number) => (i % 3 === 0 ? [ids[i % 3]!, ids[(i + 1) % 3]!] : [ids[i % 3]!]);

    const first = await runConcurrently(60, 60, (i) => buy(linesOf(i)));
    assert.ok(first.filter((r) => r.status === 201).length > 0);
    for (const r of first) assert.ok(r.status === 201 || (r.status === 409 && r.body.error.code === 'sold_out'), `unexpected ${r.status} ${JSON.stringify(r.body)}`);

    // Data loss on every master (a cluster restarted without persistence).
    const admin = new Cluster([{ host: '127.0.0.1', port: Number(new URL(cluster.urls[0]!).port) }]);
    await new Promise((resolve) => admin.once('ready', resolve));
    await Promise.all(admin.nodes('master').map((m) => m.flushall()));
    admin.disconnect();
    const second = await runConcurrently(500, 128, (i) => buy(linesOf(i)));
    const outcomes = countBy(second, (r) => (r.status === 201 ? 'created' : `${r.status} ${r.body?.error?.code}`));
    for (const key of Object.keys(outcomes)) assert.ok(['created', '409 sold_out', '503 unavailable'].includes(key), `unexpected outcome ${key}`);
    assert.ok((outcomes.created ?? 0) > 0, `nothing sold after the flush: ${JSON.stringify(outcomes)}`);
    // Finish: anything still on sale is bought until every item is sold out.
    for (const id of ids) {
      for (let tries = 0; ((await h.system.inventory.available(id)) ?? 1) > 0; tries++) {
        assert.ok(tries < 200, `item ${id} never sold out`);
        const r = await buy([id]);
        assert.ok(r.status === 201 || r.status === 503, `unexpected ${r.status} ${JSON.stringify(r.body)}`);
      }
    }
    await client.close();
    for (const id of ids) assert.equal(await h.system.gate.available(id), 0);
    await h.system.broker.drain();
    const report = await h.system.audit({ quiet: true });
    assert.deepEqual(report.violations, []);
    const sold = await Promise.all(ids.map((id) => h.system.db.query<{ n: string }>('select coalesce(sum(quantity), 0)::text as n from order_items where sale_item_id = $1', [id])));
    assert.deepEqual(sold.map((rows) => Number(rows[0]!.n)), [40, 40, 40]);
  });
});
