// Over 300 lines on purpose: this file is the table of commands, each with its flags, its help text and its
// action side by side, so the one list `flashsale --help` shows is read in one place.
import { Command } from 'commander';
import { buildHttpApp, buildSystem, COMPONENTS, type ComponentName, type System } from '../app.ts';
import { ConfigError, developmentDefaultsIn, explicitlySet, loadConfig, otelEnvironment, refuseDevelopmentDefaults, type Config, type ProductionRole } from '../platform/config.ts';
import { migrate, openDatabase } from '../platform/database/index.ts';
import { startTracing, stopTracing } from '../platform/tracing/tracing.ts';
import { formatAudit, type AuditReport } from '../audit/index.ts';
import { formatReconciliation, type Reconciliation } from '../payment/reconcile.ts';
import type { DeadLetter } from '../platform/broker/broker.ts';
import { TokenService } from '../platform/tokens.ts';
import { DEMO, seedDemo } from '../seed.ts';
import { createSmsSimServer } from '../sms-sim/server.ts';
import { createPspServer, type PspServer } from '../psp/index.ts';
import { createOpsServer } from '../ops/server.ts';
import type { BenchFlags } from '../../bench/cli.ts';
import type { ChaosFlags } from '../../bench/chaos/cli.ts';

/** The configuration; a deployed `role` is also refused the development defaults (exit 2, naming each). */
function config(role?: ProductionRole): Config {
  try {
    const loaded = loadConfig();
    if (role) refuseDevelopmentDefaults(loaded, role);
    return loaded;
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`flashsale: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

async function withSystem<T>(run: (system: System) => Promise<T>): Promise<T> {
  const system = await buildSystem(config());
  try {
    return await run(system);
  } finally {
    await system.close();
  }
}

/**
 * `start` also runs the payment simulator in this process (a real HTTP server on PSP_PORT) and points
 * the two at each other unless PSP_URL / PSP_WEBHOOK_URL say otherwise; `api` runs the API alone.
 */
async function serve(withPsp: boolean, role: 'all' | 'api' = 'all'): Promise<void> {
  let cfg = config(role === 'api' ? 'api' : undefined);
  if (role === 'all') warnThisIsTheDemo(cfg);
  let psp: PspServer | undefined;
  if (withPsp) {
    const webhookUrl = explicitlySet('PSP_WEBHOOK_URL') ? cfg.PSP_WEBHOOK_URL : `http://${cfg.HOST}:${cfg.PORT}/v1/payments/webhook`;
    let pspAddress = '';
    psp = await createPspServer({ config: { ...cfg, PSP_WEBHOOK_URL: webhookUrl }, publicUrl: () => (explicitlySet('PSP_PUBLIC_URL') ? cfg.PSP_PUBLIC_URL : pspAddress) });
    pspAddress = await psp.listen({ host: cfg.HOST, port: cfg.PSP_PORT });
    if (!explicitlySet('PSP_URL')) cfg = { ...cfg, PSP_URL: pspAddress };
  }
  // The demo's pages are served here: the hosted payment page may send buyers back to this port.
  if (role === 'all' && !explicitlySet('WEB_ORIGINS')) cfg = { ...cfg, WEB_ORIGINS: `http://localhost:${cfg.PORT},http://127.0.0.1:${cfg.PORT},http://${cfg.HOST}:${cfg.PORT}` };
  // An API-only process leaves message handling to workers, which needs RabbitMQ to route to them.
  const system = await buildSystem(cfg, role === 'api' && cfg.AMQP_URL ? { components: [], role } : { role });
  const app = await buildHttpApp(system);
  await system.start();
  const seeded = cfg.SEED_DEMO ? await seedDemo(system) : undefined;
  const address = await app.listen({ host: cfg.HOST, port: cfg.PORT });
  const base = address.replace('127.0.0.1', 'localhost');
  system.log.info({ address, database: system.db.kind, broker: system.broker.kind, gate: system.gate.kind, psp: cfg.PSP_URL }, 'flashsale is up');
  if (seeded) printTour(base, seeded.saleId, seeded.cartSaleId);

  onStopSignal(async (signal) => {
    system.log.info({ signal }, 'shutting down: no new requests, committing what is in flight');
    await app.close();
    await system.close();
    await psp?.close();
  });
}

