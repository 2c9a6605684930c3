import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { buildSystem, type System } from '../../src/app.ts';
import { freshAmqpPrefix, freshPostgres, freshRedisPrefix } from '../support/engines.ts';
import { testConfig, until } from '../support/harness.ts';

/**
 * On a fresh RabbitMQ, an API process may publish before any worker ever ran. Every process declares
 * every consumer group's queue, so those first events wait for their worker instead of vanishing.
 */
describe('a worker that starts after the first events', () => {
  const systems: System[] = [];
  const drops: Array<() => Promise<void>> = [];
  after(async () => {
    for (const system of systems) await system.close();
    for (const drop of drops) await drop();
  });

  it('when an API-only process sells before any notification worker exists, then the worker started later still notifies once', async () => {
    const postgres = await freshPostgres();
    const redis = await freshRedisPrefix();
    const rabbit = await freshAmqpPrefix();
    drops.push(() => rabbit.drop(systems.map((s) => s.broker)), () => postgres.drop(), () => redis.drop());
    const config = testConfig({ DATABASE_URL: postgres.url, REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.prefix, AMQP_URL: rabbit.url, AMQP_PREFIX: rabbit.prefix });

    const api = await buildSystem(config, { components: [] });
    systems.push(api);
    await api.start();
    const { shop } = await api.accounts.createMerchant(`m-${randomUUID()}@late.test`, 'merchant-password', 'Late');
    const product = await api.catalog.createProduct(shop.id, { name: 'Thing', price: 1000, currency: 'USD' });
    const sale = await api.catalog.createFlashSale(shop.id, {
      name: 'Early', startsAt: new Date(Date.now() - 1000), endsAt: new Date(Date.now() + 3600_000), paymentWindowS: 600, holdMode: 'order',
      items: [{ productId: product.id, flashPrice: 500, stock: 5, perUserLimit: 1 }],
    });
    const buyer = randomUUID();
    const order = await api.orders.placeOrder(buyer, [{ saleItemId: sale.items[0]!.id, quantity: 1 }]);
    await api.broker.drain();
    const published = await postgres.db.query(`select 1 from outbox where topic = 'order.created' and payload->>'orderId' = $1 and published_at is not null`, [order.id]);
    assert.equal(published.length, 1, 'the API relayed the event before any worker ran');

    const worker = await buildSystem(config, { components: ['notification'] });
    systems.push(worker);
    await worker.start();
    await until(async () => {
      await worker.broker.drain();
      return (await worker.notifications.listForUser(buyer, { limit: 10, offset: 0 })).length > 0;
    }, 'the late worker to notify');
    const notes = await worker.notifications.listForUser(buyer, { limit: 10, offset: 0 });
    assert.deepEqual(notes.map((n) => n.kind), ['order_placed']);
  });
});
