/**
 * The payment service provider simulator (`flashsale psp`): a stand-alone HTTP server whose wire
 * format follows Stripe's, with fault-injection knobs. Not a business component: the app talks to it
 * only over HTTP, through HttpPaymentGateway (src/platform/payment-provider/http-client.ts).
 */
export { createPspServer, type PspConfig, type PspOptions, type PspServer } from './server.ts';
export { seededRandom, type Knobs } from './knobs.ts';
export { signatureHeader, type RetryPolicy } from './webhooks.ts';
export type { EventObject, IntentObject, RefundObject } from './state.ts';
