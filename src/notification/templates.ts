import type { OrderCancelled, OrderCreated, OrderExpired, OrderFulfilled, OrderLineCancelled, OrderPaid } from '../order/contracts.ts';
import type { ShipmentDelivered, ShipmentShipped } from '../fulfillment/contracts.ts';
import type { PaymentFailed, PaymentRefunded } from '../payment/contracts.ts';
import type { NotificationKind } from './contracts.ts';

export interface Rendered {
  subject: string;
  text: string;
}

/** What each kind is rendered from: the payload of the event that triggers it. */
export interface TemplateInput {
  order_placed: OrderCreated;
  payment_received: OrderPaid;
  order_expired: OrderExpired;
  order_cancelled: OrderCancelled;
  refund_issued: PaymentRefunded;
  payment_failed: PaymentFailed;
  item_sold_out: { saleName: string; productName: string; saleItemId: string };
  sale_ended: {
    saleName: string; currency: string; cancelled: boolean;
    summary: { orders: number; paid: number; expired: number; cancelled: number; pending: number; unitsSold: number; revenue: number };
  };
  order_shipped: ShipmentShipped;
  order_fulfilled: OrderFulfilled;
  shipment_delivered: ShipmentDelivered;
  line_cancelled: OrderLineCancelled;
}

/** `4990, 'USD'` → `USD 49.90`; the currency's own number of minor digits (JPY none, KWD three). */
export function formatMoney(minor: number, currency: string): string {
  const digits = minorDigits(currency);
  const sign = minor < 0 ? '-' : '';
  const abs = Math.abs(Math.trunc(minor));
  if (digits === 0) return `${currency} ${sign}${abs}`;
  const scale = 10 ** digits;
  return `${currency} ${sign}${Math.floor(abs / scale)}.${String(abs % scale).padStart(digits, '0')}`;
}

/** Building an Intl.NumberFormat costs ~0.1 ms: once per currency, not once per notice. */
const MINOR_DIGITS = new Map<string, number>();
// The process's first currency format loads ICU's data (~20 ms): at start, not in the first notice of a sale.
minorDigits('USD');

function minorDigits(currency: string): number {
  let digits = MINOR_DIGITS.get(currency);
  if (digits === undefined) {
    try {
      digits = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
    } catch {
      digits = 2; // not an ISO 4217 code Intl knows
    }
    if (MINOR_DIGITS.size < 1000) MINOR_DIGITS.set(currency, digits);
  }
  return digits;
}

