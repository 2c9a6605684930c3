import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Claims a directory for this process with a pid file: the embedded database and the simulator's
 * journal each belong to one process, and a second writer would corrupt them. A stale file left
 * by a killed process is taken over. Returns the release function.
 */
export function lockDirectory(dir: string, file: string, what: string, setting: string): () => void {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, file);
  let holder: number | undefined;
  try {
    holder = Number(readFileSync(path, 'utf8').trim());
  } catch {
    holder = undefined;
  }
  if (holder && holder !== process.pid && isAlive(holder)) {
    throw new Error(`${what} in ${dir} is in use by process ${holder}; stop it first, or point ${setting} elsewhere`);
  }
  writeFileSync(path, String(process.pid));
  return () => rmSync(path, { force: true });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
