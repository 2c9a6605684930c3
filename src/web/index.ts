import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { App } from '../platform/http/server.ts';

const require = createRequire(import.meta.url);

/**
 * The browser libraries, served from node_modules (no CDN, no build step): the pages' import map
 * (public/index.html) names these URLs.
 */
const VENDOR: Array<{ prefix: string; dir: string; files: string[] }> = [
  { prefix: '/vendor/preact/', dir: dirname(require.resolve('preact')), files: ['preact.module.js'] },
  { prefix: '/vendor/preact-hooks/', dir: dirname(require.resolve('preact/hooks')), files: ['hooks.module.js'] },
  { prefix: '/vendor/htm/', dir: dirname(require.resolve('htm')), files: ['htm.module.js'] },
  { prefix: '/vendor/eventsource/', dir: dirname(require.resolve('eventsource')), files: ['index.js', 'EventSource.js', 'errors.js'] },
  { prefix: '/vendor/eventsource-parser/', dir: dirname(require.resolve('eventsource-parser')), files: ['index.js', 'parse.js', 'errors.js'] },
  { prefix: '/vendor/uplot/', dir: dirname(require.resolve('uplot')), files: ['uPlot.esm.js', 'uPlot.min.css'] },
];

/**
 * The web face at `/`: static pages (Preact + htm, hash routes) that speak only the public API, with
 * the token in localStorage sent as a bearer header (docs/decisions.md: no cookie, so no CSRF).
 * Only the files listed are served: no directory listing, no wildcard that would shadow the API's 404.
 */
export async function registerWebPages(app: App): Promise<void> {
  const policy = contentSecurityPolicy(join(import.meta.dirname, 'public', 'index.html'));
  const headers = (res: { setHeader(name: string, value: string): void }) => {
    res.setHeader('content-security-policy', policy);
    res.setHeader('x-frame-options', 'DENY');
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('referrer-policy', 'same-origin');
    res.setHeader('cache-control', 'no-cache');
  };
  await app.register(fastifyStatic, {
    root: join(import.meta.dirname, 'public'),
    prefix: '/',
    wildcard: false,
    index: ['index.html'],
    setHeaders: headers,
  });
  for (const vendor of VENDOR) {
    await app.register(fastifyStatic, {
      root: vendor.dir,
      prefix: vendor.prefix,
      wildcard: false,
      decorateReply: false,
      allowedPath: (pathName) => vendor.files.some((file) => pathName === `/${file}` || pathName === file),
      setHeaders: headers,
    });
  }
}

/**
 * Scripts only from this origin, plus the one inline script (the import map) by its hash; no
 * framing; requests only to this origin. Styles may be inline: Preact's `style` attributes and
 * uPlot's sizing write them.
 */
function contentSecurityPolicy(indexFile: string): string {
  const importMap = /<script type="importmap">([\s\S]*?)<\/script>/.exec(readFileSync(indexFile, 'utf8'))?.[1] ?? '';
  const hash = createHash('sha256').update(importMap).digest('base64');
  return [
    "default-src 'self'", `script-src 'self' 'sha256-${hash}'`, "style-src 'self' 'unsafe-inline'", "img-src 'self' data: blob:",
    "connect-src 'self'", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'", "object-src 'none'",
  ].join('; ');
}
