import type { Config } from './platform/config.ts';
import { offsetClock, type Clock } from './platform/clock.ts';
import { openDatabase, migrate, type Database } from './platform/database/index.ts';
import { InProcessBroker } from './platform/broker/in-process.ts';
import { createEmitter } from './platform/broker/outbox.ts';
import { RabbitMqBroker } from './platform/broker/rabbitmq.ts';
import { declaringOnly, type Broker, type HandledOutcome, type Subscriber } from './platform/broker/broker.ts';
import { MemoryStockGate } from './platform/gate/memory.ts';
import { connectRedis, redisTarget, type RedisClient, type RedisTarget } from './platform/redis.ts';
import { RedisStockGate } from './platform/gate/redis.ts';
import { LocalSoldOutChannel, RedisSoldOutChannel } from './platform/gate/sold-out-channel.ts';
import type { StockGate } from './platform/gate/gate.ts';
import { createLogger, type Logger } from './platform/logger.ts';
import { createMetrics, type Metrics, type ProcessRole } from './platform/metrics.ts';
import { countingGate } from './platform/gate/counted.ts';
import { TokenService } from './platform/tokens.ts';
import { IdempotencyStore } from './platform/idempotency.ts';
import { createHttpServer, type App } from './platform/http/server.ts';
import { registerOpsRoutes } from './ops/http.ts';
import { saleAttempts } from './ops/sale-attempts.ts';
import { createAccounts, type Accounts } from './accounts/index.ts';
import { registerAccountRoutes } from './accounts/http.ts';
import { createInventory, type Inventory } from './inventory/index.ts';
import { createCatalog, type Catalog } from './catalog/index.ts';
import { registerCatalogRoutes } from './catalog/http.ts';
import { createOrderRecords, createOrders, type Orders } from './order/index.ts';
import { createPayments, type Payments } from './payment/index.ts';
import { registerPaymentRoutes, webOrigins } from './payment/http.ts';
import { HttpPaymentGateway } from './platform/payment-provider/http-client.ts';
import type { PaymentGateway } from './platform/payment-provider/port.ts';
import { createMailer, type Mailer } from './platform/mailer.ts';
import { createNotifications, type Notifications } from './notification/index.ts';
import { registerNotificationRoutes } from './notification/http.ts';
import type { MerchantDirectory } from './notification/index.ts';
import { MemorySmsSender, type SmsSender } from './platform/sms/port.ts';
import { HttpSmsSender } from './platform/sms/http-client.ts';
import { saleEndsSettledAt } from './catalog/index.ts';
import { registerOrderRoutes } from './order/http.ts';
import { registerWebPages } from './web/index.ts';
import { createFulfillment, type Fulfillment } from './fulfillment/index.ts';
import { registerFulfillmentRoutes } from './fulfillment/http.ts';
import { runAudit, type AuditReport } from './audit/index.ts';
import { formatReconciliation, type Reconciliation } from './payment/reconcile.ts';

/** Everything the running system is made of, built from config by `buildSystem`. */
export interface System {
  config: Config;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  db: Database;
  broker: Broker;
  gate: StockGate;
  tokens: TokenService;
  idempotency: IdempotencyStore;
  accounts: Accounts;
  inventory: Inventory;
  catalog: Catalog;
  orders: Orders;
  payments: Payments;
  fulfillment: Fulfillment;
  gateway: PaymentGateway;
  notifications: Notifications;
  mailer: Mailer;
  sms: SmsSender;
  /** The Redis connection the HTTP rate limits count in (REDIS_URL set): opened by the first HTTP app, closed with the system. */
  rateLimitRedis(): RedisClient | undefined;
  audit(opts?: { quiet?: boolean }): Promise<AuditReport>;
  /** The money side of the audit alone: the database against the provider's intents and refunds. */
  reconcile(opts?: { quiet?: boolean }): Promise<Reconciliation>;
  /** Starts background work (message delivery). */
  start(): Promise<void>;
  close(): Promise<void>;
}

/** The components whose message consumers a process runs (`flashsale worker --components …`). */
export const COMPONENTS = ['inventory', 'order', 'payment', 'fulfillment', 'notification'] as const;
export type ComponentName = (typeof COMPONENTS)[number];

