import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { systemClock } from '../platform/clock.ts';
import type { Database } from '../platform/database/index.ts';
import { migrate } from '../platform/database/index.ts';
import { PgliteDatabase } from '../platform/database/pglite.ts';
import { createWarmCatalog } from './warm-catalog.ts';

describe('the warm catalog on a miss', () => {
  it('when a crowd asks for one unknown sale item at once, then the database is asked once', async () => {
    const pglite = await PgliteDatabase.open('memory://');
    after(() => pglite.close());
    await migrate(pglite);
    const statements: string[] = [];
    // The real database, with its statements written down.
    const db: Database = Object.assign(Object.create(pglite) as Database, {
      query: (sql: string, params?: readonly unknown[]) => (statements.push(sql), pglite.query(sql, params)),
    });
    const catalog = createWarmCatalog({ db, clock: systemClock }, 100);
    const unknown = randomUUID();
    const found = await Promise.all(Array.from({ length: 50 }, () => catalog.findSaleItem(unknown)));
    assert.deepEqual(new Set(found), new Set([undefined]));
    assert.equal(statements.length, 1, statements.join('\n'));
    assert.equal(await catalog.findSaleItem(unknown), undefined);
    assert.equal(statements.length, 1, 'remembered as missing');
  });
});
