/**
 * Bench-only: what a target process reports about itself. The bench loads this file into every
 * process it measures (`node --import bench/probe.ts …`: `flashsale start`, `api`,
 * `worker`, and bench/serve.ts for the ceiling and the baselines) and sets
 * FLASHSALE_BENCH_PROBE_PORT; the file then serves, on 127.0.0.1:<port>:
 *
 *   POST /reset   starts a new window: the event-loop delay histogram is cleared (answers 204)
 *   GET  /        {"p50_ms","p99_ms","max_ms","samples"}: event-loop delay since the last reset
 *
 * The delay is measured with perf_hooks.monitorEventLoopDelay, a histogram of its own — not
 * prom-client's, which clears its histogram on every /metrics scrape. The histogram records the
 * interval between two timer ticks, so the timer's own period (RESOLUTION_MS) is subtracted: an idle
 * loop reports ~0, a loop blocked 200 ms reports ~200. The server is unref'd, so it never keeps a
 * process alive, and the process's own shutdown is unchanged. Without the variable nothing happens.
 */
import { createServer } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';

/** The sampling period of the histogram's timer, as prom-client's default. */
export const RESOLUTION_MS = 10;

const port = Number(process.env.FLASHSALE_BENCH_PROBE_PORT ?? 0);

// Worker threads inherit --import: only the main thread (the one serving HTTP) is measured.
if (isMainThread && Number.isInteger(port) && port > 0) {
  const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  histogram.enable();
  const ms = (ns: number) => Math.round(Math.max(0, ns / 1e6 - RESOLUTION_MS) * 100) / 100;
  const server = createServer((request, response) => {
    if (request.method === 'POST' && request.url === '/reset') {
      histogram.reset();
      response.writeHead(204).end();
      return;
    }
    if (request.method === 'GET' && request.url === '/') {
      const samples = histogram.count;
      const body = samples === 0
        ? { p50_ms: 0, p99_ms: 0, max_ms: 0, samples }
        : { p50_ms: ms(histogram.percentile(50)), p99_ms: ms(histogram.percentile(99)), max_ms: ms(histogram.max), samples };
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      return;
    }
    response.writeHead(404).end();
  });
  server.on('error', (error) => process.stderr.write(`bench probe on port ${port}: ${error.message}\n`));
  server.listen(port, '127.0.0.1');
  server.unref();
}
