import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import amqp from 'amqplib';
import { pino } from 'pino';
import { deleteTopologies, freshPostgres, serviceMissing, SERVICES } from '../../../test/support/engines.ts';
import { ManualClock } from '../clock.ts';
import type { Database } from '../database/database.ts';
import type { Handler } from './broker.ts';
import { brokerContract } from './conformance.ts';
import { writeEvents } from './outbox.ts';
import { RabbitMqBroker, type RabbitMqBrokerOptions } from './rabbitmq.ts';
import { TopologyMismatchError, type Topology } from './rabbitmq/topology.ts';
import { publishConfirmed } from './rabbitmq/publish.ts';

/**
 * RabbitMqBroker on a real RabbitMQ and a real PostgreSQL: the shared broker contract, then the
 * failures only a networked broker has. Every run uses its own exchange/queue prefix and its own
 * database, and deletes both afterwards, so parallel test files never meet.
 */

const log = pino({ level: 'silent' });
/** Wall-clock backoff runs at 1/20 of broker time: a 1000 ms backoff is a 50 ms TTL queue. */
const SCALE = 1 / 20;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function rabbitUrl(): Promise<string> {
  const url = SERVICES.rabbitmq.url;
  try {
    const connection = await amqp.connect(url, { timeout: 3000 });
    await connection.close();
  } catch (error) {
    throw serviceMissing('rabbitmq', error);
  }
  return url;
}

const uniquePrefix = () => `fst_${randomUUID().replaceAll('-', '').slice(0, 12)}`;


async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

brokerContract('rabbitmq (quorum queues, publisher confirms, TTL retry queues) on PostgreSQL', async () => {
  const url = await rabbitUrl();
  const pg = await freshPostgres();
  const clock = new ManualClock();
  const prefix = uniquePrefix();
  const made: RabbitMqBroker[] = [];
  return {
    db: pg.db,
    clock,
    makeBroker: ({ maxAttempts, backoffBaseMs }) => {
      const broker = new RabbitMqBroker(pg.db, clock, log, {
        url, prefix, prefetch: 16, confirmTimeoutMs: 5000, pollMs: 50, maxAttempts,
        backoffBaseMs: Math.max(1, Math.round(backoffBaseMs * SCALE)),
      });
      made.push(broker);
      return broker;
    },
    // The clock moves delayed outbox rows; the sleep lets the (scaled) TTL of retry queues pass.
    advance: async (ms) => {
      clock.advance(ms);
      await sleep(ms * SCALE + 5);
    },
    wallMs: (ms) => ms * SCALE,
    close: async () => {
      await deleteTopologies(url, made.map((b) => b.topology()));
      await pg.drop();
    },
  };
});

/**
 * A TCP proxy in front of RabbitMQ that the test can break: hold back everything the server sends
 * (a confirm that never comes), or cut every connection (a network drop, a broker restart).
 */
class TcpProxy {
  #server: net.Server;
  #pairs = new Set<{ client: net.Socket; upstream: net.Socket; held: Buffer[] }>();
  #stalled = false;
  readonly url: string;

  private constructor(server: net.Server, url: string) {
    this.#server = server;
    this.url = url;
  }

