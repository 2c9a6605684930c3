import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import type { Harness } from '../support/harness.ts';
import { accessibilityProblems, DESKTOP, emailOf, fitsWidth, namedSale, person, PHONE, shot, SHOTS, signIn, signUp, startWithBrowser, tokenOf } from './browser.ts';

describe('the storefront in a real browser', () => {
  let h: Harness;
  let browser: Browser;
  before(async () => {
    [h, browser] = await startWithBrowser();
  });
  after(async () => {
    await browser?.close();
    await h?.close();
    process.stdout.write(`# screenshots in ${SHOTS}\n`);
  });

  const ordersOf = async (token: string, saleId: string) =>
    ((await h.http.request('GET', '/v1/orders?limit=100', { token })).body.orders as Array<{ saleId: string; status: string }>).filter((o) => o.saleId === saleId);

  it('when a buyer signs up, waits for the countdown, buys and pays on the hosted page, then they see PAID and the payment in their inbox; a second buyer watching sees it sold out live and cannot buy', async () => {
    const alice = await person(browser, DESKTOP);
    const bob = await person(browser, PHONE);
    // Bob signs up with the keyboard alone: labelled fields, Tab between them, Enter submits.
    const bobEmail = emailOf('bob');
    const byKeyboard = async () => {
      await bob.page.goto(`${h.url}/#/signup`);
      await bob.page.getByLabel('Email').focus();
      await bob.page.keyboard.type(bobEmail);
      await bob.page.keyboard.press('Tab');
      await bob.page.keyboard.type('buyer-password-1');
      await bob.page.keyboard.press('Enter');
      await bob.page.getByText(bobEmail).waitFor();
    };
    await Promise.all([signUp(alice.page, h.url, emailOf('alice')), byKeyboard()]);
    const sale = await namedSale(h, {
      name: '12.12 Midnight Sale', startsInMs: 3000,
      items: [{ product: 'Phone X', price: 89_900, flashPrice: 49_900, stock: 1, perUserLimit: 1 }, { product: 'Earbuds', price: 4_900, flashPrice: 1_900, stock: 50, perUserLimit: 2 }],
    });

    await alice.page.goto(`${h.url}/#/sales/${sale.id}`);
    await bob.page.goto(`${h.url}/#/sales/${sale.id}`);
    const aliceBuy = alice.page.getByRole('button', { name: /Phone X/ });
    const bobBuy = bob.page.getByRole('button', { name: /Phone X/ });
    // Before the start: a countdown, and no way to buy.
    await alice.page.locator('[data-countdown="start"]').waitFor();
    assert.equal(await aliceBuy.isDisabled(), true);
    assert.match(await aliceBuy.innerText(), /Not open yet/);
    await shot(alice.page, 'sale-countdown-desktop');
    await bob.page.goto(`${h.url}/#/`);
    await bob.page.locator('article', { hasText: sale.name }).waitFor();
    await shot(bob.page, 'sales-phone');
    await alice.page.goto(`${h.url}/#/`);
    await alice.page.locator('article', { hasText: sale.name }).waitFor();
    await shot(alice.page, 'sales-desktop');
    await alice.page.goto(`${h.url}/#/sales/${sale.id}`);
    await aliceBuy.waitFor();
    await bob.page.goto(`${h.url}/#/sales/${sale.id}`);
    await bob.page.locator('button.buy').first().waitFor();
    // Bob's page must change without a reload: a reload would lose this mark.
    await bob.page.evaluate(() => { (window as unknown as { mark: number }).mark = 42; });

    await alice.page.waitForFunction(() => !document.querySelector<HTMLButtonElement>('button.buy[aria-label*="Phone X"]')?.disabled, undefined, { timeout: 10_000 });
    assert.match(await aliceBuy.innerText(), /Buy now/);
    await shot(alice.page, 'sale-open-desktop');
    // The order page follows its order on the live stream: no asking for it again and again.
    const orderAsks: string[] = [];
    alice.page.on('request', (request) => {
      if (/\/v1\/orders\/[0-9a-f-]{36}(\/live)?$/.test(new URL(request.url()).pathname)) orderAsks.push(new URL(request.url()).pathname);
    });
    await aliceBuy.click();
    await alice.page.waitForURL(/#\/orders\//);
    await alice.page.locator('[data-status="PENDING_PAYMENT"]').first().waitFor();
    await alice.page.locator('[data-countdown="deadline"]').waitFor();
    await shot(alice.page, 'order-pending-desktop');
    assert.deepEqual(await accessibilityProblems(alice.page), [], 'the order page');

    // Bob sees sold out, live, and cannot buy.
    await bob.page.waitForFunction(() => document.querySelector('button.buy[aria-label*="Phone X"]')?.textContent?.includes('Sold out'), undefined, { timeout: 5000 });
    assert.equal(await bobBuy.isDisabled(), true);
    assert.equal(await bob.page.evaluate(() => (window as unknown as { mark: number }).mark), 42, 'the page was not reloaded');
    await shot(bob.page, 'sale-sold-out-phone');
    assert.ok(await fitsWidth(bob.page), 'the sale page fits a phone’s width');
    assert.deepEqual(await accessibilityProblems(bob.page), [], 'the sale page on a phone');
    assert.deepEqual(await ordersOf(await tokenOf(bob.page), sale.id), []);

    // Pay on the provider's hosted page, come back, see PAID.
    await alice.page.getByRole('button', { name: /^Pay / }).click();
    await alice.page.waitForURL((url) => url.href.startsWith(h.pspUrl));
    await shot(alice.page, 'hosted-payment-page');
    await alice.page.getByRole('button', { name: /^Pay / }).click();
    await alice.page.waitForURL((url) => url.href.startsWith(h.url) && url.hash.startsWith('#/orders/'));
    await alice.page.locator('[data-status="PAID"]').first().waitFor({ timeout: 10_000 });
    await shot(alice.page, 'order-paid-desktop');
    assert.ok(orderAsks.length >= 2 && orderAsks.every((path) => path.endsWith('/live')), `one stream per visit of the order page, no polling: ${orderAsks.join(' ')}`);
    // The inbox has the payment's notification (delivered through the outbox, so wait for it).
    await alice.page.getByRole('link', { name: 'Inbox', exact: true }).click();
    await alice.page.getByRole('heading', { name: /^Payment received for order / }).waitFor({ timeout: 10_000 });
    await shot(alice.page, 'inbox-desktop');
    const orders = await ordersOf(await tokenOf(alice.page), sale.id);
    assert.deepEqual(orders.map((o) => o.status), ['PAID']);
    // Signing out forgets the token.
    await alice.page.getByRole('button', { name: 'Sign out' }).click();
    await alice.page.getByRole('link', { name: 'Sign in' }).waitFor();
    assert.equal(await alice.page.evaluate(() => localStorage.getItem('flashsale.session')), null);
    assert.deepEqual([...(alice.page as any).jsErrors, ...(bob.page as any).jsErrors], []);
    await alice.context.close();
    await bob.context.close();
  });

  it('when a buyer double-clicks Buy now, then they buy once', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 10, perUserLimit: 5 }] });
    const carol = await person(browser, DESKTOP);
    await signUp(carol.page, h.url, emailOf('carol'));
    await carol.page.goto(`${h.url}/#/sales/${sale.id}`);
    const buy = carol.page.getByRole('button', { name: /Buy now/ });
    await buy.waitFor();
    // Two clicks in the same frame (before the page re-renders), then a real double click.
    await carol.page.evaluate(() => {
      const button = document.querySelector<HTMLButtonElement>('button.buy')!;
      button.click();
      button.click();
    });
    await carol.page.waitForURL(/#\/orders\//);
    assert.equal((await ordersOf(await tokenOf(carol.page), sale.id)).length, 1);
    await carol.page.goto(`${h.url}/#/sales/${sale.id}`);
    await buy.dblclick();
    await carol.page.waitForURL(/#\/orders\//);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal((await ordersOf(await tokenOf(carol.page), sale.id)).length, 2, 'one order per double click');
    await carol.page.goto(`${h.url}/#/orders`);
    await carol.page.getByRole('heading', { name: 'My orders' }).waitFor();
    await shot(carol.page, 'my-orders-desktop');
    await carol.context.close();
  });

  it('when a buyer is refused, then the page says why in words; a cart checks out into an order, which they can cancel', async () => {
    const { sale } = await h.createSale({ items: [{ stock: 5, perUserLimit: 1 }], holdMode: 'cart' });
    const dave = await person(browser, PHONE);
    await signUp(dave.page, h.url, emailOf('dave'));
    await dave.page.goto(`${h.url}/#/sales/${sale.id}`);
    const add = dave.page.getByRole('button', { name: /Add to cart/ });
    await add.click();
    await dave.page.getByText('In your cart.').waitFor();
    // By keyboard this time.
    await add.focus();
    await dave.page.keyboard.press('Enter');
    await dave.page.getByText('You already have as many as one buyer may get of this item.').waitFor();
    await shot(dave.page, 'sale-limit-phone');
    await dave.page.goto(`${h.url}/#/cart`);
    await dave.page.getByRole('button', { name: 'Check out' }).click();
    await dave.page.waitForURL(/#\/orders\//);
    await dave.page.locator('[data-status="PENDING_PAYMENT"]').first().waitFor();
    await shot(dave.page, 'order-pending-phone');
    assert.ok(await fitsWidth(dave.page), 'the order page fits a phone’s width');
    // Cancel (after confirming): the order is CANCELLED and the unit is back on sale.
    dave.page.once('dialog', (dialog) => void dialog.accept());
    await dave.page.getByRole('button', { name: 'Cancel order' }).click();
    await dave.page.locator('[data-status="CANCELLED"]').first().waitFor();
    assert.equal((await h.http.request('GET', `/v1/flash-sales/${sale.id}/live`)).body.items[0].remaining, 5);
    await dave.context.close();
  });

  it('when a merchant schedules a sale in their shop page, then it appears on the storefront; their orders show, and they add stock and cancel a sale', async () => {
    const email = emailOf('erin');
    const { shop } = await h.system.accounts.createMerchant(email, 'merchant-password', 'Gadget Barn');
    const erin = await person(browser, DESKTOP);
    await signIn(erin.page, h.url, email, 'merchant-password');
    await erin.page.waitForURL(/#\/merchant/);
    await erin.page.getByLabel('Name', { exact: true }).fill('Robot vacuum');
    await erin.page.getByLabel('List price').fill('299.00');
    await erin.page.getByRole('button', { name: 'Create product' }).click();
    await erin.page.getByText('Created Robot vacuum.').waitFor();
    const name = `Robot week ${randomUUID().slice(0, 4)}`;
    await erin.page.getByLabel('Sale name').fill(name);
    await erin.page.getByLabel(/Robot vacuum/).check();
    await erin.page.getByLabel('Flash price').fill('199.00');
    await erin.page.getByLabel('Stock', { exact: true }).fill('25');
    await erin.page.getByLabel('Limit per buyer').fill('2');
    await erin.page.getByRole('button', { name: 'Schedule sale' }).click();
    await erin.page.getByText(`Scheduled ${name}.`).waitFor();
    await erin.page.getByRole('link', { name }).first().waitFor();
    // The shop's orders (fulfillment's API): none yet.
    await erin.page.getByRole('heading', { name: 'Your orders' }).waitFor();
    await erin.page.getByText('No orders yet.').waitFor();
    await shot(erin.page, 'merchant-desktop');
    assert.deepEqual(await accessibilityProblems(erin.page), [], 'the merchant’s page');
    await erin.page.goto(`${h.url}/#/`);
    const card = erin.page.locator('article', { hasText: name });
    await card.waitFor();
    assert.match(await card.innerText(), /Robot vacuum: \$199\.00 — 25 left/);
    assert.match(await card.innerText(), /upcoming/);
    // A buyer orders from an open sale of Erin's shop: her page lists the order.
    const [vacuum] = await h.system.catalog.listProducts({ shopId: shop.id, limit: 1, offset: 0 });
    const open = await h.system.catalog.createFlashSale(shop.id, {
      name: 'Robot hour', startsAt: new Date(Date.now() - 1000), endsAt: new Date(Date.now() + 3600_000), paymentWindowS: 600, holdMode: 'order',
      items: [{ productId: vacuum!.id, flashPrice: 17_900, stock: 5, perUserLimit: 1 }],
    });
    const orderId = await h.placeOrder(h.buyerToken().token, open.items[0]!.id);
    await erin.page.goto(`${h.url}/#/merchant`);
    await erin.page.getByText(orderId.slice(0, 8)).waitFor();
    await erin.page.getByText(/1 order\(s\) · 1 unit\(s\), \$179\.00/).waitFor();
    await shot(erin.page, 'merchant-orders-desktop');
    // Add stock, then cancel the sale: the storefront says so.
    erin.page.once('dialog', (dialog) => void dialog.accept('5'));
    await erin.page.getByRole('button', { name: 'Add stock to Robot vacuum in Robot hour' }).click();
    await erin.page.getByText('Added 5 to Robot vacuum.').waitFor();
    await erin.page.getByText('Robot vacuum: 1 / 10').waitFor();
    erin.page.once('dialog', (dialog) => void dialog.accept());
    await erin.page.getByRole('button', { name: 'Cancel sale Robot hour' }).click();
    await erin.page.getByText('Cancelled Robot hour.').waitFor();
    await erin.page.goto(`${h.url}/#/sales/${open.id}`);
    await erin.page.getByRole('button', { name: /Sale cancelled/ }).waitFor();
    await erin.context.close();
  });
});