/**
 * `start` is the only command that runs on the published development defaults: it says so first,
 * on stderr, before anything else is logged.
 */
function warnThisIsTheDemo(cfg: Config): void {
  const defaults = developmentDefaultsIn(cfg);
  const bar = '!'.repeat(100);
  const lines = [
    bar,
    '!! WARNING: `flashsale start` is the embedded demo, not for production.',
    defaults.length > 0
      ? `!! It runs on published development defaults: ${defaults.join(', ')}.`
      : '!! Its secrets are set, but it still runs the payment simulator and the embedded engines in one process.',
    ...(defaults.some((d) => d !== 'SEED_DEMO') ? ['!! Anyone who has read the flashsale repository can forge tokens, webhooks and provider calls here.'] : []),
    ...(defaults.includes('SEED_DEMO') ? ['!! SEED_DEMO creates accounts whose passwords are printed below and published.'] : []),
    '!! Deploy `flashsale api`, `flashsale worker` (and a real provider) instead: they refuse these defaults.',
    bar,
  ];
  process.stderr.write(`${lines.join('\n')}\n`);
}

/** Runs `shutdown` once, on the first SIGTERM or SIGINT, then exits 0. */
function onStopSignal(shutdown: (signal: NodeJS.Signals) => Promise<void>): void {
  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    await shutdown(signal);
    await stopTracing();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

function printTour(base: string, saleId: string | undefined, cartSaleId: string | undefined): void {
  const lines = [
    '',
    `flashsale is listening on ${base}   (API docs: ${base}/docs, OpenAPI: ${base}/openapi.json)`,
    `The shop in a browser: ${base}/   (merchant: ${base}/#/merchant, operations: ${base}/#/ops)`,
    '',
    'Demo accounts:',
    `  admin     ${DEMO.admin.email} / ${DEMO.admin.password}`,
    `  merchant  ${DEMO.merchant.email} / ${DEMO.merchant.password}`,
    ...DEMO.buyers.map((b) => `  buyer     ${b.email} / ${b.password}`),
    '',
    `Demo sales (open a minute after first start): order-hold ${saleId ?? '-'}, cart-hold ${cartSaleId ?? '-'}`,
    '',
    'Try:',
    `  curl -s ${base}/v1/flash-sales | jq`,
    `  TOKEN=$(curl -s ${base}/v1/auth/login -H 'content-type: application/json' \\`,
    `          -d '{"email":"${DEMO.buyers[0]!.email}","password":"${DEMO.buyers[0]!.password}"}' | jq -r .token)`,
    `  ITEM=$(curl -s ${base}/v1/flash-sales/${saleId ?? 'SALE_ID'} | jq -r '.items[0].id')`,
    `  curl -s ${base}/v1/orders -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \\`,
    `          -H "idempotency-key: $(uuidgen)" -d "{\\"items\\":[{\\"saleItemId\\":\\"$ITEM\\",\\"quantity\\":1}]}" | jq`,
    `  curl -s ${base}/v1/orders -H "authorization: Bearer $TOKEN" | jq`,
    '  npm run flashsale -- audit',
    '',
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

class CliError extends Error {}

/**
 * Admin commands ask the running server first (an embedded PGlite database belongs to one process);
 * undefined means nothing listens, and the command may open the database itself.
 */
async function askServer<T>(method: 'GET' | 'POST', path: string): Promise<{ status: number; body: T } | undefined> {
  const cfg = config();
  const token = new TokenService(cfg.JWT_SECRET, 300).issue({ userId: '00000000-0000-4000-8000-000000000000', role: 'admin' });
  let response: Response;
  try {
    response = await fetch(`http://${cfg.HOST}:${cfg.PORT}${path}`, { method, headers: { authorization: `Bearer ${token}` } });
  } catch (error) {
    const code = (error as { cause?: { code?: string } }).cause?.code;
    if (code === 'ECONNREFUSED') return undefined;
    throw new CliError(`could not reach the server at ${cfg.HOST}:${cfg.PORT}: ${String(error)}`);
  }
  if (response.status === 401) throw new CliError('the server refused the CLI\'s admin token: run the CLI with the same JWT_SECRET as the server');
  return { status: response.status, body: (await response.json()) as T };
}

async function audit(live: boolean): Promise<AuditReport> {
  const answer = await askServer<AuditReport>('GET', `/v1/admin/audit?quiet=${!live}`);
  if (answer && (answer.status === 200 || answer.status === 409)) return answer.body;
  if (answer) throw new CliError(`the server answered the audit with ${answer.status}: ${JSON.stringify(answer.body)}`);
  // No server: the gate is rebuilt from the database at open, so gate-vs-database is trivially equal here.
  return withSystem(async (system) => {
    await system.broker.drain();
    return system.audit({ quiet: !live });
  });
}

const program = new Command('flashsale').description('Flash-sale order processing: never oversold, lost, double-charged or stuck.');

/** The commands that serve traffic trace it when OTEL_* asks (docs/operations.md#following-one-order-through-its-trace); flushed at shutdown. */
const TRACED = new Set(['start', 'api', 'worker']);
program.hook('preAction', async (_program, command) => {
  if (TRACED.has(command.name())) await startTracing({ role: command.name(), env: otelEnvironment() });
});

program.command('start').description('Run everything in one process: API, workers, sweeper and the payment simulator (embedded defaults: PGlite + in-process broker)').action(() => serve(true));
program.command('api')
  .description('Run the HTTP API without the payment simulator (point PSP_URL at one); with AMQP_URL, message handling is left to workers')
  .action(() => serve(false, 'api'));

program.command('worker')
  .description(`Run message consumers (and the outbox relay, the sweeper with order); HTTP only for /health, /ready and /metrics on WORKER_PORT; needs AMQP_URL unless every component runs here`)
  .option('--components <list>', `comma-separated: ${COMPONENTS.join(',')}`, COMPONENTS.join(','))
  .action(async (opts: { components: string }) => {
    const wanted = opts.components.split(',').map((c) => c.trim()).filter(Boolean);
    const unknown = wanted.filter((c) => !(COMPONENTS as readonly string[]).includes(c));
    if (unknown.length > 0) throw new CliError(`unknown component(s) ${unknown.join(', ')}; choose from ${COMPONENTS.join(', ')}`);
    const cfg = config('worker');
    const system = await buildSystem(cfg, { components: wanted as ComponentName[], role: 'worker' });
    await system.start();
    const ops = await createOpsServer(system);
    const address = await ops.listen({ host: cfg.HOST, port: cfg.WORKER_PORT });
    system.log.info({ components: wanted, broker: system.broker.kind, database: system.db.kind, address }, 'worker is up');
    onStopSignal(async (signal) => {
      system.log.info({ signal }, 'worker shutting down: finishing in-flight messages');
      await ops.close();
      await system.close();
    });
  });

program.command('psp')
  .description('Run the payment gateway simulator alone (Stripe-like API, hosted pay page, signed webhooks, fault knobs)')
  .action(async () => {
    const cfg = config('psp');
    const psp = await createPspServer({ config: cfg });
    const address = await psp.listen({ host: cfg.HOST, port: cfg.PSP_PORT });
    psp.log.info({ address, webhookUrl: cfg.PSP_WEBHOOK_URL, dataDir: cfg.PSP_DATA_DIR }, 'psp simulator is up');
    onStopSignal(() => psp.close());
  });

program.command('sms-sim')
  .description('Run the SMS provider simulator (POST /v1/messages with a bearer key and Idempotency-Key, fault knobs at /_sim/knobs)')
  .action(async () => {
    const cfg = config('sms-sim');
    const sim = await createSmsSimServer({ config: cfg });
    const address = await sim.listen({ host: cfg.HOST, port: cfg.SMS_SIM_PORT });
    sim.log.info({ address }, 'sms simulator is up');
    onStopSignal(() => sim.close());
  });

program.command('migrate').description('Apply pending database migrations').action(async () => {
  const db = await openDatabase(config());
  try {
    const applied = await migrate(db);
    process.stdout.write(applied.length ? `applied migrations ${applied.join(', ')}\n` : 'database is up to date\n');
  } finally {
    await db.close();
  }
});

program.command('seed').description('Create the demo accounts and a demo sale opening in a minute').action(async () => {
  const result = await withSystem((system) => seedDemo(system));
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
});

program.command('audit')
  .description('Check the invariants: stock balances, per-buyer limits, orders vs holds, money reconciled with the provider, messages delivered')
  .option('--live', 'traffic may be in flight: skip the gate-vs-database and delivery checks')
  .option('--json', 'print the report as JSON')
  .action(async (opts: { live?: boolean; json?: boolean }) => {
    const report = await audit(opts.live ?? false);
    process.stdout.write(`${opts.json ? JSON.stringify(report, null, 2) : formatAudit(report)}\n`);
    process.exitCode = report.ok ? 0 : 1;
  });

program.command('reconcile')
  .description("Reconcile the database with the payment provider: every capture pays one order exactly or was refunded in full; received − refunded = paid orders")
  .option('--live', 'traffic may be in flight: differences it explains are counted as unsettled, not as mismatches')
  .option('--json', 'print the report as JSON')
  .action(async (opts: { live?: boolean; json?: boolean }) => {
    const answer = await askServer<Reconciliation>('GET', `/v1/admin/reconciliation?quiet=${!opts.live}`);
    if (answer && answer.status !== 200 && answer.status !== 409) throw new CliError(`the server answered the reconciliation with ${answer.status}: ${JSON.stringify(answer.body)}`);
    const report = answer ? answer.body : await withSystem(async (system) => {
      await system.broker.drain();
      return system.reconcile({ quiet: !opts.live });
    });
    process.stdout.write(`${opts.json ? JSON.stringify(report, null, 2) : formatReconciliation(report)}\n`);
    process.exitCode = report.ok ? 0 : 1;
  });

/** The engine flags of the commands that create their own databases, prefixes and queues (bench, chaos). */
function withEngineOptions(command: Command): Command {
  return command
    .option('--postgres <url>', 'PostgreSQL (default: DATABASE_URL, else the local server)')
    .option('--redis <url>', 'Redis (default: REDIS_URL, else the local server)')
    .option('--amqp <url>', 'RabbitMQ (default: AMQP_URL, else the local server)');
}

withEngineOptions(program.command('bench'))
  .description('Run a flash sale against flashsale and the seeds\' approaches, report attempts/s, latencies, oversold (bench/results/)')
  .option('--scenario <name>', 'flash (one item), multi (20 items, 1-3 per buyer), lifecycle (flash, then pay / cancel / expire and re-sell) or rush (a unit for every buyer: settled orders/s)', 'flash')
  .option('--window <s>', 'the sale\'s payment window in seconds (default: 20 for lifecycle, else 900)')
  .option('--quick', 'every run on a smaller scale (see docs/benchmarks.md for each scenario\'s quick size)')
  .option('--buyers <n>', 'virtual buyers, each with its own token')
  .option('--units <n>', 'units on sale, over all items')
  .option('--items <n>', 'sale items')
  .option('--limit <n>', 'per-buyer limit')
  .option('--connections <n>', 'HTTP connections (requests in flight)', '128')
  .option('--runs <names>', 'only these runs, comma-separated (ceiling, flashsale-embedded, flashsale-distributed, guarded-update, …)')
  .option('--out <dir>', 'where the reports go', 'bench/results')
  .option('--seed <n>', 'seed of the plan: who buys what, in which order', '1')
  .option('--no-progress', 'no progress bar')
  .option('--cpu-prof <dir>', 'write a V8 CPU profile of every target process into this directory')
  .action(async (flags: BenchFlags) => {
    // Loaded on demand: the chart renderer is heavy and no other command needs it.
    const { benchCommand } = await import('../../bench/cli.ts');
    if (!(await benchCommand(flags, process.argv.slice(2)))) process.exitCode = 1;
  });

withEngineOptions(program.command('chaos'))
  .description('Run flashsale as real processes on PostgreSQL + Redis + RabbitMQ, inject faults during a sale (it stops and starts RabbitMQ with rabbitmqctl), prove nothing is lost, doubled or oversold (docs/reliability.md)')
  .option('--short', 'one fault of each kind on a small sale (a few minutes; part of npm test)')
  .option('--only <names>', 'only these scenarios, comma-separated (worker-kill, api-kill, rabbitmq-stop, …)')
  .option('--out <dir>', 'where chaos.json goes', 'bench/results')
  .option('--doc <file>', 'the Markdown report to regenerate', 'docs/reliability.md')
  .option('--keep-failed', 'leave a failed scenario\'s database, Redis keys and queues in place for inspection')
  .action(async (flags: ChaosFlags) => {
    const { chaosCommand } = await import('../../bench/chaos/cli.ts');
    if (!(await chaosCommand(flags, process.argv.slice(2)))) process.exitCode = 1;
  });

const dlq = program.command('dlq').description('Dead-lettered messages');
dlq.command('list').option('--limit <n>', 'how many', '50').action(async (opts: { limit: string }) => {
  const answer = await askServer<{ deadLetters: DeadLetter[] }>('GET', `/v1/admin/dead-letters?limit=${Number(opts.limit)}`);
  if (answer && answer.status !== 200) throw new CliError(`the server answered ${answer.status}: ${JSON.stringify(answer.body)}`);
  const letters = answer ? answer.body.deadLetters : await withSystem((s) => s.broker.listDeadLetters(Number(opts.limit)));
  for (const l of letters) process.stdout.write(`${l.consumer}\t${l.messageId}\t${l.topic}\tattempts=${l.attempts}\t${l.lastError ?? ''}\n`);
  if (letters.length === 0) process.stdout.write('no dead letters\n');
});
dlq.command('show <consumer> <messageId>').action(async (consumer: string, messageId: string) => {
  const answer = await askServer<DeadLetter>('GET', `/v1/admin/dead-letters/${encodeURIComponent(consumer)}/${encodeURIComponent(messageId)}`);
  if (answer && answer.status !== 200 && answer.status !== 404) throw new CliError(`the server answered ${answer.status}: ${JSON.stringify(answer.body)}`);
  const letter = answer ? (answer.status === 200 ? answer.body : undefined) : await withSystem((s) => s.broker.getDeadLetter(consumer, messageId));
  process.stdout.write(`${letter ? JSON.stringify(letter, null, 2) : 'not found'}\n`);
  if (!letter) process.exitCode = 1;
});
dlq.command('replay <consumer> <messageId>').action(async (consumer: string, messageId: string) => {
  const answer = await askServer<unknown>('POST', `/v1/admin/dead-letters/${encodeURIComponent(consumer)}/${encodeURIComponent(messageId)}/replay`);
  if (answer && answer.status !== 202 && answer.status !== 404) throw new CliError(`the server answered ${answer.status}: ${JSON.stringify(answer.body)}`);
  const done = answer ? answer.status === 202 : await withSystem(async (s) => {
    const ok = await s.broker.replayDeadLetter(consumer, messageId);
    if (ok) await s.broker.drain();
    return ok;
  });
  process.stdout.write(done ? 'replayed\n' : 'not found\n');
  if (!done) process.exitCode = 1;
});

try {
  await program.parseAsync(process.argv);
} catch (error) {
  // Exit 1 means "the audit found violations"; anything that kept a command from answering is 2.
  process.stderr.write(`flashsale: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(2);
}
