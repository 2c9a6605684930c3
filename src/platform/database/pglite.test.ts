import { freshDatabase } from '../../../test/support/template.ts';
import { databaseContract } from './conformance.ts';

databaseContract('PGlite', async () => {
  const db = await freshDatabase();
  return { db, close: () => db.close() };
});
