import { freshPostgres } from '../../../test/support/engines.ts';
import { databaseContract } from './conformance.ts';

databaseContract('PostgreSQL', async () => {
  const postgres = await freshPostgres();
  return { db: postgres.db, close: () => postgres.drop() };
});
