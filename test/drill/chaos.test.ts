import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { chaosCommand } from '../../bench/chaos/cli.ts';
import { SCENARIOS } from '../../bench/chaos/scenarios.ts';
import { SERVICES } from '../support/engines.ts';

const FIELDS = ['name', 'accepted', 'paid', 'expired', 'refunded', 'redelivered', 'dead_lettered', 'oversold', 'lost', 'doubled', 'settle_ms'];

/**
 * `flashsale chaos --short`: every fault of the drill on a small sale, real processes on the real
 * engines. It stops RabbitMQ for a while, so it runs in `npm run test:drill`, alone, not in `npm test`.
 */
describe('flashsale chaos --short', { timeout: 900_000 }, () => {
  it('when every fault is injected into a running sale, then nothing is oversold, lost or doubled and every audit is clean', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flashsale-chaos-test-'));
    try {
      const ok = await chaosCommand({
        short: true, out: dir, doc: join(dir, 'reliability.md'),
        postgres: SERVICES.postgres.url, redis: SERVICES.redis.url, amqp: SERVICES.rabbitmq.url,
      }, ['chaos', '--short']);
      const report = JSON.parse(await readFile(join(dir, 'chaos.json'), 'utf8')) as { scenarios: Array<Record<string, unknown>> };
      assert.deepEqual(report.scenarios.map((s) => s.name), SCENARIOS.map((s) => s.name), 'one entry per fault');
      for (const scenario of report.scenarios) {
        for (const field of FIELDS) assert.ok(field in scenario, `${String(scenario.name)} reports ${field}`);
        assert.ok(Number(scenario.accepted) > 0, `${String(scenario.name)}: the sale took orders`);
        assert.deepEqual(
          { oversold: scenario.oversold, lost: scenario.lost, doubled: scenario.doubled, audit_ok: scenario.audit_ok, problems: scenario.problems },
          { oversold: 0, lost: 0, doubled: 0, audit_ok: true, problems: [] },
          `${String(scenario.name)}: ${JSON.stringify(scenario)}`,
        );
        assert.equal(typeof scenario.settle_ms, 'number', `${String(scenario.name)} settled`);
      }
      assert.ok(ok, 'the command reports success');
      const doc = await readFile(join(dir, 'reliability.md'), 'utf8');
      for (const s of SCENARIOS) assert.ok(doc.includes(`\`${s.name}\``), `the report has a row for ${s.name}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
