import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PgliteDatabase } from '../../src/platform/database/pglite.ts';
import { listMigrations, migrate } from '../../src/platform/database/migrate.ts';

/**
 * A migrated PGlite data dir as a tarball, built once per migration set and cached on disk:
 * initdb costs seconds, loading the tarball well under one.
 */
export async function migratedTemplate(): Promise<Blob> {
  const migrations = await listMigrations();
  const hash = createHash('sha256').update(JSON.stringify(migrations)).digest('hex').slice(0, 16);
  const file = join(tmpdir(), `flashsale-pglite-template-${hash}.tar`);
  if (!existsSync(file)) {
    const db = await PgliteDatabase.open('memory://');
    await migrate(db);
    const blob = await db.dumpTemplate();
    await db.close();
    const partial = `${file}.${process.pid}.partial`;
    writeFileSync(partial, Buffer.from(await blob.arrayBuffer()));
    renameSync(partial, file);
  }
  return new Blob([readFileSync(file)]);
}

/** A fresh, migrated, in-memory database. */
export async function freshDatabase(): Promise<PgliteDatabase> {
  return PgliteDatabase.open('memory://', await migratedTemplate());
}
