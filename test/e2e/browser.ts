import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { FlashSale, Product } from '../../src/catalog/index.ts';
import { startHarness, type Harness } from '../support/harness.ts';

/**
 * Debian's chromium, driven by playwright-core (which downloads no browser of its own). CHROMIUM_PATH
 * names another binary. `.ci/run` installs the package when it is missing; on a developer's machine:
 * `sudo apt-get install -y chromium` (docs/operations.md).
 */
export function chromiumPath(): string {
  // A binary named on purpose is the one used: no silent fallback to another.
  const candidates = process.env.CHROMIUM_PATH ? [process.env.CHROMIUM_PATH] : ['/usr/bin/chromium', '/usr/bin/chromium-browser'];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`The browser tests need Chromium (looked for ${candidates.join(', ')}): \`sudo apt-get install -y chromium\` or set CHROMIUM_PATH.`);
  return found;
}

export async function launch(): Promise<Browser> {
  // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
  return chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}

/**
 * A harness and a browser, started side by side. If either fails, the other is closed before the
 * error is thrown: a suite whose browser cannot start then fails at once, instead of hanging on a
 * running server that its `after` never got to close.
 */
export async function startWithBrowser(options?: Parameters<typeof startHarness>[0]): Promise<[Harness, Browser]> {
  const [harness, browser] = await Promise.allSettled([startHarness(options), launch()]);
  if (harness.status === 'fulfilled' && browser.status === 'fulfilled') return [harness.value, browser.value];
  if (harness.status === 'fulfilled') await harness.value.close();
  if (browser.status === 'fulfilled') await browser.value.close();
  throw harness.status === 'rejected' ? harness.reason : (browser as PromiseRejectedResult).reason;
}

export const DESKTOP = { width: 1280, height: 860 };
export const PHONE = { width: 390, height: 844 };

/** A fresh browser profile (its own localStorage: one person), at desktop or phone width. */
export async function person(browser: Browser, viewport = DESKTOP): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1, ...(viewport === PHONE ? { isMobile: true, hasTouch: true } : {}) });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  (page as Page & { jsErrors?: string[] }).jsErrors = errors;
  return { context, page };
}

/** Where the tests' screenshots go: E2E_SCREENSHOTS, or a fresh folder under the temp dir. */
export const SHOTS = process.env.E2E_SCREENSHOTS ?? join(tmpdir(), `flashsale-e2e-${process.pid}`);
mkdirSync(SHOTS, { recursive: true });

export async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** Readable at this width: nothing wider than the screen, so no sideways scrolling. */
export async function fitsWidth(page: Page): Promise<boolean> {
  return page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
}

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/**
 * The page's accessibility problems as axe-core finds them (WCAG 2 A and AA rules: every control
 * labelled, names for buttons and links, contrast, landmarks...), one line each; [] when none.
 * Injected by evaluate, which the pages' Content-Security-Policy does not stop.
 */
export async function accessibilityProblems(page: Page): Promise<string[]> {
  await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(context: Document, options: unknown): Promise<{ violations: Array<{ id: string; help: string; nodes: Array<{ target: unknown[] }> }> }> } }).axe;
    const result = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return result.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')})`);
  });
  return violations;
}

/** The bearer token the page keeps for its signed-in person. */
export async function tokenOf(page: Page): Promise<string> {
  return page.evaluate(() => JSON.parse(localStorage.getItem('flashsale.session') ?? 'null')?.token as string);
}

export async function signUp(page: Page, base: string, email: string, password = 'buyer-password-1'): Promise<void> {
  await page.goto(`${base}/#/signup`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel(/^Password/).fill(password);
  await page.getByRole('button', { name: 'Sign up' }).click();
  await page.getByText(email).waitFor();
}

export async function signIn(page: Page, base: string, email: string, password: string): Promise<void> {
  await page.goto(`${base}/#/signin`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel(/^Password/).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText(email).waitFor();
}

/** A short unique email, so that screenshots stay readable. */
export const emailOf = (name: string) => `${name}-${randomUUID().slice(0, 6)}@shop.test`;

/** A sale with real-looking names (the harness's are "Sale n" / "Product n"), for the pictures. */
export async function namedSale(h: Harness, opts: { name: string; startsInMs: number; items: Array<{ product: string; price: number; flashPrice: number; stock: number; perUserLimit: number }> }): Promise<FlashSale> {
  const { catalog, accounts, clock } = h.system;
  const { shop } = await accounts.createMerchant(emailOf('shop'), 'merchant-password', 'Gadget Barn');
  const products: Product[] = [];
  for (const item of opts.items) products.push(await catalog.createProduct(shop.id, { name: item.product, price: item.price, currency: 'USD', description: '' }));
  const startsAt = new Date(clock.now().getTime() + opts.startsInMs);
  return catalog.createFlashSale(shop.id, {
    name: opts.name, startsAt, endsAt: new Date(startsAt.getTime() + 3600_000), paymentWindowS: 600, holdMode: 'order',
    items: opts.items.map((item, i) => ({ productId: products[i]!.id, flashPrice: item.flashPrice, stock: item.stock, perUserLimit: item.perUserLimit })),
  });
}
