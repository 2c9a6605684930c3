import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { LazyRequestLogger } from './request-logger.ts';

function capture(level: string) {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({ write(chunk, _encoding, done) { lines.push(JSON.parse(String(chunk)) as Record<string, unknown>); done(); } });
  return { log: pino({ level }, sink), lines };
}

describe('the lazy request logger', () => {
  it('when a request logs below the level, then nothing is written; at the level, the line carries the request id', async () => {
    const { log, lines } = capture('warn');
    const request = new LazyRequestLogger(log, { reqId: 'r-1' }, {});
    request.info({ req: 'x' }, 'incoming request');
    request.debug('details');
    request.warn({ slow: true }, 'slow answer');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.reqId, 'r-1');
    assert.equal(lines[0]!.msg, 'slow answer');
    assert.equal(lines[0]!.slow, true);
    assert.equal(request.level, 'warn');
  });

  it('when a route sets its own level, then that level decides', async () => {
    const { log, lines } = capture('warn');
    const request = new LazyRequestLogger(log, { reqId: 'r-2' }, { level: 'debug' });
    request.debug('shown');
    request.trace('hidden');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(lines.map((l) => [l.reqId, l.msg]), [['r-2', 'shown']]);
    assert.equal(request.level, 'debug');
  });

  it('when a child is made from it, then the child carries both bindings', async () => {
    const { log, lines } = capture('info');
    new LazyRequestLogger(log, { reqId: 'r-3' }, {}).child({ step: 'pay' }).info('paid');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(lines[0]!.reqId, 'r-3');
    assert.equal(lines[0]!.step, 'pay');
  });
});
