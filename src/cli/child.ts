/**
 * Runs flashsale commands as real child processes: the benchmark starts its targets this way, and
 * the tests that kill, restart or split processes do too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

/** The CLI entry, wherever the caller's working directory is. */
const MAIN = fileURLToPath(new URL('../../bin/flashsale.js', import.meta.url));

/**
 * Secrets of their own for processes started together, and no demo seeding: `api`, `worker` and
 * `psp` refuse the published development values. Each process of one cluster must get the same.
 */
export function clusterSecrets(): { JWT_SECRET: string; PSP_API_KEY: string; PSP_WEBHOOK_SECRET: string; SEED_DEMO: 'false' } {
  const random = () => randomBytes(24).toString('hex');
  return { JWT_SECRET: `jwt-${random()}`, PSP_API_KEY: `sk_test_${random()}`, PSP_WEBHOOK_SECRET: `whsec_${random()}`, SEED_DEMO: 'false' };
}

/** A port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  server.close();
  await once(server, 'close');
  return port;
}

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  output(): string;
  /** Resolves with the exit code or signal. */
  exited: Promise<string>;
}

export interface CliProcess extends ServerProcess {
  /** The command line after `flashsale`, for messages. */
  name: string;
}

export interface CliProcessOptions {
  /**
   * When the child counts as up: `http`, a GET of this URL answers 200 (polled: the child's listening
   * socket can only be observed from outside); `log`, this text appears in its stdout or stderr.
   */
  ready: { http: string } | { log: string };
  /** The base URL the child serves, if any (returned as `url`). */
  url?: string;
  timeoutMs?: number;
  /** Extra Node.js flags for the child (e.g. `--cpu-prof`, which NODE_OPTIONS refuses). */
  nodeArgs?: readonly string[];
  /** Kill the child when it does not become ready in time (default true). */
  killOnFailure?: boolean;
}

/**
 * Starts `flashsale <args…>` (any CLI command: `api`, `worker --components …`, `psp`, …) as a real
 * child process with HOST=127.0.0.1, WORKER_PORT=0 and `env` over this process's environment, and resolves once it
 * is ready. A child that exits or is not ready in time fails the start, with its output.
 */
export async function startCliProcess(args: readonly string[], env: Record<string, string>, opts: CliProcessOptions): Promise<CliProcess> {
  const name = args.join(' ');
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), MAIN, ...args], {
    // WORKER_PORT 0: workers started side by side (tests, bench, chaos) each get a free port for their probes.
    env: { ...process.env, HOST: '127.0.0.1', WORKER_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  let onOutput: (() => void) | undefined;
  const append = (d: Buffer) => {
    log += d.toString();
    onOutput?.();
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  const exited = new Promise<string>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? String(code))));
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  const fail = (why: string) => {
    if (opts.killOnFailure ?? true) child.kill('SIGKILL');
    return new Error(`flashsale ${name} ${why}:\n${log}`);
  };
  if ('http' in opts.ready) {
    const readyUrl = opts.ready.http;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw fail('exited during start');
      try {
        const res = await fetch(readyUrl);
        if (res.status === 200) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw fail(`not ready after ${timeoutMs / 1000} s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } else {
    const text = opts.ready.log;
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => done(`did not log ${JSON.stringify(text)} within ${timeoutMs / 1000} s`), timeoutMs);
      const done = (failure?: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        onOutput = undefined;
        if (failure) reject(fail(failure));
        else resolve();
      };
      onOutput = () => {
        if (log.includes(text)) done();
      };
      void exited.then(() => done('exited during start'));
      onOutput();
    });
  }
  return { child, name, url: opts.url ?? '', output: () => log, exited };
}

/**
 * Stops a child gracefully: SIGTERM, then SIGKILL if it has not exited within `graceMs`. Resolves
 * with how it exited ('0' after a clean shutdown, 'SIGKILL' when it had to be killed).
 */
export async function stopProcess(p: ServerProcess, graceMs = 10_000): Promise<string> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return p.exited;
  p.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), graceMs)));
  const first = await Promise.race([p.exited, timedOut]);
  clearTimeout(timer);
  if (first !== 'timeout') return first;
  p.child.kill('SIGKILL');
  return p.exited;
}
