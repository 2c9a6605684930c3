import { freshDatabase } from '../../../test/support/template.ts';
import { PgliteThreadDatabase } from './pglite-thread.ts';
import { databaseContract } from './conformance.ts';

databaseContract('PGlite', async () => {
  const db = await freshDatabase();
  return { db, close: () => db.close() };
});

databaseContract('PGlite in a worker thread', async () => {
  const db = await PgliteThreadDatabase.open('memory://');
  return { db, close: () => db.close() };
});
