/**
 * The worker thread behind PgliteThreadDatabase: it owns the PGlite instance and runs the
 * statements the main thread sends, one at a time, in arrival order. Only the main side decides
 * what is a transaction (it sends `begin` … `commit` and nothing else in between).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PgliteDatabase } from './pglite.ts';
import type { ThreadReply, ThreadRequest } from './pglite-thread.ts';

const port = parentPort;
if (!port) throw new Error('pglite-worker.ts runs only as a worker thread');
const { dataDir } = workerData as { dataDir: string };

const db = await PgliteDatabase.open(dataDir);
let queue = Promise.resolve();

port.on('message', (request: ThreadRequest) => {
  queue = queue.then(() => answer(request));
});
port.postMessage({ id: 0, rows: [] } satisfies ThreadReply);

async function answer(request: ThreadRequest): Promise<void> {
  try {
    if (request.op === 'close') {
      await db.close();
      port!.postMessage({ id: request.id, rows: [] } satisfies ThreadReply);
      return;
    }
    const rows = await db.query(request.sql, request.params);
    port!.postMessage({ id: request.id, rows } satisfies ThreadReply);
  } catch (error) {
    port!.postMessage({ id: request.id, error: describe(error) } satisfies ThreadReply);
  }
}

/** An Error crosses a thread as name, message and stack only: the SQLSTATE `code` and the rest are copied by hand. */
function describe(error: unknown): ThreadReply['error'] {
  if (!(error instanceof Error)) return { message: String(error), fields: {} };
  const fields: Record<string, string | number> = {};
  for (const [key, value] of Object.entries(error)) if (typeof value === 'string' || typeof value === 'number') fields[key] = value;
  return { message: error.message, fields };
}
