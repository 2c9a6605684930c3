import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { runConcurrently, until, type Harness } from '../support/harness.ts';
import { accessibilityProblems, DESKTOP, emailOf, fitsWidth, namedSale, person, PHONE, shot, signIn, startWithBrowser } from './browser.ts';

const BUYERS = 500;

describe('the operations dashboard in a real browser', () => {
  let h: Harness;
  let browser: Browser;
  before(async () => {
    [h, browser] = await startWithBrowser();
  });
  after(async () => {
    await browser?.close();
    await h?.close();
  });

  const lastOf = async (page: Page, chart: string): Promise<number[]> => JSON.parse((await page.locator(`[data-chart="${chart}"]`).getAttribute('data-last')) ?? '[]');
  const kpis = async (page: Page, name: string) => {
    const read = async (key: string) => Number(await page.locator(`[data-kpis="${name}"] [data-kpi="${key}"]`).innerText());
    return { initial: await read('initial'), available: await read('available'), held: await read('held'), sold: await read('sold'), writtenOff: await read('writtenOff') };
  };

  it(`when a crowd of ${BUYERS} buyers buys over HTTP, then the burn-down moves live to zero and the dashboard's totals equal the audit's`, async () => {
    const sale = await namedSale(h, {
      name: 'Black Friday Doorbusters', startsInMs: -1000,
      items: [{ product: 'Robot vacuum', price: 29_900, flashPrice: 14_900, stock: 180, perUserLimit: 1 }, { product: 'Air fryer', price: 12_900, flashPrice: 5_900, stock: 120, perUserLimit: 1 }],
    });
    const email = emailOf('ops');
    await h.system.accounts.createAdmin(email, 'admin-password-1');
    const { page, context } = await person(browser, DESKTOP);
    await signIn(page, h.url, email, 'admin-password-1');
    await page.waitForURL(/#\/ops/);
    await page.locator('select[name="sale"]').selectOption(sale.id);
    await page.waitForFunction(() => document.querySelector('[data-chart="burn-down"]')?.getAttribute('data-last') === '[180,120]');

    // The crowd: waves of buyers, each trying for one unit of either item, while the page watches.
    const seen = new Set<string>();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        seen.add(JSON.stringify(await lastOf(page, 'burn-down')));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    const outcomes = await runConcurrently(BUYERS, 25, async (i) => {
      if (i % 100 === 0 && i > 0) await new Promise((resolve) => setTimeout(resolve, 300));
      const res = await h.http.request('POST', '/v1/orders', { token: h.buyerToken().token, body: { items: [{ saleItemId: sale.items[i % 2]!.id, quantity: 1 }] } });
      return res.status === 201 ? 'accepted' : res.body.error.code as string;
    });
    const accepted = outcomes.filter((o) => o === 'accepted').length;
    assert.equal(accepted, 300, JSON.stringify(outcomes.filter((o) => o !== 'accepted').slice(0, 3)));
    await page.waitForFunction(() => document.querySelector('[data-chart="burn-down"]')?.getAttribute('data-last') === '[0,0]', undefined, { timeout: 5000 });
    watching = false;
    await watcher;
    const states = [...seen].map((s) => JSON.parse(s) as number[]);
    const between = states.filter(([a, b]) => (a! > 0 || b! > 0) && (a! < 180 || b! < 120));
    assert.ok(between.length >= 1, `the burn-down showed only ${[...seen].join(' ')}`);

    // Stock by state on the dashboard, then the audit's: the same numbers.
    await page.waitForFunction(() => document.querySelector('[data-kpis="sale"] [data-kpi="held"]')?.textContent === '300', undefined, { timeout: 5000 });
    assert.deepEqual(await kpis(page, 'sale'), { initial: 300, available: 0, held: 300, sold: 0, writtenOff: 0 });
    await page.getByRole('button', { name: 'Run the audit now' }).click();
    const audit = (await h.http.request('GET', '/v1/admin/audit', { token: h.adminToken() })).body;
    await page.waitForFunction((held) => JSON.parse(document.querySelector('[data-audit-stock]')?.getAttribute('data-audit-stock') ?? '{}').held === held, audit.stock.held, { timeout: 5000 });
    const shown = JSON.parse((await page.locator('[data-audit-stock]').getAttribute('data-audit-stock'))!);
    assert.deepEqual(await kpis(page, 'all'), audit.stock);
    assert.deepEqual(shown, audit.stock);
    assert.equal(audit.oversoldUnits, 0);
    const attempts = await lastOf(page, 'attempts');
    assert.equal(attempts.length, 8, "attempts, accepted and six refusal reasons");
    // Every consumer group's queue, by name.
    await page.locator('[data-queue="notifications"]').waitFor();
    assert.ok(Number(await page.locator('[data-queues]').getAttribute('data-queues')) >= 4, 'a row per consumer group');
    await page.waitForTimeout(1200);
    await shot(page, 'dashboard-desktop');
    await page.setViewportSize(PHONE);
    await page.waitForTimeout(300);
    await shot(page, 'dashboard-phone');
    assert.ok(await fitsWidth(page), 'the dashboard fits a phone’s width');
    assert.deepEqual(await accessibilityProblems(page), [], 'the dashboard on a phone');
    assert.deepEqual((page as any).jsErrors, []);
    await context.close();
  });
});

describe('dead letters on the operations dashboard', () => {
  let h: Harness;
  let browser: Browser;
  before(async () => {
    [h, browser] = await startWithBrowser({ config: { BROKER_MAX_ATTEMPTS: 1 } });
  });
  after(async () => {
    await browser?.close();
    await h?.close();
  });

  it('when a consumer fails a message for good, then the operator inspects it on the dashboard and replays it once fixed', async () => {
    let fixed = false;
    const handled: string[] = [];
    h.system.broker.consume('shipping-labels', ['order.created'], async (_tx, message) => {
      const { orderId } = message.payload as { orderId: string };
      if (!fixed) throw new Error(`label printer rejects order ${orderId}`);
      handled.push(orderId);
    });
    const { sale } = await h.createSale();
    const orderId = await h.placeOrder(h.buyerToken().token, sale.items[0]!.id);
    await until(async () => (await h.http.request('GET', '/v1/admin/dead-letters', { token: h.adminToken() })).body.deadLetters.length === 1, 'the dead letter');

    const email = emailOf('ops');
    await h.system.accounts.createAdmin(email, 'admin-password-1');
    const { page, context } = await person(browser, DESKTOP);
    await signIn(page, h.url, email, 'admin-password-1');
    await page.locator('[data-dead-letters="1"]').waitFor();
    await page.getByRole('button', { name: 'Inspect' }).click();
    const payload = page.getByLabel('Dead letter payload');
    assert.match(await payload.innerText(), new RegExp(`label printer rejects order ${orderId}`));
    await shot(page, 'dead-letter-desktop');
    fixed = true;
    await page.getByRole('button', { name: 'Replay' }).click();
    await page.getByText('Replayed order.created to shipping-labels.').waitFor();
    await page.locator('[data-dead-letters="0"]').waitFor();
    await until(async () => handled.includes(orderId), 'the replayed message handled');
    await context.close();
  });
});
