import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';

/** The repository's deploy/ folder. */
export const DEPLOY = resolve(import.meta.dirname, '..', '..', 'deploy');

export interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  deploy?: { replicas?: number };
  volumes?: string[];
  environment?: Record<string, string>;
}

/** deploy/compose.yaml as Compose reads it (YAML merge keys resolved). */
export function readCompose(): { services: Record<string, ComposeService> } {
  return parse(readFileSync(join(DEPLOY, 'compose.yaml'), 'utf8'), { merge: true });
}
