import type { System } from './app.ts';

export const DEMO = {
  admin: { email: 'admin@flashsale.local', password: 'admin-pass-123' },
  merchant: { email: 'merchant@flashsale.local', password: 'merchant-pass-123', shopName: 'Demo Shop' },
  buyers: [1, 2, 3].map((n) => ({ email: `buyer${n}@flashsale.local`, password: 'buyer-pass-123' })),
};

export interface SeedResult {
  createdAccounts: boolean;
  saleId: string | undefined;
  cartSaleId: string | undefined;
}

/**
 * Demo data: accounts on first run; then, whenever the demo shop has no sale scheduled or open,
 * two new sales (one holding stock on order, one on add-to-cart) that open a minute from now.
 */
export async function seedDemo(system: System, opts: { opensInMs?: number } = {}): Promise<SeedResult> {
  const { accounts, catalog, clock } = system;
  let merchant = await accounts.findUserByEmail(DEMO.merchant.email);
  const createdAccounts = !merchant;
  if (!merchant) {
    await accounts.createAdmin(DEMO.admin.email, DEMO.admin.password);
    merchant = (await accounts.createMerchant(DEMO.merchant.email, DEMO.merchant.password, DEMO.merchant.shopName)).user;
    for (const buyer of DEMO.buyers) await accounts.register(buyer.email, buyer.password);
  }
  const shop = (await accounts.shopOf(merchant.id))!;
  const live = catalog.listFlashSales({ shopId: shop.id }).filter((s) => catalog.statusOf(s) !== 'ended');
  if (live.length > 0) {
    return { createdAccounts, saleId: live.find((s) => s.holdMode === 'order')?.id, cartSaleId: live.find((s) => s.holdMode === 'cart')?.id };
  }
  const phone = await catalog.createProduct(shop.id, { name: 'Phone X (flash edition)', description: 'The headline deal.', price: 99_900, currency: 'USD' });
  const earbuds = await catalog.createProduct(shop.id, { name: 'Earbuds', description: 'Two per buyer.', price: 4_900, currency: 'USD' });
  const startsAt = new Date(clock.now().getTime() + (opts.opensInMs ?? 60_000));
  const endsAt = new Date(startsAt.getTime() + 3600_000);
  const sale = await catalog.createFlashSale(shop.id, {
    name: '12.12 Midnight Sale', startsAt, endsAt, paymentWindowS: 300, holdMode: 'order',
    items: [
      { productId: phone.id, flashPrice: 49_900, stock: 100, perUserLimit: 1 },
      { productId: earbuds.id, flashPrice: 1_900, stock: 500, perUserLimit: 2 },
    ],
  });
  const cartSale = await catalog.createFlashSale(shop.id, {
    name: '12.12 Cart Rush', startsAt, endsAt, paymentWindowS: 300, holdMode: 'cart',
    items: [{ productId: earbuds.id, flashPrice: 1_500, stock: 50, perUserLimit: 1 }],
  });
  return { createdAccounts, saleId: sale.id, cartSaleId: cartSale.id };
}