export interface SystemOverrides {
  /** Consumers to run in this process; all by default. */
  components?: readonly ComponentName[];
  clock?: Clock;
  db?: Database;
  log?: Logger;
  gateway?: PaymentGateway;
  mailer?: Mailer;
  /** The role this process runs, as `flashsale_process_info{role}` (default `command`). */
  role?: ProcessRole;
  sms?: SmsSender;
}

/**
 * The composition root: builds every adapter from config, then the components, passing each its
 * dependencies. Nothing else constructs adapters; nothing reads config but this and the CLI.
 */
export async function buildSystem(config: Config, overrides: SystemOverrides = {}): Promise<System> {
  const clock = overrides.clock ?? offsetClock(config.CLOCK_OFFSET_MS);
  const log = overrides.log ?? createLogger(config);
  const metrics = createMetrics(overrides.role);
  const db = overrides.db ?? (await openDatabase(config));
  await migrate(db);
  // Bound once orders exist (below): consumers give way to buyers.
  let buyersWaiting = (): boolean => false;
  const broker = openBroker(config, db, clock, log.child({ component: 'broker' }), () => buyersWaiting(), (consumer, outcome) => metrics.messagesHandled.inc({ consumer, outcome }));
  const components = new Set(overrides.components ?? COMPONENTS);
  if (broker.kind === 'in-process' && components.size < COMPONENTS.length) {
    // The in-process relay fans out only to the consumers registered in the relaying process.
    throw new Error('splitting consumers over processes needs RabbitMQ: set AMQP_URL, or run every component in each process');
  }
  // The one outbox emitter: every component's events go through it, and the relay is nudged after commit.
  const emit = createEmitter(clock, () => broker.nudge());
  const redis = redisTarget(config);
  const gate: StockGate = redis
    ? RedisStockGate.connect(redis, { prefix: config.REDIS_KEY_PREFIX, onError: (err) => log.warn({ err }, 'stock gate') })
    : new MemoryStockGate();
  const rateLimitRedis = rateLimitConnection(redis);
  const tokens = new TokenService(config.JWT_SECRET, config.JWT_TTL_S);
  const idempotency = new IdempotencyStore(db, clock);

  const accounts = createAccounts({ db, clock, tokens });
  const soldOutChannel = redis ? new RedisSoldOutChannel(redis, config.REDIS_KEY_PREFIX) : new LocalSoldOutChannel();
  const inventory = createInventory({ db, clock, gate: countingGate(gate, (outcome) => metrics.gateDecisions.inc({ outcome })), emit, soldOutChannel });
  const catalog = createCatalog({ db, clock, inventory, emit, notFoundCacheMax: config.CATALOG_NOT_FOUND_CACHE_MAX });
  const gateway = overrides.gateway ?? HttpPaymentGateway.fromConfig(config);
  // Payment reads orders through order's records (built on the database alone); order asks payment
  // before closing an order through its own port, PaymentSettlement — no cycle, nothing bound late.
  const payments = createPayments({
    db, clock, gateway, orders: createOrderRecords({ db, clock }), emit, log: log.child({ component: 'payment' }),
    onCaptureRejected: (reason) => metrics.capturesRejected.inc({ reason }),
  });
  const orders = createOrders({
    db, clock, catalog, inventory, idempotency, emit, payments,
    graceS: config.PAYMENT_GRACE_S,
    log: log.child({ component: 'order' }),
    onBatchCommitted: (attempts, units) => {
      metrics.groupCommitBatch.observe(attempts);
      metrics.holdsCreated.inc(units);
    },
    onDatabaseRefusal: (reason) => metrics.oversoldGuardTrips.inc({ reason }),
    groupCommit: { maxWaitMs: config.GROUP_COMMIT_MAX_WAIT_MS, maxBatch: config.GROUP_COMMIT_MAX_BATCH, maxQueue: config.GROUP_COMMIT_MAX_QUEUE },
  });

  buyersWaiting = () => orders.buyersWaiting();
  const fulfillment = createFulfillment({
    db, clock, emit, orders, catalog, inventory, shopOf: (userId) => accounts.shopOf(userId), log: log.child({ component: 'fulfillment' }),
  });
  const mailer = overrides.mailer ?? createMailer(config);
  const sms: SmsSender = overrides.sms ?? (config.SMS_URL
    ? new HttpSmsSender({ url: config.SMS_URL, apiKey: config.SMS_API_KEY, from: config.SMS_FROM, timeoutMs: config.SMS_TIMEOUT_MS })
    : new MemorySmsSender());
  const notifications = createNotifications({
    db, clock, mailer, emailsOf: (userIds) => accounts.emailsOf(userIds), log: log.child({ component: 'notification' }), emit,
    phonesOf: (userIds) => accounts.phonesOf(userIds), sms, merchants: merchantDirectory(catalog, accounts, orders),
  });
  subscribeComponents(broker, components, { inventory, order: orders, payment: payments, fulfillment, notification: notifications });

  await gate.open(() => inventory.rebuildGate());
  await catalog.warm();

  const reconcile = async (opts: { quiet?: boolean } = {}) => payments.reconcile(await orders.terms(), { quiet: opts.quiet ?? false });
  const reconciler = periodicReconciliation(reconcile, metrics, log.child({ component: 'reconcile' }));

  return {
    config, clock, log, metrics, db, broker, gate, tokens, idempotency, accounts, inventory, catalog, orders, payments, fulfillment, gateway, notifications, mailer, sms,
    rateLimitRedis: rateLimitRedis.get,
    audit: (opts = {}) => runAudit({ inventory, orders, payments, fulfillment, catalog, broker, now: () => clock.now(), graceMs: config.PAYMENT_GRACE_S * 1000 }, { quiet: opts.quiet ?? false }),
    reconcile,
    async start() {
      await broker.start();
      if (components.has('order')) orders.startSweeper(config.SWEEPER_INTERVAL_MS);
      if (components.has('payment')) reconciler.start(config.RECONCILE_INTERVAL_MS);
      catalog.startRefreshing(config.CATALOG_REFRESH_MS);
    },
    async close() {
      reconciler.stop();
      catalog.stopRefreshing();
      await orders.close();
      await broker.stop();
      await mailer.close();
      await sms.close?.();
      await gate.close?.();
      await soldOutChannel.close();
      rateLimitRedis.close();
      await db.close();
    },
  };
}

