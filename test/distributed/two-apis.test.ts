import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { buildHttpApp, buildSystem, type System } from '../../src/app.ts';
import type { App } from '../../src/platform/http/server.ts';
import { freshAmqpPrefix, freshPostgres, freshRedisPrefix } from '../support/engines.ts';
import { countBy, httpClient, runConcurrently, testConfig, type HttpClient } from '../support/harness.ts';
import { createPspServer, type PspServer } from '../../src/psp/index.ts';

/**
 * Two API instances on one PostgreSQL database and one Redis gate: what one sells the other cannot
 * sell again, a sale created on one is on sale on the other, and the books balance.
 */
describe('two API instances sharing PostgreSQL and Redis', () => {
  const apis: Array<{ system: System; app: App; http: HttpClient }> = [];
  let drops: Array<() => Promise<void>> = [];
  let psp: PspServer;

  before(async () => {
    // The audit reconciles money with the payment provider: both instances talk to one simulator.
    psp = await createPspServer({ config: testConfig({ PSP_DATA_DIR: 'memory://' }) });
    const pspUrl = await psp.listen({ host: '127.0.0.1', port: 0 });
    const postgres = await freshPostgres();
    const redis = await freshRedisPrefix();
    const rabbit = await freshAmqpPrefix();
    drops = [() => rabbit.drop(apis.map((api) => api.system.broker)), () => postgres.drop(), () => redis.drop()];
    for (let i = 0; i < 2; i++) {
      const config = testConfig({
        DATABASE_URL: postgres.url, REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.prefix, AMQP_URL: rabbit.url, AMQP_PREFIX: rabbit.prefix, CATALOG_REFRESH_MS: 100_000, PSP_URL: pspUrl,
      });
      // Each instance gets its own connection pool, as a separate process would.
      const system = await buildSystem(config);
      const app = await buildHttpApp(system);
      await system.start();
      const url = await app.listen({ host: '127.0.0.1', port: 0 });
      apis.push({ system, app, http: httpClient(url, 64) });
    }
  });

  after(async () => {
    for (const api of apis) {
      await api.http.close();
      await api.app.close();
      await api.system.close();
    }
    for (const drop of drops) await drop();
    await psp.close();
  });

  it('when 3,000 buyers race for 200 units over both instances, then exactly 200 orders and the audit is clean on each', async () => {
    const [a, b] = apis as [typeof apis[number], typeof apis[number]];
    const { shop } = await a.system.accounts.createMerchant(`m-${randomUUID()}@two.test`, 'merchant-password', 'Two');
    const product = await a.system.catalog.createProduct(shop.id, { name: 'Thing', price: 1000, currency: 'USD' });
    const now = Date.now();
    const sale = await a.system.catalog.createFlashSale(shop.id, {
      name: 'Shared', startsAt: new Date(now - 1000), endsAt: new Date(now + 3600_000), paymentWindowS: 600, holdMode: 'order',
      items: [{ productId: product.id, flashPrice: 500, stock: 200, perUserLimit: 1 }],
    });
    const itemId = sale.items[0]!.id;
    const seenByB = await b.http.request('GET', `/v1/flash-sales/${sale.id}`);
    assert.equal(seenByB.status, 200, 'a sale created on A is readable on B before any refresh');

    const buyers = Array.from({ length: 3000 }, () => randomUUID());
    const responses = await runConcurrently(3000, 600, (i) => {
      const api = i % 2 === 0 ? a : b;
      const token = api.system.tokens.issue({ userId: buyers[i]!, role: 'buyer' });
      return api.http.request('POST', '/v1/orders', { token, body: { items: [{ saleItemId: itemId, quantity: 1 }] } });
    });
    const outcomes = countBy(responses, (r) => (r.status === 201 ? 'created' : `${r.status} ${r.body?.error?.code}`));
    assert.deepEqual(outcomes, { created: 200, '409 sold_out': 2800 });
    const createdOn = countBy(responses.map((r, i) => ({ r, i })).filter((x) => x.r.status === 201), (x) => (x.i % 2 === 0 ? 'a' : 'b'));
    assert.ok((createdOn.a ?? 0) > 0 && (createdOn.b ?? 0) > 0, `both instances sold: ${JSON.stringify(createdOn)}`);
    await a.system.broker.drain();
    await b.system.broker.drain();
    for (const api of apis) assert.deepEqual((await api.system.audit({ quiet: true })).violations, []);
  });
});