/** `2030-01-01T12:00:00.000Z` → `2030-01-01 12:00 UTC`. */
function formatTime(iso: string): string {
  const time = new Date(iso);
  return Number.isNaN(time.getTime()) ? iso : `${time.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

const CANCEL_REASONS: Record<string, string> = {
  buyer_cancelled: 'as you asked',
  admin_cancelled: 'by the shop',
  sale_cancelled: 'because the shop cancelled the sale; any payment is refunded',
  merchant_cancelled: 'by the shop: none of its items could be shipped',
};

const templates: { [K in NotificationKind]: (input: TemplateInput[K]) => Rendered } = {
  order_placed: (e) => ({
    subject: `Order ${e.orderId} received`,
    text: `Thank you for your order ${e.orderId}.\nTotal: ${formatMoney(e.totalAmount, e.currency)}.\n`
      + `Please pay before ${formatTime(e.expiresAt)}; after that the items go back on sale.\n`,
  }),
  payment_received: (e) => ({
    subject: `Payment received for order ${e.orderId}`,
    text: `We received your payment for order ${e.orderId}. Your items are yours.\n`,
  }),
  order_expired: (e) => ({
    subject: `Order ${e.orderId} expired`,
    text: `The payment window of order ${e.orderId} closed before a payment arrived, so the order expired and its items went back on sale.\n`,
  }),
  order_cancelled: (e) => ({
    subject: `Order ${e.orderId} cancelled`,
    text: `Order ${e.orderId} was cancelled ${CANCEL_REASONS[e.reason] ?? `(${e.reason})`}.\n`,
  }),
  payment_failed: (e) => ({
    subject: `Payment failed for order ${e.orderId}`,
    text: `Your payment for order ${e.orderId} did not go through (${e.reason}). You can try again before the payment window closes.\n`,
  }),
  item_sold_out: (e) => ({
    subject: `Sold out: ${e.productName}`,
    text: `${e.productName} sold out in your sale "${e.saleName}". Units come back if buyers do not pay in time; you can add stock while the sale runs.\n`,
  }),
  sale_ended: (e) => ({
    subject: `${e.cancelled ? 'Cancelled' : 'Ended'}: ${e.saleName}`,
    text: `Your sale "${e.saleName}" ${e.cancelled ? 'was cancelled' : 'has ended'}.\n`
      + `Units sold: ${e.summary.unitsSold}\nOrders: ${e.summary.orders} (paid ${e.summary.paid}, expired ${e.summary.expired}, cancelled ${e.summary.cancelled}, still pending ${e.summary.pending})\n`
      + `Revenue: ${formatMoney(e.summary.revenue, e.currency)}\n`,
  }),
  refund_issued: (e) => ({
    subject: `Refund issued for order ${e.orderId}`,
    text: `We refunded ${formatMoney(e.amount, e.currency)} for order ${e.orderId}. It can take a few days to show on your statement.\n`,
  }),
  order_shipped: (e) => ({
    subject: e.completesOrder ? `Order ${e.orderId} shipped: complete, everything has left` : `Order ${e.orderId} shipped`,
    text: `${e.items.reduce((n, i) => n + i.quantity, 0)} item(s) of order ${e.orderId} left with ${e.carrier}, tracking number ${e.trackingNumber}.\n`
      + (e.completesOrder ? 'That completes the order: nothing more will ship.\n' : ''),
  }),
  order_fulfilled: (e) => ({
    subject: `Order ${e.orderId} complete: everything has shipped`,
    text: `Every item of order ${e.orderId} that the shop could send has now left with a carrier; nothing more will ship. `
      + `The order page shows each parcel's tracking number.\n`,
  }),
  shipment_delivered: (e) => ({
    subject: `Order ${e.orderId} delivered`,
    text: `${e.carrier} delivered your parcel of order ${e.orderId} (tracking number ${e.trackingNumber}).\n`,
  }),
  line_cancelled: (e) => ({
    subject: `An item of order ${e.orderId} was cancelled`,
    text: `The shop could not ship ${e.quantity} unit(s) of order ${e.orderId} and cancelled them; ${formatMoney(e.amount, e.currency)} is refunded to you.\n`,
  }),
};

/** The subject and text of one notification. */
export function render<K extends NotificationKind>(kind: K, input: TemplateInput[K]): Rendered {
  return templates[kind](input);
}

/** The kinds a buyer who opted in also gets by SMS, and their short text (one SMS segment, no links). */
const sms: { [K in NotificationKind]?: (input: TemplateInput[K]) => string } = {
  payment_received: (e) => `flashsale: payment received for order ${e.orderId.slice(0, 8)}.`,
  payment_failed: (e) => `flashsale: payment for order ${e.orderId.slice(0, 8)} failed. Try again before the window closes.`,
  order_expired: (e) => `flashsale: order ${e.orderId.slice(0, 8)} expired unpaid.`,
  order_cancelled: (e) => `flashsale: order ${e.orderId.slice(0, 8)} was cancelled${e.reason === 'sale_cancelled' ? ' (sale cancelled)' : ''}.`,
  refund_issued: (e) => `flashsale: refunded ${formatMoney(e.amount, e.currency)} for order ${e.orderId.slice(0, 8)}.`,
};

/** The SMS text of a notice, or undefined when this kind is not sent by SMS. */
export function renderSms<K extends NotificationKind>(kind: K, input: TemplateInput[K]): string | undefined {
  return (sms[kind] as ((input: TemplateInput[K]) => string) | undefined)?.(input);
}
