import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { RedisStockGate } from '../../src/platform/gate/redis.ts';
import { deleteKeysUnder } from '../../src/platform/redis.ts';
import { SERVICES } from '../support/engines.ts';

const NOW = Date.UTC(2030, 0, 1);
const sha = (file: string) => createHash('sha1').update(readFileSync(new URL(`../../src/platform/gate/lua/${file}`, import.meta.url), 'utf8')).digest('hex');

/**
 * SCRIPT FLUSH empties the script cache of the whole Redis server, as a restart does: every other
 * client sharing the server sees NOSCRIPT at once. So this runs in `npm run test:drill`, alone, not in `npm test`.
 */
describe('the Redis gate after SCRIPT FLUSH', () => {
  const admin = new Redis(SERVICES.redis.url);
  const prefix = `test-flush-${randomUUID()}`;
  const gate = RedisStockGate.connect(SERVICES.redis.url, { prefix });
  after(async () => {
    await gate.close();
    await deleteKeysUnder(admin, `${prefix}:`);
    admin.disconnect();
  });

  it('when Redis forgets its scripts (SCRIPT FLUSH, as after a restart), then calls go on without an error', async () => {
    const a = { saleItemId: randomUUID(), available: 5, perUserLimit: 5, startsAt: NOW - 1000, endsAt: NOW + 3600_000 };
    await gate.load([a], []);
    assert.equal((await gate.admit('u1', [{ saleItemId: a.saleItemId, quantity: 1 }], NOW)).ok, true);
    await admin.script('FLUSH');
    assert.deepEqual(await gate.admit('u1', [{ saleItemId: a.saleItemId, quantity: 1 }], NOW), { ok: true, remaining: [3] });
    assert.deepEqual(await admin.script('EXISTS', sha('admit-2.lua')), [1], 'the script was loaded again');
    await admin.script('FLUSH');
    await gate.release('u1', [{ saleItemId: a.saleItemId, quantity: 2 }]);
    assert.equal(await gate.available(a.saleItemId), 5);
    assert.equal(await gate.quota(a.saleItemId, 'u1'), 0);
    assert.deepEqual(await admin.script('EXISTS', sha('release-2.lua')), [1]);
  });
});
