/** A server-sent event stream read with fetch: its events of one name (`stock` unless told), parsed, as they come. */
export async function openStream(url: string, { event: name = 'stock', token }: { event?: string; token?: string } = {}): Promise<{ status: number; next(timeoutMs?: number): Promise<any>; close(): void; contentType: string | null }> {
  const abort = new AbortController();
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...(token ? { authorization: `Bearer ${token}` } : {}) }, signal: abort.signal });
  const events: any[] = [];
  const waiting: Array<(event: any) => void> = [];
  let buffer = '';
  if (res.status === 200 && res.body) {
    void (async () => {
      const decoder = new TextDecoder();
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buffer += decoder.decode(chunk, { stream: true });
          let end: number;
          while ((end = buffer.indexOf('\n\n')) !== -1) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = block.split('\n').find((line) => line.startsWith('data: '));
            if (!block.includes(`event: ${name}`) || !data) continue;
            const event = JSON.parse(data.slice(6));
            const waiter = waiting.shift();
            if (waiter) waiter(event);
            else events.push(event);
          }
        }
      } catch {
        // aborted
      }
    })();
  }
  return {
    status: res.status,
    contentType: res.headers.get('content-type'),
    next(timeoutMs = 3000) {
      if (events.length) return Promise.resolve(events.shift());
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${name} event in time`)), timeoutMs);
        waiting.push((event) => {
          clearTimeout(timer);
          resolve(event);
        });
      });
    },
    close: () => abort.abort(),
  };
}
