import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from './config.ts';

describe('config', () => {
  it('when nothing is set, then the embedded defaults apply', () => {
    const config = loadConfig({});
    assert.equal(config.PORT, 3000);
    assert.equal(config.DATA_DIR, './data');
    assert.equal(config.DATABASE_URL, undefined);
  });

  it('when variables are set, then they are parsed to their types', () => {
    const config = loadConfig({ PORT: '8080', SEED_DEMO: 'no', LOG_LEVEL: 'warn' });
    assert.equal(config.PORT, 8080);
    assert.equal(config.SEED_DEMO, false);
    assert.equal(config.LOG_LEVEL, 'warn');
  });

  it('when variables are bad, then the error names each of them', () => {
    assert.throws(() => loadConfig({ PORT: 'eighty', JWT_SECRET: 'short', LOG_LEVEL: 'loud' }), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      for (const name of ['PORT', 'JWT_SECRET', 'LOG_LEVEL']) assert.match(error.message, new RegExp(name));
      return true;
    });
  });
});
