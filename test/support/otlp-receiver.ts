import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A span as an OTLP/HTTP JSON export carried it, flattened, with the resource of its process. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  /** OTLP's enum: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  links: Array<{ traceId: string; spanId: string }>;
  attributes: Record<string, unknown>;
  /** Resource attributes of the exporting process (service.name, service.instance.id, …). */
  resource: Record<string, unknown>;
}

export interface OtlpReceiver {
  /** The base URL, for OTEL_EXPORTER_OTLP_ENDPOINT (the exporter posts to `<url>/v1/traces`). */
  url: string;
  spans: ReceivedSpan[];
  /** Content types of the requests received, to see which protocol the exporters spoke. */
  contentTypes: Set<string>;
  close(): Promise<void>;
}

/** OTLP/JSON carries ids as hex; accept base64 too (proto3's default JSON mapping of bytes). */
function hexId(id: unknown): string | undefined {
  if (typeof id !== 'string' || id === '') return undefined;
  if (/^[0-9a-f]+$/i.test(id) && (id.length === 32 || id.length === 16)) return id.toLowerCase();
  return Buffer.from(id, 'base64').toString('hex');
}

type AnyValue = { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number };
type KeyValue = { key: string; value: AnyValue };

function attributesOf(list: KeyValue[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of list ?? []) out[key] = value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : undefined) ?? value.boolValue ?? value.doubleValue;
  return out;
}

/**
 * A trace backend for tests: an HTTP server taking OTLP/HTTP JSON exports (`POST /v1/traces`,
 * `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`) and keeping every span. A protobuf export is counted
 * in `contentTypes` and answered 415, so a test notices the wrong protocol.
 */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const contentTypes = new Set<string>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const type = String(req.headers['content-type'] ?? '');
      contentTypes.add(type);
      if (req.method !== 'POST' || req.url !== '/v1/traces' || !type.startsWith('application/json')) {
        res.writeHead(req.url === '/v1/traces' ? 415 : 404).end();
        return;
      }
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          resourceSpans?: Array<{ resource?: { attributes?: KeyValue[] }; scopeSpans?: Array<{ spans?: Array<Record<string, any>> }> }>;
        };
        for (const rs of body.resourceSpans ?? []) {
          const resource = attributesOf(rs.resource?.attributes);
          for (const ss of rs.scopeSpans ?? []) {
            for (const s of ss.spans ?? []) {
              spans.push({
                traceId: hexId(s.traceId)!, spanId: hexId(s.spanId)!, parentSpanId: hexId(s.parentSpanId), name: String(s.name), kind: Number(s.kind),
                links: ((s.links ?? []) as Array<{ traceId: string; spanId: string }>).map((l) => ({ traceId: hexId(l.traceId)!, spanId: hexId(l.spanId)! })),
                attributes: attributesOf(s.attributes as KeyValue[]), resource,
              });
            }
          }
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } catch {
        res.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`, spans, contentTypes,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** A W3C traceparent for a span the test itself stands for (the buyer's client), sampled. */
export function clientTraceparent(): { traceparent: string; traceId: string; spanId: string } {
  const traceId = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('hex');
  const spanId = Buffer.from(crypto.getRandomValues(new Uint8Array(8))).toString('hex');
  return { traceparent: `00-${traceId}-${spanId}-01`, traceId, spanId };
}

/**
 * Problems with the trace `traceId` as one connected tree: every span's parent is in the trace
 * (or is `rootParent`, the client's span), and every link resolves to a received span.
 */
export function connectivityProblems(spans: readonly ReceivedSpan[], traceId: string, rootParent: string): string[] {
  const ids = new Set(spans.map((s) => s.spanId));
  const problems: string[] = [];
  for (const s of spans.filter((x) => x.traceId === traceId)) {
    if (s.parentSpanId !== rootParent && !(s.parentSpanId && ids.has(s.parentSpanId))) problems.push(`${s.name}: parent ${s.parentSpanId ?? 'none'} not received`);
    for (const l of s.links) if (!ids.has(l.spanId)) problems.push(`${s.name}: link to ${l.spanId} not received`);
  }
  return problems;
}