/** The HTTP API over a built system. Listening is the caller's business. */
export async function buildHttpApp(system: System): Promise<App> {
  const { config, log, metrics, tokens, idempotency } = system;
  const { app, guards } = await createHttpServer({ config, log, metrics, tokens, idempotency, rateLimitRedis: system.rateLimitRedis() });
  const attempts = saleAttempts((saleItemId) => system.catalog.getSaleItem(saleItemId)?.saleId, {
    redis: config.REDIS_URL ? system.rateLimitRedis : undefined, prefix: config.REDIS_KEY_PREFIX,
  });
  registerOpsRoutes(app, { system, guards, attempts });
  registerAccountRoutes(app, { accounts: system.accounts, guards, limits: config });
  registerCatalogRoutes(app, {
    catalog: system.catalog, inventory: system.inventory, accounts: system.accounts, guards,
    now: () => system.clock.now(), live: { intervalMs: config.LIVE_INTERVAL_MS, maxStreams: config.LIVE_STREAMS_MAX },
  });
  registerOrderRoutes(app, { orders: system.orders, guards, metrics, shipmentsOf: (orderId) => system.fulfillment.shipmentsOf(orderId), onAttempt: attempts.count,
    live: { intervalMs: config.LIVE_ORDER_INTERVAL_MS, maxStreams: config.LIVE_STREAMS_MAX },
  });
  registerFulfillmentRoutes(app, { fulfillment: system.fulfillment, guards });
  await registerPaymentRoutes(app, { payments: system.payments, guards, returnOrigins: webOrigins(config.WEB_ORIGINS) });
  registerNotificationRoutes(app, { notifications: system.notifications, guards });
  await registerWebPages(app);
  await app.ready();
  return app;
}

