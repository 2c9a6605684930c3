import { createHash } from 'node:crypto';
import type { Message } from '../platform/broker/broker.ts';
import { readPayload } from '../platform/broker/event-contract.ts';
import { StockSoldOut, InventoryTopics } from '../inventory/contracts.ts';
import { CatalogTopics, SaleEnded } from '../catalog/contracts.ts';
import { OrderSaleClosed, OrderTopics } from '../order/contracts.ts';
import { NotificationTopics, SummaryDue } from './contracts.ts';
import type { NotificationsDeps } from './index.ts';
import type { Notice } from './delivery.ts';
import { render } from './templates.ts';

/** How long a sale's summary waits, each time it finds an order of the sale still awaiting payment, before it looks again. */
export const SUMMARY_RECHECK_MS = 30_000;
/** After this many waits (an hour) the summary is sent as it stands, orders still pending counted as such. */
const SUMMARY_MAX_RECHECKS = 120;

/** The topics a merchant hears about, and the summary's own re-check. */
export const MERCHANT_TOPICS = [InventoryTopics.soldOut, CatalogTopics.ended, OrderTopics.saleClosed, NotificationTopics.summaryDue];

/**
 * A merchant's notice: an item of their sale sold out (once per sell-out, named by the item's
 * stock when it sold out: units that come back from expired or cancelled orders and sell out again
 * tell them nothing new, units the merchant added that sell out again do), or their sale is over,
 * with its summary (once per sale, whichever comes first once the sale really is over: a
 * `sale.ended`, or for a cancelled sale order's `order.sale_closed`). "Once" is the notice's id,
 * derived from what it is about, under the unique (event_id, channel) row. The summary is final:
 * while an order of the sale still awaits payment (its close check has not run yet, or could not
 * reach the provider), it is not sent but looked at again later (`notification.summary_due`, to
 * itself).
 */
export async function notifyMerchant(deps: NotificationsDeps, deliver: (notice: Notice) => Promise<void>, message: Message): Promise<void> {
  const { merchants, clock, log } = deps;
  if (!merchants) return;
  if (message.topic === InventoryTopics.soldOut) {
    const { saleItemId, stock } = readPayload(StockSoldOut, message);
    const item = await merchants.saleItem(saleItemId);
    if (!item) return void log.warn({ saleItemId }, 'sold-out item of no known sale: no merchant to tell');
    const input = { saleName: item.saleName, productName: item.productName, saleItemId };
    await deliver({ eventId: noticeId(stock === undefined ? `item_sold_out:${saleItemId}` : `item_sold_out:${saleItemId}:${stock}`), userId: item.merchantId, kind: 'item_sold_out', ...rendered('item_sold_out', input) });
    return;
  }
  const { saleId, attempt } = saleOf(message);
  const sale = await merchants.sale(saleId);
  if (!sale) return void log.warn({ saleId }, 'ended sale unknown: no merchant to tell');
  // An edit moved the end later: this message is stale, the edit sent another.
  if (!sale.cancelled && clock.now().getTime() < sale.settledAt) return;
  const summary = await merchants.summary(saleId);
  if (summary.pending > 0 && attempt < SUMMARY_MAX_RECHECKS) {
    const due: SummaryDue = { saleId, attempt: attempt + 1 };
    await deps.db.transaction((tx) => deps.emit(tx, [{ topic: NotificationTopics.summaryDue, payload: due, delayMs: SUMMARY_RECHECK_MS }]));
    return;
  }
  const input = { saleName: sale.saleName, currency: sale.currency, cancelled: sale.cancelled, summary };
  await deliver({ eventId: noticeId(`sale_ended:${saleId}`), userId: sale.merchantId, kind: 'sale_ended', ...rendered('sale_ended', input) });
}

/** The sale a summary message is about, and how many times its summary has already waited. */
function saleOf(message: Message): { saleId: string; attempt: number } {
  if (message.topic === NotificationTopics.summaryDue) return readPayload(SummaryDue, message);
  const { saleId } = message.topic === OrderTopics.saleClosed ? readPayload(OrderSaleClosed, message) : readPayload(SaleEnded, message);
  return { saleId, attempt: 0 };
}

function rendered<K extends 'item_sold_out' | 'sale_ended'>(kind: K, input: Parameters<typeof render<K>>[1]): { subject: string; text: string } {
  const { subject, text } = render(kind, input);
  return { subject, text };
}

/** A UUID named by what the notice is about (the same name gives the same id), shaped as a version 5 UUID. */
export function noticeId(name: string): string {
  const hex = createHash('sha1').update(`flashsale-notice:${name}`).digest('hex');
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
