import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { scalar, startHarness, type Harness } from '../../test/support/harness.ts';

interface Merchant { token: string; shopId: string }

describe('catalog over HTTP', () => {
  let h: Harness;
  let alice: Merchant;
  let bob: Merchant;

  /** A merchant made the way a client would: the admin creates it, then it logs in. */
  async function merchantOverHttp(name: string): Promise<Merchant> {
    const email = `${name}@shops.example.com`;
    const created = await h.http.request('POST', '/v1/admin/merchants', { token: h.adminToken(), body: { email, password: 'merchant-pass', shopName: `${name}'s shop` } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const session = await h.http.request('POST', '/v1/auth/login', { body: { email, password: 'merchant-pass' } });
    assert.equal(session.status, 200, JSON.stringify(session.body));
    return { token: session.body.token, shopId: created.body.shop.id };
  }

  before(async () => {
    h = await startHarness();
    alice = await merchantOverHttp('alice');
    bob = await merchantOverHttp('bob');
  });
  after(() => h.close());

  const createProduct = (token: string, body: Record<string, unknown>) => h.http.request('POST', '/v1/products', { token, body });
  const product = async (m: Merchant, name: string, price = 10_000, currency = 'USD'): Promise<string> => {
    const res = await createProduct(m.token, { name, price, currency });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body.id;
  };
  const createSale = (token: string, body: Record<string, unknown>) => h.http.request('POST', '/v1/flash-sales', { token, body });
  const inHours = (hours: number) => new Date(Date.now() + hours * 3600_000).toISOString();
  /** Rows a rejected sale must not leave behind. */
  const saleRows = () => h.system.db.query('select (select count(*) from flash_sales) as sales, (select count(*) from sale_items) as items, (select count(*) from stock_items) as stock, (select count(*) from outbox) as outbox');

  describe('POST /v1/products', () => {
    it('when a merchant creates a product, then 201 and it belongs to the merchant’s own shop', async () => {
      const res = await createProduct(alice.token, { name: 'Kettle', price: 2599, currency: 'EUR' });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.shopId, alice.shopId);
      assert.equal(res.body.name, 'Kettle');
      assert.equal(res.body.description, '');
      assert.equal(res.body.price, 2599);
      assert.equal(res.body.currency, 'EUR');
      assert.ok(!Number.isNaN(Date.parse(res.body.createdAt)));
    });

    it('when a buyer creates a product, then 403 forbidden and nothing is stored', async () => {
      const before = await scalar(h.system, 'select count(*) from products');
      const res = await createProduct(h.buyerToken().token, { name: 'Kettle', price: 2599, currency: 'EUR' });
      assert.equal(res.status, 403);
      assert.equal(res.body.error.code, 'forbidden');
      assert.equal(await scalar(h.system, 'select count(*) from products'), before);
    });

    it('when the price is negative or fractional, or the currency is not an ISO code, then 422 and nothing is stored', async () => {
      const before = await scalar(h.system, 'select count(*) from products');
      const bad = [
        { price: -1, currency: 'USD' }, { price: 10.5, currency: 'USD' }, { price: '100', currency: 'USD' },
        { price: 100, currency: 'usd' }, { price: 100, currency: 'US' }, { price: 100, currency: 'USDX' }, { price: 100, currency: 840 },
      ];
      for (const fields of bad) {
        const res = await createProduct(alice.token, { name: 'Bad', ...fields });
        assert.equal(res.status, 422, JSON.stringify(fields));
        assert.equal(res.body.error.code, 'validation_failed');
      }
      assert.equal(await scalar(h.system, 'select count(*) from products'), before);
    });
  });

  describe('GET /v1/products', () => {
    it('when filtered by shopId, then only that shop’s products, newest first', async () => {
      const first = await product(bob, 'Bob first');
      const second = await product(bob, 'Bob second');
      const res = await h.http.request('GET', `/v1/products?shopId=${bob.shopId}`);
      assert.equal(res.status, 200);
      assert.ok(res.body.products.every((p: { shopId: string }) => p.shopId === bob.shopId));
      const ids = res.body.products.map((p: { id: string }) => p.id);
      assert.ok(ids.includes(first) && ids.includes(second));
      assert.ok(ids.indexOf(second) < ids.indexOf(first), 'newest first');
      const one = await h.http.request('GET', `/v1/products?shopId=${bob.shopId}&limit=1`);
      assert.equal(one.body.products.length, 1);
    });

    it('when limit is above 100, zero, or not a number, or shopId is not a uuid, then 422', async () => {
      for (const query of ['limit=1000', 'limit=0', 'limit=ten', 'offset=-1', 'shopId=shop-1', 'unknown=1']) {
        const res = await h.http.request('GET', `/v1/products?${query}`);
        assert.equal(res.status, 422, query);
        assert.equal(res.body.error.code, 'validation_failed');
      }
    });
  });

  describe('POST /v1/flash-sales', () => {
    it('when a merchant schedules a sale of its products, then 201 with the items, defaults applied and the stock on sale', async () => {
      const a = await product(alice, 'Sale item A');
      const b = await product(alice, 'Sale item B');
      const res = await createSale(alice.token, {
        name: 'Midnight madness', startsAt: inHours(1), endsAt: inHours(2),
        items: [{ productId: a, flashPrice: 999, stock: 50 }, { productId: b, flashPrice: 1999, stock: 5, perUserLimit: 2 }],
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.shopId, alice.shopId);
      assert.equal(res.body.status, 'scheduled');
      assert.equal(res.body.holdMode, 'order');
      assert.equal(res.body.paymentWindowS, 900);
      assert.equal(res.body.currency, 'USD');
      assert.deepEqual(res.body.items.map((i: { productName: string; stock: number; remaining: number; perUserLimit: number }) => [i.productName, i.stock, i.remaining, i.perUserLimit]),
        [['Sale item A', 50, 50, 1], ['Sale item B', 5, 5, 2]]);
      for (const item of res.body.items) assert.equal(await h.system.inventory.available(item.id), item.stock);
      const read = await h.http.request('GET', `/v1/flash-sales/${res.body.id}`);
      assert.equal(read.status, 200);
      assert.deepEqual(read.body, res.body);
    });

    it('when a product of ANOTHER merchant’s shop is in the sale, then 422 unknown_product naming it, and nothing is created', async () => {
      const mine = await product(alice, 'Mine');
      const theirs = await product(bob, 'Theirs');
      const before = await saleRows();
      const res = await createSale(alice.token, {
        name: 'Sneaky', startsAt: inHours(1), endsAt: inHours(2),
        items: [{ productId: mine, flashPrice: 1, stock: 1 }, { productId: theirs, flashPrice: 1, stock: 1 }],
      });
      assert.equal(res.status, 422);
      assert.equal(res.body.error.code, 'unknown_product');
      assert.deepEqual(res.body.error.details, { productIds: [theirs] });
      assert.deepEqual(await saleRows(), before);
      const alicesSales = await h.http.request('GET', `/v1/flash-sales?shopId=${alice.shopId}`);
      assert.ok(!alicesSales.body.sales.some((s: { name: string }) => s.name === 'Sneaky'));
    });

    it('when endsAt is not after startsAt, then 422 validation_failed and nothing is created', async () => {
      const p = await product(alice, 'Timing');
      const before = await saleRows();
      for (const [startsAt, endsAt] of [[inHours(2), inHours(1)], [inHours(1), inHours(1)]]) {
        const res = await createSale(alice.token, { name: 'Backwards', startsAt, endsAt, items: [{ productId: p, flashPrice: 1, stock: 1 }] });
        assert.equal(res.status, 422, `${startsAt} → ${endsAt}`);
        assert.equal(res.body.error.code, 'validation_failed');
      }
      assert.deepEqual(await saleRows(), before);
    });

    it('when a time is valid RFC 3339 but no storable instant (leap second, year 0000, past 9999), then 422 and nothing is created', async () => {
      const p = await product(alice, 'Odd times');
      const before = await saleRows();
      for (const [startsAt, endsAt] of [['2030-06-30T23:59:60Z', '2030-07-02T00:00:00Z'], ['0000-01-01T00:00:00Z', '2030-01-01T00:00:00Z'], ['2030-01-01T00:00:00Z', '9999-12-31T23:59:59-23:59']]) {
        const res = await createSale(alice.token, { name: 'Odd', startsAt, endsAt, items: [{ productId: p, flashPrice: 1, stock: 1 }] });
        assert.equal(res.status, 422, `${startsAt} → ${endsAt}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.code, 'validation_failed');
      }
      assert.deepEqual(await saleRows(), before);
    });

    it('when the same product appears twice in items (in any letter case), then 422 validation_failed and nothing is created', async () => {
      const p = await product(alice, 'Twice');
      const before = await saleRows();
      for (const second of [p, p.toUpperCase()]) {
        const res = await createSale(alice.token, {
          name: 'Double', startsAt: inHours(1), endsAt: inHours(2),
          items: [{ productId: p, flashPrice: 1, stock: 1 }, { productId: second, flashPrice: 2, stock: 2 }],
        });
        assert.equal(res.status, 422, JSON.stringify(res.body));
        assert.equal(res.body.error.code, 'validation_failed');
      }
      assert.deepEqual(await saleRows(), before);
    });

    it('when a buyer schedules a sale, then 403 forbidden', async () => {
      const p = await product(alice, 'Not for buyers');
      const res = await createSale(h.buyerToken().token, { name: 'x', startsAt: inHours(1), endsAt: inHours(2), items: [{ productId: p, flashPrice: 1, stock: 1 }] });
      assert.equal(res.status, 403);
      assert.equal(res.body.error.code, 'forbidden');
    });
  });

  describe('GET /v1/flash-sales and /v1/flash-sales/:id', () => {
    it('when a buyer orders, then the sale shows one fewer remaining, in the list and in the detail', async () => {
      const { sale, shopId } = await h.createSale({ items: [{ stock: 7, perUserLimit: 3 }] });
      const item = sale.items[0]!;
      const remaining = async () => {
        const one = await h.http.request('GET', `/v1/flash-sales/${sale.id}`);
        const list = await h.http.request('GET', `/v1/flash-sales?shopId=${shopId}`);
        assert.equal(list.body.sales.length, 1);
        return [one.body.items[0].remaining, list.body.sales[0].items[0].remaining];
      };
      assert.deepEqual(await remaining(), [7, 7]);
      const placed = await h.http.request('POST', '/v1/orders', { token: h.buyerToken().token, body: { items: [{ saleItemId: item.id, quantity: 2 }] } });
      assert.equal(placed.status, 201, JSON.stringify(placed.body));
      assert.deepEqual(await remaining(), [5, 5]);
    });

    it('when listing by status and limit, then only sales in that status, at most limit of them', async () => {
      const { sale: open, shopId } = await h.createSale();
      const active = await h.http.request('GET', '/v1/flash-sales?status=active&limit=100');
      assert.equal(active.status, 200);
      assert.ok(active.body.sales.every((s: { status: string }) => s.status === 'active'));
      assert.ok(active.body.sales.some((s: { id: string }) => s.id === open.id));
      const scheduled = await h.http.request('GET', `/v1/flash-sales?status=scheduled&shopId=${shopId}`);
      assert.deepEqual(scheduled.body.sales, []);
      const limited = await h.http.request('GET', '/v1/flash-sales?limit=1');
      assert.equal(limited.body.sales.length, 1);
    });

    it('when the list query is out of bounds or unknown, then 422', async () => {
      for (const query of ['limit=1000', 'limit=0', 'status=open', 'shopId=42', 'offset=1']) {
        const res = await h.http.request('GET', `/v1/flash-sales?${query}`);
        assert.equal(res.status, 422, query);
        assert.equal(res.body.error.code, 'validation_failed');
      }
    });

    it('when the sale id is unknown, then 404 not_found; when it is not a uuid, then 422', async () => {
      const unknown = await h.http.request('GET', '/v1/flash-sales/00000000-0000-4000-8000-000000000000');
      assert.equal(unknown.status, 404);
      assert.equal(unknown.body.error.code, 'not_found');
      for (const id of ['not-a-uuid', '123', 'urn:uuid:00000000-0000-4000-8000-000000000000']) {
        const res = await h.http.request('GET', `/v1/flash-sales/${encodeURIComponent(id)}`);
        assert.equal(res.status, 422, id);
        assert.equal(res.body.error.code, 'validation_failed');
      }
    });

    it('when the sale id is given in upper case, then the same sale', async () => {
      const { sale } = await h.createSale();
      const res = await h.http.request('GET', `/v1/flash-sales/${sale.id.toUpperCase()}`);
      assert.equal(res.status, 200);
      assert.equal(res.body.id, sale.id);
    });
  });
});
