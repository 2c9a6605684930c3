import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, loadConfig, refuseDevelopmentDefaults } from '../src/platform/config.ts';
import { clusterSecrets, freePort, startCliProcess, stopProcess, type CliProcess } from './support/process.ts';

/**
 * The attack surface of issue #12: what an attacker who has read this repository (and so knows every
 * built-in secret) or who can send any request can do, and what each attempt gets.
 */

/**
 * Runs `flashsale <args>` as a real process with only `env` (and PATH) and waits for it to exit; one
 * that is still running after `timeoutMs` (it started instead of refusing) is killed and fails.
 */
async function runCli(args: readonly string[], env: Record<string, string>, timeoutMs = 60_000): Promise<{ code: number; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: join(import.meta.dirname, '..'),
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  if (code === null) throw new Error(`flashsale ${args.join(' ')} was still running after ${timeoutMs / 1000} s (${signal}):\n${stderr}`);
  return { code, stderr };
}

describe('attack surface (issue #12)', () => {
  // ============================================================================================
  describe('no published secret in a production role', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'flashsale-roles-'));
    after(() => rmSync(dataDir, { recursive: true, force: true }));

    const refusals: Array<[role: string, env: Record<string, string>, names: string[]]> = [
      ['api', {}, ['JWT_SECRET', 'PSP_API_KEY', 'PSP_WEBHOOK_SECRET', 'SEED_DEMO']],
      ['worker', { NODE_ENV: 'development' }, ['JWT_SECRET', 'PSP_API_KEY', 'PSP_WEBHOOK_SECRET', 'SEED_DEMO']],
      ['psp', { NODE_ENV: 'test' }, ['PSP_API_KEY', 'PSP_WEBHOOK_SECRET']],
    ];
    for (const [role, env, names] of refusals) {
      it(`when \`flashsale ${role}\` starts on the built-in defaults (NODE_ENV=${env.NODE_ENV ?? 'unset'}), then it exits non-zero naming ${names.join(', ')} and opens nothing`, async () => {
        const roleDir = join(dataDir, role);
        const { code, stderr } = await runCli([role], { ...env, PORT: '0', PSP_PORT: '0', DATA_DIR: roleDir, PSP_DATA_DIR: roleDir });
        assert.notEqual(code, 0, stderr);
        for (const name of names) assert.match(stderr, new RegExp(`\\b${name}\\b`), `${role} names ${name}`);
        assert.throws(() => readdirSync(roleDir), /ENOENT/, 'nothing was opened before the refusal');
      });
    }

    it('when one secret is set and the others are left at their defaults, then the refusal names exactly the ones left', () => {
      const config = loadConfig({ ...clusterSecrets(), PSP_API_KEY: '' });
      assert.throws(() => refuseDevelopmentDefaults(config, 'api'), (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /\bPSP_API_KEY\b/);
        for (const name of ['JWT_SECRET', 'PSP_WEBHOOK_SECRET', 'SEED_DEMO']) assert.doesNotMatch(error.message, new RegExp(`\\b${name}\\b`));
        return true;
      });
      const typed = loadConfig({ ...clusterSecrets(), JWT_SECRET: 'dev-only-secret-change-me-please' });
      assert.throws(() => refuseDevelopmentDefaults(typed, 'worker'), /\bJWT_SECRET\b/, 'the published value typed in by hand is refused too');
      assert.throws(() => refuseDevelopmentDefaults(loadConfig({ ...clusterSecrets(), SEED_DEMO: 'true' }), 'api'), /\bSEED_DEMO\b/);
      for (const role of ['api', 'worker', 'psp'] as const) assert.doesNotThrow(() => refuseDevelopmentDefaults(loadConfig(clusterSecrets()), role));
    });

    it('when every role gets secrets of its own and SEED_DEMO=false, then api, worker and psp start', async () => {
      const env = { ...clusterSecrets(), DATA_DIR: 'memory://', PSP_DATA_DIR: 'memory://', LOG_LEVEL: 'info', DATABASE_URL: '', REDIS_URL: '', AMQP_URL: '' };
      const [apiPort, pspPort] = [await freePort(), await freePort()];
      const started = await Promise.allSettled([
        startCliProcess(['api'], { ...env, PORT: String(apiPort), PSP_URL: `http://127.0.0.1:${pspPort}` }, { ready: { http: `http://127.0.0.1:${apiPort}/ready` }, timeoutMs: 90_000 }),
        startCliProcess(['worker'], env, { ready: { log: 'worker is up' }, timeoutMs: 90_000 }),
        startCliProcess(['psp'], { ...env, PSP_PORT: String(pspPort) }, { ready: { http: `http://127.0.0.1:${pspPort}/health` }, timeoutMs: 90_000 }),
      ]);
      const running = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
      await Promise.all(running.map((p: CliProcess) => stopProcess(p)));
      for (const s of started) if (s.status === 'rejected') throw s.reason;
    });

    it('when `flashsale start` runs on the development defaults, then its first lines are a warning naming each of them', async () => {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const demo = await startCliProcess(['start'], {
        PORT: String(port), PSP_PORT: '0', DATA_DIR: 'memory://', PSP_DATA_DIR: 'memory://', LOG_LEVEL: 'info',
        JWT_SECRET: '', PSP_API_KEY: '', PSP_WEBHOOK_SECRET: '', SEED_DEMO: '', DATABASE_URL: '', REDIS_URL: '', AMQP_URL: '', PSP_URL: '', PSP_WEBHOOK_URL: '', PSP_PUBLIC_URL: '',
      }, { ready: { http: `${url}/ready` }, url, timeoutMs: 90_000 });
      await stopProcess(demo);
      const firstLines = demo.output().split('\n').slice(0, 12).join('\n');
      assert.match(firstLines, /WARNING/, demo.output().slice(0, 2000));
      assert.match(firstLines, /not for production/i);
      for (const name of ['JWT_SECRET', 'PSP_API_KEY', 'PSP_WEBHOOK_SECRET', 'SEED_DEMO']) assert.match(firstLines, new RegExp(`\\b${name}\\b`), `the warning names ${name}`);
    });
  });
});
