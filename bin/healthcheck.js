#!/usr/bin/env node
// The image's HEALTHCHECK: GET /health of the role this container runs, on 127.0.0.1. The port is
// HEALTHCHECK_PORT when set (compose.yaml sets it for `worker`: WORKER_PORT, and `psp`: PSP_PORT),
// else PORT, else 3000. Exit 0 when it answers 200 within 2 s, 1 otherwise.
const port = process.env.HEALTHCHECK_PORT || process.env.PORT || '3000';
try {
  const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2000) });
  process.exit(res.status === 200 ? 0 : 1);
} catch {
  process.exit(1);
}