/** Who a merchant's notice goes to, and what it says, from catalog (the sale), accounts (the shop's owner) and order (the summary). */
function merchantDirectory(catalog: Catalog, accounts: Accounts, orders: Orders): MerchantDirectory {
  return {
    async saleItem(saleItemId) {
      const item = await catalog.findSaleItem(saleItemId);
      const sale = item && (await catalog.findFlashSale(item.saleId));
      const merchantId = sale && (await accounts.ownerOfShop(sale.shopId));
      return merchantId ? { merchantId, saleName: sale.name, productName: item.productName } : undefined;
    },
    async sale(saleId) {
      // Another process may have changed the sale: the end is judged on the database's copy.
      await catalog.refresh();
      const sale = await catalog.findFlashSale(saleId);
      const merchantId = sale && (await accounts.ownerOfShop(sale.shopId));
      return merchantId ? { merchantId, saleName: sale.name, currency: sale.currency, cancelled: sale.cancelledAt !== null, settledAt: saleEndsSettledAt(sale) } : undefined;
    },
    summary: (saleId) => orders.saleSummary(saleId),
  };
}

/**
 * The connection the HTTP edge's rate limits count in, so that every API process counts against the
 * same limits. Opened when the first HTTP app asks for it (workers and one-shot commands never limit
 * requests), shared by every app over the system, closed with it.
 */
function rateLimitConnection(target: RedisTarget | undefined): { get(): RedisClient | undefined; close(): void } {
  let client: RedisClient | undefined;
  return {
    get() {
      if (target && !client) {
        client = connectRedis(target, { connectTimeout: 1000, maxRetriesPerRequest: 1 });
        // A failure surfaces per request, where the limiter lets it through (skipOnError); unheard,
        // ioredis would print every reconnection error.
        client.on('error', () => {});
      }
      return client;
    },
    close() {
      client?.disconnect();
    },
  };
}

/**
 * The payment component's periodic reconciliation (live: traffic may be in flight). Mismatches are
 * logged as errors and exported as a gauge for alerting; unsettled differences only as a gauge,
 * since a webhook in flight explains them (a persistent rise is itself worth an alert).
 */
function periodicReconciliation(reconcile: (opts: { quiet: boolean }) => Promise<Reconciliation>, metrics: Metrics, log: Logger) {
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  async function runOnce(): Promise<void> {
    if (running) return;
    running = true;
    try {
      const report = await reconcile({ quiet: false });
      metrics.reconciliationMismatches.set(report.mismatches.length);
      metrics.reconciliationUnsettled.set(report.unsettled);
      metrics.reconciliationLastRun.set(Date.now() / 1000);
      metrics.reconciliationRuns.inc({ outcome: report.ok ? 'ok' : 'mismatch' });
      if (!report.ok) log.error({ mismatches: report.mismatches }, formatReconciliation(report));
    } catch (error) {
      metrics.reconciliationRuns.inc({ outcome: 'failed' });
      log.warn({ err: error }, 'reconciliation could not run; will retry');
    } finally {
      running = false;
    }
  }
  return {
    start(intervalMs: number): void {
      clearInterval(timer);
      if (intervalMs <= 0) return;
      timer = setInterval(() => void runOnce(), intervalMs);
      timer.unref();
    },
    stop(): void {
      clearInterval(timer);
    },
  };
}

/** RabbitMQ when AMQP_URL is set, else the in-process broker over the outbox (whose consumers give way to buyers). */
function openBroker(config: Config, db: Database, clock: Clock, log: Logger, buyersWaiting: () => boolean, onHandled: (consumer: string, outcome: HandledOutcome) => void): Broker {
  if (config.AMQP_URL) {
    return new RabbitMqBroker(db, clock, log, {
      url: config.AMQP_URL, prefix: config.AMQP_PREFIX, prefetch: config.AMQP_PREFETCH, confirmTimeoutMs: config.AMQP_CONFIRM_TIMEOUT_MS,
      maxAttempts: config.BROKER_MAX_ATTEMPTS, backoffBaseMs: config.BROKER_BACKOFF_BASE_MS, pollMs: config.BROKER_POLL_MS, onHandled,
    });
  }
  return new InProcessBroker(db, clock, log, {
    pollMs: config.BROKER_POLL_MS, maxAttempts: config.BROKER_MAX_ATTEMPTS, backoffBaseMs: config.BROKER_BACKOFF_BASE_MS, giveWayTo: buyersWaiting, onHandled,
  });
}

/** Each component's consumers; components this process does not run still get their queues declared (see declareConsumerGroup). */
function subscribeComponents(broker: Broker, running: ReadonlySet<ComponentName>, components: Record<ComponentName, { subscribe(broker: Subscriber): void }>): void {
  for (const name of COMPONENTS) components[name].subscribe(running.has(name) ? broker : declaringOnly(broker));
}
