import type { ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';

export interface EventStreamOptions {
  /** A comment line this often, so that proxies and the browser keep an idle stream open. */
  heartbeatMs: number;
  /** Ends the stream after this long (the client reconnects, with its current token). */
  maxAgeMs?: number;
  /** The stream is open and its first frame written: register it where its next frames come from. */
  onOpen(stream: ServerResponse): void;
  /** Once, when the stream ends, whoever ends it. */
  onClose(stream: ServerResponse): void;
}

/**
 * Answers `request` with a server-sent event stream: the reply taken over from Fastify, headers that
 * keep proxies from buffering it, the client's reconnection delay and `first` frame, then a
 * heartbeat. If the client left while `first` was being read, its 'close' has already fired:
 * `onClose` then runs at once.
 */
export function openEventStream(request: FastifyRequest, reply: FastifyReply, first: string, options: EventStreamOptions): void {
  reply.hijack();
  const stream = reply.raw;
  stream.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  stream.write(`retry: 2000\n\n${first}`);
  options.onOpen(stream);
  const heartbeat = setInterval(() => stream.write(': keep-alive\n\n'), options.heartbeatMs);
  heartbeat.unref();
  const expiry = options.maxAgeMs === undefined ? undefined : setTimeout(() => stream.end(), options.maxAgeMs);
  expiry?.unref();
  let closed = false;
  const done = () => {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    clearTimeout(expiry);
    options.onClose(stream);
  };
  stream.on('close', done);
  if (stream.destroyed || request.raw.destroyed) done();
}
