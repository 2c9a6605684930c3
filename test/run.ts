import { existsSync, readdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { run } from 'node:test';
import { spec } from 'node:test/reporters';
import { enableCompileCache, getCompileCacheDir } from 'node:module';

/**
 * Picks the suites of a test command and runs them with node's test runner:
 *
 * - `npm test` (`all`): every *.test.ts under src, test and bench except the drill's.
 * - `npm run test:embedded` (`embedded`): only the suites that need no PostgreSQL, Redis or
 *   RabbitMQ — `all` less NEEDS_SERVICES.
 * - `npm run test:drill` runs test/drill/ alone, one file at a time (not through this script).
 *
 * A new suite is in `all` (and so in `embedded`) by default; one that needs a service goes under
 * test/distributed/ or is listed in NEEDS_SERVICES, or `test:embedded` fails on a machine without
 * that service (checked by running it where 127.0.0.1 has no PostgreSQL, Redis or RabbitMQ:
 * `unshare -n sh -c 'ip link set lo up && npm run test:embedded'` as root).
 */
const ROOT = resolve(import.meta.dirname, '..');

/** Suites of the drill: they stop or disturb a shared service (RabbitMQ stopped, Redis's script cache flushed). */
const DRILL = 'test/drill/';

/** Suites (or folders of suites) that need PostgreSQL, Redis or RabbitMQ. */
const NEEDS_SERVICES = [
  'test/distributed/',
  'test/multiprocess.test.ts',
  // Its login-throttling-over-Redis and /ready-with-PostgreSQL-gone parts need the services.
  'test/attack-surface.test.ts',
  'src/platform/database/postgres.test.ts',
  'src/platform/broker/rabbitmq.test.ts',
  'src/platform/gate/redis.test.ts',
  'src/platform/gate/gate.property.test.ts',
  'src/inventory/inventory.property.test.ts',
  'bench/bench.test.ts',
  'bench/baselines/baselines.test.ts',
];

/**
 * Started first, in this order: the longest suites, so none of them starts last and runs alone
 * while the other slots sit idle. (`node --test` sorts the files it is given by name, which put the
 * fuzzer near the end; `run()` keeps this order.)
 */
const LONGEST_FIRST = [
  'bench/bench.test.ts',
  'test/fuzz.test.ts',
  'test/attack-surface.test.ts',
  'test/crash.test.ts',
  'test/e2e/storefront.test.ts',
  'test/security.test.ts',
  'src/inventory/inventory.property.test.ts',
  'test/multiprocess.test.ts',
  'test/concurrency.test.ts',
  'test/e2e/dashboard.test.ts',
  'test/flow-control.test.ts',
];

/** Files run at once. The suites mostly wait on sockets, child processes and the services. */
const CONCURRENCY = 3;

function suites(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.test.ts'))
    .map((name) => relative(ROOT, join(ROOT, dir, name)));
}

const mode = process.argv[2];
if (mode !== 'all' && mode !== 'embedded') {
  process.stderr.write('usage: node test/run.ts all|embedded\n');
  process.exit(2);
}
for (const path of [...NEEDS_SERVICES, ...LONGEST_FIRST, DRILL]) {
  if (!existsSync(join(ROOT, path))) throw new Error(`test/run.ts names ${path}, which does not exist`);
}

const under = (path: string) => (prefix: string) => (prefix.endsWith('/') ? path.startsWith(prefix) : path === prefix);
const files = ['src', 'test', 'bench']
  .flatMap(suites)
  .filter((path) => !path.startsWith(DRILL))
  .filter((path) => mode === 'all' || !NEEDS_SERVICES.some(under(path)))
  .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));

function rank(path: string): number {
  const i = LONGEST_FIRST.indexOf(path);
  return i === -1 ? LONGEST_FIRST.length : i;
}

// Each file in its own process, as `node --test` does. They share this process's compile cache
// (through the environment): each loads much the same ~400 modules.
enableCompileCache();
process.env.NODE_COMPILE_CACHE = getCompileCacheDir();
const stream = run({ files: files.map((path) => join(ROOT, path)), concurrency: CONCURRENCY });
stream.on('test:fail', (failed) => {
  if (failed.todo === undefined) process.exitCode = 1;
});
stream.compose(new spec()).pipe(process.stdout);
