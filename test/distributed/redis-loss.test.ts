import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { deleteKeysUnder } from '../../src/platform/redis.ts';
import { countBy, runConcurrently, startHarness, until, type Harness } from '../support/harness.ts';

process.env.FLASHSALE_TEST_ENGINES = 'distributed';

/**
 * Redis on these machines keeps nothing on disk: a restart is a data loss. Deleting this test's
 * gate keys mid-sale is that loss (never FLUSHALL: other test files share the server).
 */
describe('the Redis gate loses its data mid-sale', () => {
  let h: Harness;
  let redis: Redis;
  before(async () => {
    h = await startHarness();
    redis = new Redis(h.system.config.REDIS_URL!);
  });
  after(async () => {
    redis.disconnect();
    await h.close();
  });

  const loseGateData = () => deleteKeysUnder(redis, `${h.system.config.REDIS_KEY_PREFIX}:gate:`);

  it('when the gate keys vanish during a burst, then nobody is admitted on an empty gate, it is rebuilt from PostgreSQL, and nothing is oversold', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 600, perUserLimit: 1 }] });
    const item = sale.items[0]!.id;
    const buyers = Array.from({ length: 1200 }, () => h.buyerToken());
    const first = await runConcurrently(400, 100, (i) =>
      h.http.request('POST', '/v1/orders', { token: buyers[i]!.token, body: { items: [{ saleItemId: item, quantity: 1 }] } }));
    const soldBefore = first.filter((r) => r.status === 201).length;
    assert.ok(soldBefore > 0 && soldBefore < 600, String(soldBefore));

    assert.ok((await loseGateData()) > 0, 'the gate had keys to lose');
    const during = await runConcurrently(800, 200, (i) =>
      h.http.request('POST', '/v1/orders', { token: buyers[400 + i]!.token, body: { items: [{ saleItemId: item, quantity: 1 }] } }));
    const outcomes = countBy(during, (r) => (r.status === 201 ? '201' : `${r.status} ${r.body?.error?.code}`));
    console.log('during the loss:', JSON.stringify(outcomes), 'sold before:', soldBefore);
    assert.deepEqual(Object.keys(outcomes).filter((k) => !['201', '409 sold_out', '503 unavailable'].includes(k)), [], JSON.stringify(outcomes));

    await until(async () => h.system.gate.ready(), 'the gate to be rebuilt');
    await h.system.broker.drain();
    const [row] = await h.system.db.query<{ sold: number; held: number; available: number; initial: number }>(
      'select sold, held, available, initial from stock_items where sale_item_id = $1', [item]);
    const created = soldBefore + (outcomes['201'] ?? 0);
    assert.equal(row!.held + row!.sold, created, 'every 201 is a hold, and every hold a 201');
    assert.ok(created <= 600, `oversold: ${created} > 600`);
    assert.equal(await h.system.inventory.available(item), row!.available, 'the rebuilt gate equals the database');
    assert.deepEqual((await h.system.audit({ quiet: true })).violations, []);
  });
});
