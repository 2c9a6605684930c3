export const paymentOfOrder = `
  select id, order_id, user_id, provider_intent_id, amount, currency, status, last_error, hosted_url, created_at, updated_at
    from payments where order_id = $1`;

/** The payment a capture is for, locked: a webhook and a close check seeing the same capture apply it once. */
export const lockPaymentOfIntent = `
  select id, order_id, user_id, provider_intent_id, amount, currency, status, last_error, hosted_url
    from payments where provider_intent_id = $1 for update`;

export const insertPayment = `
  insert into payments (id, order_id, user_id, provider_intent_id, amount, currency, status, hosted_url, created_at, updated_at)
  values ($1, $2, $3, $4, $5, $6, 'pending', $8, $7, $7) on conflict (order_id) do nothing`;

/** The capture: exactly once per payment, whichever of webhook or close check sees it first. */
export const markSucceeded = `
  update payments set status = 'succeeded', updated_at = $2 where provider_intent_id = $1 and status <> 'succeeded'
  returning id, order_id, user_id, amount, currency`;

export const insertSucceededPayment = `
  insert into payments (id, order_id, user_id, provider_intent_id, amount, currency, status, created_at, updated_at)
  values ($1, $2, null, $3, $4, $5, 'succeeded', $6, $6) on conflict do nothing
  returning id, order_id, user_id, amount, currency`;

export const markFailed = `
  update payments set status = 'failed', last_error = $3, updated_at = $2 where provider_intent_id = $1 and status = 'pending'
  returning id, order_id, user_id`;

/** A payment recorded and not settled: the buyer may still pay through it. */
export const openPaymentOfOrder = `select 1 from payments where order_id = $1 and status in ('pending', 'failed')`;

export const markCanceled = `
  update payments set status = 'canceled', updated_at = $2 where provider_intent_id = $1 and status in ('pending', 'failed')`;

/** The payment's own intent was captured with the wrong amount or currency: it pays nothing, and is refunded as a rejected capture. */
export const markCaptureRejected = `
  update payments set status = 'canceled', last_error = $3, updated_at = $2 where provider_intent_id = $1 and status in ('pending', 'failed')`;

export const insertRejectedCapture = `
  insert into rejected_captures (provider_intent_id, order_id, amount, currency, reason, status, created_at)
  values ($1, $2, $3, $4, $5, 'refund_pending', $6) on conflict do nothing returning provider_intent_id`;

export const markRejectedCaptureRefunded = `
  update rejected_captures set status = 'refunded', provider_refund_id = $2, refunded_at = $3
   where provider_intent_id = $1 and status = 'refund_pending'`;

/** The provider has no capture behind the event (no such intent, or not succeeded): nothing to refund. */
export const markRejectedCaptureNotCaptured = `
  update rejected_captures set status = 'not_captured', refunded_at = $2 where provider_intent_id = $1 and status = 'refund_pending'`;

export const rejectedCaptures = `
  select provider_intent_id, order_id, amount, currency, reason, status, provider_refund_id from rejected_captures`;

export const recordWebhook = `
  insert into webhook_events (event_id, type, received_at) values ($1, $2, $3) on conflict do nothing returning 1`;

export const refundsOfPayment = `select id, refund_key, amount from refunds where payment_id = $1`;

/** $8: 'full', or 'line-<holdId>' for a refund in part; one refund per key and payment. */
export const insertRefund = `
  insert into refunds (id, payment_id, order_id, provider_refund_id, amount, reason, status, created_at, updated_at, refund_key)
  values ($1, $2, $3, $4, $5, $6, 'succeeded', $7, $7, $8) on conflict (payment_id, refund_key) do nothing returning id`;

export const auditCaptures = `
  select p.order_id, count(*) filter (where p.status = 'succeeded') as captures
    from payments p group by p.order_id`;

/** Per payment: its refunds together, which must not exceed it. */
export const auditRefunds = `
  select p.id, p.order_id, sum(r.amount) as amount, p.amount as paid, p.status as payment_status
    from refunds r join payments p on p.id = r.payment_id group by p.id, p.order_id, p.amount, p.status`;

export const succeededPayments = `select id, order_id, provider_intent_id, amount, currency from payments where status = 'succeeded'`;

export const recordedRefunds = `
  select r.provider_refund_id, r.amount, p.provider_intent_id from refunds r join payments p on p.id = r.payment_id`;

export const allPayments = `select order_id, provider_intent_id, amount, currency, status from payments`;
