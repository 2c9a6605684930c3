import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { spawnSync } from 'node:child_process';
import { TokenService } from '../src/platform/tokens.ts';
import { PgliteDatabase } from '../src/platform/database/pglite.ts';
import { httpClient, type HttpResponse } from './support/harness.ts';
import { freePort, startServerProcess, type ServerProcess } from './support/process.ts';

const SECRET = 'crash-test-secret-0123456789';

function cli(args: string[], env: Record<string, string>) {
  return spawnSync(process.execPath, ['bin/flashsale.js', ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 });
}

describe('a server killed mid-burst', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'flashsale-crash-'));
  const env = {
    DATA_DIR: dataDir, JWT_SECRET: SECRET, SEED_DEMO: 'false', LOG_LEVEL: 'warn',
    RATE_LIMIT_IP_MAX: '1000000', RATE_LIMIT_USER_MAX: '1000000', MAX_EVENT_LOOP_DELAY_MS: '0', PSP_PORT: '0', PSP_DATA_DIR: join(dataDir, 'psp'),
  };
  const tokens = new TokenService(SECRET, 3600);
  const admin = tokens.issue({ userId: randomUUID(), role: 'admin' });
  let server: ServerProcess | undefined;
  after(() => {
    server?.child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('when SIGKILLed during a burst of purchases and restarted, then every 201 order exists, no hold lacks an order, and the audit is clean', async () => {
    const port = await freePort();
    server = await startServerProcess(env, port);
    const setup = httpClient(server.url, 4);
    const merchant = await setup.request('POST', '/v1/admin/merchants', { token: admin, body: { email: 'm@crash.test', password: 'merchant-password', shopName: 'Crash Shop' } });
    assert.equal(merchant.status, 201, JSON.stringify(merchant.body));
    const login = await setup.request('POST', '/v1/auth/login', { body: { email: 'm@crash.test', password: 'merchant-password' } });
    const product = await setup.request('POST', '/v1/products', { token: login.body.token, body: { name: 'Thing', price: 1000, currency: 'USD' } });
    const sale = await setup.request('POST', '/v1/flash-sales', {
      token: login.body.token,
      body: { name: 'Crash sale', startsAt: new Date(Date.now() - 1000).toISOString(), endsAt: new Date(Date.now() + 3600_000).toISOString(), items: [{ productId: product.body.id, flashPrice: 500, stock: 400, perUserLimit: 1 }] },
    });
    assert.equal(sale.status, 201, JSON.stringify(sale.body));
    await setup.close();
    const itemId: string = sale.body.items[0].id;

    const buyers = Array.from({ length: 1500 }, () => {
      const userId = randomUUID();
      return { userId, token: tokens.issue({ userId, role: 'buyer' }) };
    });
    const client = httpClient(server.url, 64);
    const accepted: Array<{ buyer: number; orderId: string }> = [];
    let killed = false;
    const victim = server;
    const attempts = buyers.map(async (buyer, i): Promise<HttpResponse | undefined> => {
      try {
        const res = await client.request('POST', '/v1/orders', { token: buyer.token, body: { items: [{ saleItemId: itemId, quantity: 1 }] } });
        if (res.status === 201) {
          accepted.push({ buyer: i, orderId: res.body.id });
          if (accepted.length === 120 && !killed) {
            killed = true;
            victim.child.kill('SIGKILL');
          }
        }
        return res;
      } catch {
        return undefined; // connection cut by the kill: the client cannot know, and that is fine
      }
    });
    await Promise.all(attempts);
    await client.close().catch(() => {});
    assert.equal(await victim.exited, 'SIGKILL');
    assert.ok(killed && accepted.length >= 120, `accepted ${accepted.length} before the kill`);

    server = await startServerProcess(env, port);
    const after = httpClient(server.url, 16);
    for (const { buyer, orderId } of accepted) {
      const res = await after.request('GET', `/v1/orders/${orderId}`, { token: buyers[buyer]!.token });
      assert.equal(res.status, 200, `order ${orderId} answered 201 before the crash but is gone`);
      assert.equal(res.body.status, 'PENDING_PAYMENT');
    }
    // Outbox rows written before the kill are relayed after restart; the audit is quiet once they are.
    let report: HttpResponse | undefined;
    for (let i = 0; i < 100; i++) {
      report = await after.request('GET', '/v1/admin/audit?quiet=true', { token: admin });
      if (report.status === 200) break;
      if (report.body.violations.some((v: { check: string }) => v.check !== 'events_delivered')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(report!.body.violations, []);
    const remaining = (await after.request('GET', `/v1/flash-sales/${sale.body.id}`)).body.items[0].remaining;
    assert.ok(remaining <= 400 - accepted.length, `remaining ${remaining} with ${accepted.length} confirmed orders`);
    await after.close();
    const online = cli(['audit'], { ...env, PORT: String(port) });
    assert.equal(online.status, 0, online.stdout + online.stderr);
    assert.match(online.stdout, /audit OK/);
    server.child.kill('SIGTERM');
    assert.equal(await server.exited, '0', 'graceful shutdown on SIGTERM exits 0');
    server = undefined;

    // With no server running, the CLI opens the database itself; broken books make it exit 1.
    const db = await PgliteDatabase.open(dataDir);
    await db.query(`update holds set status = 'sold' where id = (select id from holds where status = 'held' limit 1)`);
    await db.close();
    const offline = cli(['audit'], { ...env, PORT: String(port) });
    assert.equal(offline.status, 1, offline.stdout + offline.stderr);
    assert.match(offline.stdout, /held_matches_holds/);
  });
});
