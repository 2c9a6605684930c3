import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger, resolveLogFormat } from './logger.ts';

/** A destination that keeps what the logger wrote. */
function capture(): { stream: Writable; text(): string } {
  let text = '';
  const stream = new Writable({ write(chunk: Buffer, _enc, done) { text += chunk.toString(); done(); } });
  return { stream, text: () => text };
}

const SECRETS = {
  password: 'hunter2-password', token: 'eyJ-token-value', secret: 'whsec_plain', apiKey: 'sk_test_key_value',
  user: { password: 'nested-password', token: 'nested-token', apiKey: 'nested-api-key' },
  config: { JWT_SECRET: 'jwt-secret-value-xyz', PSP_WEBHOOK_SECRET: 'whsec_config_value', DATABASE_URL: 'postgres://app:dbpass@db/app' },
  req: { headers: { authorization: 'Bearer eyJ-bearer-token', cookie: 'session=cookie-value', 'stripe-signature': 't=1,v1=signature-value' } },
};
const LEAKS = ['hunter2-password', 'eyJ-token-value', 'whsec_plain', 'sk_test_key_value', 'nested-password', 'nested-token', 'nested-api-key', 'jwt-secret-value-xyz', 'whsec_config_value', 'dbpass', 'eyJ-bearer-token', 'cookie-value', 'signature-value'];

describe('logger', () => {
  it('when LOG_FORMAT is auto, then a terminal gets pretty lines and a pipe or file JSON; json and pretty are taken as said', () => {
    assert.equal(resolveLogFormat('auto', true), 'pretty');
    assert.equal(resolveLogFormat('auto', false), 'json');
    assert.equal(resolveLogFormat('json', true), 'json');
    assert.equal(resolveLogFormat('pretty', false), 'pretty');
  });

  for (const format of ['json', 'pretty'] as const) {
    it(`when a ${format} line carries passwords, tokens, secrets, keys and credentials in a URL, then none of them is written`, () => {
      const out = capture();
      const log = createLogger({ LOG_LEVEL: 'info', LOG_FORMAT: format }, out.stream);
      log.info(SECRETS, 'with secrets');
      log.error({ err: new Error('connect ECONNREFUSED postgres://flashsale:pg-url-password@db:5432/flashsale') }, 'database down');
      const text = out.text();
      assert.match(text, /with secrets/);
      assert.match(text, /\[redacted\]/);
      assert.match(text, /postgres:\/\/flashsale:\[redacted\]@db:5432/);
      for (const leak of [...LEAKS, 'pg-url-password']) assert.ok(!text.includes(leak), `${format} log leaks ${leak}:\n${text}`);
      if (format === 'json') for (const line of text.trim().split('\n')) JSON.parse(line);
      else assert.throws(() => JSON.parse(text.trim().split('\n')[0]!), 'pretty lines are not JSON');
    });
  }
});