  static async start(target: string): Promise<TcpProxy> {
    const parsed = new URL(target);
    const host = parsed.hostname;
    const port = Number(parsed.port || 5672);
    let proxy: TcpProxy | undefined;
    const server = net.createServer((client) => {
      const upstream = net.connect({ host, port });
      const pair = { client, upstream, held: [] as Buffer[] };
      proxy!.#pairs.add(pair);
      client.on('data', (chunk) => upstream.write(chunk));
      upstream.on('data', (chunk: Buffer) => (proxy!.#stalled ? pair.held.push(chunk) : client.write(chunk)));
      const end = () => {
        proxy!.#pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('close', end).on('error', end);
      upstream.on('close', end).on('error', end);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address() as net.AddressInfo;
    const url = new URL(target);
    url.hostname = '127.0.0.1';
    url.port = String(address.port);
    proxy = new TcpProxy(server, url.toString());
    return proxy;
  }

  /** Server → client bytes are held back (the client's requests still reach the server). */
  stallDownstream(): void {
    this.#stalled = true;
  }

  resume(): void {
    this.#stalled = false;
    for (const pair of this.#pairs) for (const chunk of pair.held.splice(0)) pair.client.write(chunk);
  }

  /** Every proxied connection dies at once, like a network drop. The proxy keeps accepting. */
  cutAll(): void {
    for (const pair of this.#pairs) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
  }

  get connections(): number {
    return this.#pairs.size;
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

describe('RabbitMqBroker: failures of a networked broker', () => {
  let url: string;
  let pg: Awaited<ReturnType<typeof freshPostgres>>;
  let db: Database;
  const clock = new ManualClock();
  const prefix = uniquePrefix();
  const brokers: RabbitMqBroker[] = [];
  const proxies: TcpProxy[] = [];

  before(async () => {
    url = await rabbitUrl();
    pg = await freshPostgres();
    db = pg.db;
    await db.query('create table contract_effects (consumer text, message_id uuid, topic text, payload jsonb)');
  });

  after(async () => {
    for (const b of brokers) await b.stop();
    for (const p of proxies) await p.close();
    if (url) await deleteTopologies(url, brokers.map((b) => b.topology()));
    await pg?.drop();
  });

  function broker(overrides: Partial<RabbitMqBrokerOptions> = {}): RabbitMqBroker {
    const b = new RabbitMqBroker(db, clock, log, {
      url, prefix, prefetch: 8, confirmTimeoutMs: 2000, pollMs: 50, maxAttempts: 3, backoffBaseMs: 20, reconnectMinMs: 50, ...overrides,
    });
    brokers.push(b);
    return b;
  }

  async function proxy(): Promise<TcpProxy> {
    const p = await TcpProxy.start(url);
    proxies.push(p);
    return p;
  }

  const record = (consumer: string): Handler => async (tx, message) => {
    await tx.query('insert into contract_effects values ($1, $2, $3, $4::jsonb)', [consumer, message.id, message.topic, JSON.stringify(message.payload)]);
  };

  async function effects(consumer: string): Promise<Array<{ message_id: string }>> {
    return db.query('select message_id from contract_effects where consumer = $1', [consumer]);
  }

  async function publish(topic: string, payload: unknown): Promise<string> {
    const messageId = randomUUID();
    await db.transaction((tx) => writeEvents(tx, clock, [{ topic, payload, messageId }]));
    return messageId;
  }

  /** A plain queue bound to the events exchange: sees every copy RabbitMQ routes, duplicates included. */
  async function observe(topic: string): Promise<{ copies: () => number; close: () => Promise<void> }> {
    const connection = await amqp.connect(url);
    const channel = await connection.createChannel();
    const { queue } = await channel.assertQueue('', { exclusive: true, arguments: { 'x-queue-type': 'classic' } });
    await channel.bindQueue(queue, `${prefix}.events`, topic);
    let copies = 0;
    await channel.consume(queue, () => void copies++, { noAck: true });
    return { copies: () => copies, close: () => connection.close() };
  }

  it('when a publisher confirm does not come in time, then the row stays unpublished, is sent again later, and has one effect', async () => {
    const p = await proxy();
    const b = broker({ url: p.url, confirmTimeoutMs: 300 });
    const consumer = `confirm-${randomUUID().slice(0, 8)}`;
    let runs = 0;
    b.consume(consumer, ['confirm.event'], async (tx, message) => {
      runs++;
      await record(consumer)(tx, message);
    });
    await b.start();
    const observer = await observe('confirm.event');
    p.stallDownstream(); // the broker's requests reach RabbitMQ; nothing comes back
    const messageId = await publish('confirm.event', { n: 1 });
    b.nudge();
    await sleep(900);
    const [stuck] = await db.query<{ published_at: Date | null }>('select published_at from outbox where message_id = $1', [messageId]);
    assert.equal(stuck?.published_at, null, 'a confirm that timed out does not mark the row');
    assert.ok(observer.copies() >= 1, 'the message did reach RabbitMQ');
    p.resume(); // the late confirms arrive and are ignored
    await b.drain();
    const [sent] = await db.query<{ published_at: Date | null }>('select published_at from outbox where message_id = $1', [messageId]);
    assert.notEqual(sent?.published_at, null, 'republished and confirmed');
    assert.ok(observer.copies() >= 2, `published more than once (${observer.copies()} copies)`);
    assert.equal(runs, 1, 'the handler ran once');
    assert.equal((await effects(consumer)).length, 1);
    await observer.close();
    await b.stop();
  });

  it('when its connection is closed from outside, then it reconnects by itself and nothing is lost', async () => {
    const b = broker();
    const consumer = `reconnect-${randomUUID().slice(0, 8)}`;
    b.consume(consumer, ['reconnect.event'], async (tx, message) => {
      await sleep(3); // handlers in flight when the connection goes
      await record(consumer)(tx, message);
    });
    await b.start();
    const ids: string[] = [];
    for (let i = 0; i < 15; i++) ids.push(await publish('reconnect.event', { n: i }));
    b.nudge();
    await waitFor('a few effects', async () => (await effects(consumer)).length >= 3);
    const before = b.connectionsForTests();
    await before.consumer!.close(); // deliveries unacked, handlers mid-transaction
    for (let i = 15; i < 25; i++) ids.push(await publish('reconnect.event', { n: i }));
    await waitFor('a new session', () => b.connected && b.connectionsForTests().consumer !== before.consumer);
    await b.connectionsForTests().publisher!.close(); // and the publishing side too
    for (let i = 25; i < 30; i++) ids.push(await publish('reconnect.event', { n: i }));
    await waitFor('another session', () => b.connected);
    await b.drain();
    const done = await effects(consumer);
    assert.equal(done.length, ids.length, 'every event has exactly one effect');
    assert.deepEqual(new Set(done.map((e) => e.message_id)), new Set(ids));
    await b.stop();
  });

  it('when a channel is closed under it, then it starts over and keeps consuming', async () => {
    const b = broker();
    const consumer = `channel-${randomUUID().slice(0, 8)}`;
    b.consume(consumer, ['channel.event'], record(consumer));
    await b.start();
    const old = b.connectionsForTests();
    await old.channels[old.channels.length - 1]!.close(); // a consumer channel
    await waitFor('a new session', () => b.connected && b.connectionsForTests().consumer !== old.consumer);
    await publish('channel.event', { n: 1 });
    await b.drain();
    assert.equal((await effects(consumer)).length, 1);
    await b.stop();
  });

  it('when the network drops every connection with messages in flight, then it reconnects and each message has one effect', async () => {
    const p = await proxy();
    const b = broker({ url: p.url });
    const consumer = `drop-${randomUUID().slice(0, 8)}`;
    b.consume(consumer, ['drop.event'], async (tx, message) => {
      await sleep(2);
      await record(consumer)(tx, message);
    });
    await b.start();
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push(await publish('drop.event', { n: i }));
    b.nudge();
    await waitFor('a few effects', async () => (await effects(consumer)).length >= 2);
    p.cutAll();
    for (let i = 20; i < 30; i++) ids.push(await publish('drop.event', { n: i }));
    await waitFor('reconnected through the proxy', () => b.connected && p.connections === 2);
    await b.drain();
    const done = await effects(consumer);
    assert.equal(done.length, ids.length);
    assert.deepEqual(new Set(done.map((e) => e.message_id)), new Set(ids));
    await b.stop();
  });

  it('when the topology is declared twice, or by a second process, then nothing breaks; other arguments are refused with a clear error', async () => {
    const consumer = `twice-${randomUUID().slice(0, 8)}`;
    const seen: string[] = [];
    const handler: Handler = async (tx, message) => {
      seen.push(message.id);
      await record(consumer)(tx, message);
    };
    const first = broker();
    first.consume(consumer, ['twice.event'], handler);
    await first.start();
    await first.declareTopology();
    await first.declareTopology();
    const second = broker(); // another process: same queues, competing consumers
    second.consume(consumer, ['twice.event'], handler);
    await second.start();
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await publish('twice.event', { n: i }));
    await Promise.all([first.drain(), second.drain()]);
    const mismatched = broker({ deliveryLimit: 7 });
    mismatched.consume(consumer, ['twice.event'], handler);
    await assert.rejects(mismatched.start(), (error: unknown) => error instanceof TopologyMismatchError && /other arguments/.test(error.message));
    ids.push(await publish('twice.event', { n: 10 }));
    await first.drain();
    await second.drain();
    assert.ok(first.connected && second.connected, 'the refused declaration closed only its own channel');
    assert.equal((await effects(consumer)).length, ids.length);
    assert.equal(new Set(seen).size, ids.length);
    await first.stop();
    await second.stop();
  });

  it('when a retry queue was deleted from outside, then the failed message is not lost: the topology is declared again and the retry goes through', async () => {
    const b = broker({ maxAttempts: 3, backoffBaseMs: 20 });
    const consumer = `unroutable-${randomUUID().slice(0, 8)}`;
    const attempts: number[] = [];
    b.consume(consumer, ['unroutable.event'], async (tx, message) => {
      attempts.push(message.attempt);
      if (attempts.length < 3) throw new Error('transient');
      await record(consumer)(tx, message);
    });
    await b.start();
    const retryQueue = b.topology().queues.find((q) => q.name.endsWith('.retry.20ms'))!.name;
    const connection = await amqp.connect(url);
    await (await connection.createChannel()).deleteQueue(retryQueue);
    await connection.close();
    await publish('unroutable.event', { n: 1 });
    await waitFor('the effect', async () => (await effects(consumer)).length === 1);
    await b.drain();
    // attempt 1 could not be parked (no queue took it: returned, not acked), so it came back as
    // attempt 1 after the reconnect re-declared the retry queue.
    assert.deepEqual(attempts, [1, 1, 2]);
    assert.equal((await effects(consumer)).length, 1);
    await b.stop();
  });

  it('when a handler crashes its process every time, then x-delivery-limit dead-letters the message and it is recorded', async () => {
    // prefetch 1: with more, the messages waiting behind the poison in the prefetch window are
    // returned at every crash too, and after deliveryLimit crashes they are dead-lettered with it
    // (recorded and replayable, not lost — RabbitMQ counts returns per message, not per culprit).
    const b = broker({ deliveryLimit: 2, prefetch: 1 });
    const consumer = `crash-${randomUUID().slice(0, 8)}`;
    let runs = 0;
    b.consume(consumer, ['crash.event'], async (tx, message) => {
      if ((message.payload as { n: number }).n !== 13) return record(consumer)(tx, message);
      runs++;
      // Like a process dying mid-handler: the connection goes, nothing is acked or parked.
      await b.connectionsForTests().consumer?.close();
      await waitFor('the session to be marked dead', () => !b.connected);
      throw new Error('process crashed');
    });
    await b.start();
    const poison = await publish('crash.event', { n: 13 });
    const fine = await publish('crash.event', { n: 1 });
    b.nudge();
    await waitFor('the dead letter', async () => (await b.getDeadLetter(consumer, poison)) !== undefined);
    await waitFor('reconnected', () => b.connected);
    await b.drain();
    assert.equal(runs, 3, 'delivered deliveryLimit + 1 times');
    const letter = await b.getDeadLetter(consumer, poison);
    assert.match(letter?.lastError ?? '', /delivery_limit/);
    assert.deepEqual(letter?.payload, { n: 13 });
    assert.deepEqual((await effects(consumer)).map((e) => e.message_id), [fine]);
    await b.stop();
  });
});

describe('publishConfirmed on a real confirm channel', () => {
  it('when many mandatory publishes are in flight at once, then one listener watches their returns (no leak warning) and only the unroutable one is reported', async () => {
    const connection = await amqp.connect(await rabbitUrl());
    const channel = await connection.createConfirmChannel();
    const queue = `${uniquePrefix()}_publish`;
    await channel.assertQueue(queue, { exclusive: true });
    const warnings: string[] = [];
    const onWarning = (warning: Error) => void (warning.name === 'MaxListenersExceededWarning' && warnings.push(warning.message));
    process.on('warning', onWarning);
    try {
      const publish = (routingKey: string, messageId: string) => publishConfirmed(channel, '', routingKey, Buffer.from(messageId), { mandatory: true, messageId }, 5000).outcome;
      const outcomes = await Promise.all([
        ...Array.from({ length: 40 }, (_, i) => publish(queue, `m${i}`)),
        publish(`${queue}_nowhere`, 'lost'),
      ]);
      assert.deepEqual(outcomes.slice(0, 40).filter((o) => !o.ok), [], 'every routable publish confirmed');
      const lost = outcomes[40]!;
      assert.equal(lost.ok ? 'ok' : lost.reason, 'unroutable');
      await new Promise((resolve) => setImmediate(resolve)); // process.emitWarning emits on a later tick
      assert.deepEqual(warnings, []);
      assert.equal(channel.listenerCount('return'), 1, 'one listener for the channel, kept for its next publishes');
    } finally {
      process.off('warning', onWarning);
      await connection.close();
    }
  });
});
