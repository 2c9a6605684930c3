import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Database } from './database.ts';

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));
/** Any constant: serializes concurrent migrators (several processes starting at once). */
const MIGRATION_LOCK = 7_340_001;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The one migration list: `migrations/NNN_name.sql`, applied in order, forward only. */
export async function listMigrations(): Promise<Migration[]> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f)).sort();
  // Two files with one number (two branches each adding "the next" migration) would apply one only.
  const taken = files.find((f, i) => i > 0 && f.slice(0, 3) === files[i - 1]!.slice(0, 3));
  if (taken) throw new Error(`two migrations are numbered ${taken.slice(0, 3)}: renumber one (src/platform/database/migrations)`);
  return Promise.all(
    files.map(async (file) => ({
      version: Number(file.slice(0, 3)),
      name: file.slice(4, -4),
      sql: await readFile(MIGRATIONS_DIR + file, 'utf8'),
    })),
  );
}

/** Applies pending migrations, each in its own transaction; returns the versions applied. */
export async function migrate(db: Database): Promise<number[]> {
  // Under the lock: two processes starting on an empty database would race even on "if not exists".
  await db.transaction(async (tx) => {
    await tx.query('select pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await tx.query(`create table if not exists schema_migrations (
      version integer primary key, name text not null, applied_at timestamptz not null default now())`);
  });
  const applied: number[] = [];
  for (const migration of await listMigrations()) {
    const done = await db.transaction(async (tx) => {
      await tx.query('select pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      const rows = await tx.query('select 1 from schema_migrations where version = $1', [migration.version]);
      if (rows.length > 0) return false;
      for (const statement of splitStatements(migration.sql)) await tx.query(statement);
      await tx.query('insert into schema_migrations (version, name) values ($1, $2)', [migration.version, migration.name]);
      return true;
    });
    if (done) applied.push(migration.version);
  }
  return applied;
}

/** Our migrations contain no dollar-quoted bodies, so splitting on `;` at line ends is safe. */
function splitStatements(sql: string): string[] {
  return sql
    .split(/;\s*$/m)
    .map((s) => s.replace(/^\s*--.*$/gm, '').trim())
    .filter((s) => s.length > 0);
}
