// createClient(): dial (TCP and Unix), enroll, stop, with the same handler and Conn as a server.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { createClient, serve, type Conn, type Engine } from '../../src/server.js';
import { isSystemError, socketpair, socket } from '../../src/index.js';
import { fdsMatching, libkqueue, rejection, sleep, within } from '../helpers.js';

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(5);
  }
}

const portOf = (e: Engine): number => (e.address() as { port: number }).port;

test('a client dials a server, both sides on netpoll/server, and the replies come back', async () => {
  const server = await serve({ onTraffic: (c) => void c.write(c.next()) }, 'tcp://127.0.0.1:0');
  const got: string[] = [];
  const opened: Conn[] = [];
  const closes: (Error | undefined)[] = [];
  const client = await createClient({
    onOpen: (c) => void opened.push(c),
    onTraffic: (c) => void got.push(c.next().toString()),
    onClose: (_c, err) => void closes.push(err),
  });
  try {
    const conns = await within(Promise.all([1, 2, 3].map(() => client.dial(`tcp://127.0.0.1:${portOf(server)}`))), 5000, 'dials');
    assert.is(opened.length, 3);
    assert.is(client.countConnections(), 3);
    conns.forEach((c, i) => c.write(`hello ${i}`));
    await until(() => got.length === 3, 5000, 'replies');
    assert.equal(got.sort(), ['hello 0', 'hello 1', 'hello 2']);
    assert.is(conns[0].remoteAddress.port, portOf(server));
    conns[0].close();
    await until(() => closes.length === 1, 5000, 'close');
    assert.is(closes[0], undefined);
    await until(() => server.countConnections() === 2, 5000, 'the server saw it');
  } finally {
    await client.stop();
    await server.stop();
  }
  assert.is(closes.length, 3);
});

test('dial errors: refused is a SystemError, bad addresses TypeError/RangeError, after stop ERR_CLIENT_STOPPED', async () => {
  const client = await createClient({});
  const rejects = async (p: Promise<unknown>): Promise<any> => {
    try {
      await p;
    } catch (e) {
      return e;
    }
    throw new Error('expected a rejection');
  };
  try {
    // A port nobody listens on: take one and close it.
    const lfd = socket.listenTCP('127.0.0.1', 0);
    const port = socket.localAddress(lfd).port;
    socket.close(lfd);
    const refused = await within(rejects(client.dial(`tcp://127.0.0.1:${port}`)), 5000, 'refused');
    assert.ok(isSystemError(refused), String(refused));
    // libkqueue reads SO_ERROR itself to build the write filter's EV_EOF, which clears it: the
    // refusal is known there only as a socket with no peer (docs/backends.md).
    assert.ok(refused.code === 'ECONNREFUSED' || (libkqueue && refused.code === 'ENOTCONN'), refused.code);
    assert.instance(await rejects(client.dial('tcp://127.0.0.1:0')), RangeError);
    assert.instance(await rejects(client.dial('ftp://x:1')), TypeError);
    const noSock = await rejects(client.dial('unix:///nonexistent/netpoll.sock'));
    assert.ok(isSystemError(noSock));
    assert.is(client.countConnections(), 0);
  } finally {
    await client.stop();
  }
  assert.is((await rejects(client.dial('tcp://127.0.0.1:1'))).code, 'ERR_CLIENT_STOPPED');
});

test('enroll() serves a socketpair end; unix:// dials; stop() flushes and closes', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netpoll-client-'));
  const file = path.join(dir, 's.sock');
  const server = await serve({ onTraffic: (c) => void c.write(c.next().toString().toUpperCase()) }, `unix://${file}`);
  const got: string[] = [];
  const client = await createClient({ onTraffic: (c) => void got.push(c.next().toString()) });
  const [a, b] = socketpair();
  try {
    const conn = client.enroll(a);
    assert.is(conn.fd, a);
    let twice: any;
    try {
      client.enroll(a);
    } catch (e) {
      twice = e;
    }
    assert.is(twice?.code, 'ERR_FD_IN_USE');
    assert.is(client.countConnections(), 1);
    socket.write(b, Buffer.from('from the pair'));
    await until(() => got.includes('from the pair'), 5000, 'enrolled traffic');
    conn.write('back');
    const buf = Buffer.alloc(16);
    await until(() => socket.read(b, buf) === 4, 5000, 'written back');
    const u = await client.dial(`unix://${file}`);
    u.write('shout');
    await until(() => got.includes('SHOUT'), 5000, 'unix reply');
    assert.is(client.countConnections(), 2);
  } finally {
    await client.stop();
    await server.stop();
    socket.close(b);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.is(client.countConnections(), 0);
});

/**
 * A loopback port whose connects hang: a listener with backlog 0 whose accept queue is filled
 * by connections nobody accepts. The kernel then drops each new SYN (Linux counts a
 * ListenOverflow; the BSDs do the same), so the client retries and its connect stays in progress.
 */
/** Open sockets of this process (the pollers' own descriptors, which libkqueue frees lazily, are not counted). */
const openSockets = (): number => fdsMatching(/^socket:/).length;

async function hangingPort(): Promise<{ port: number; close(): void }> {
  const lfd = socket.listenTCP('127.0.0.1', 0, { backlog: 0 });
  const port = socket.localAddress(lfd).port;
  const fillers: net.Socket[] = [];
  // Two fillers at least fill the queue (backlog 0 holds one); stop at the first that hangs.
  for (let i = 0; i < 4; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    fillers.push(s);
    const done = await new Promise<boolean>((resolve) => {
      s.once('connect', () => resolve(true));
      setTimeout(() => resolve(false), 300);
    });
    if (!done && i >= 1) break;
  }
  return {
    port,
    close() {
      for (const s of fillers) s.destroy();
      socket.close(lfd);
    },
  };
}

test('dial with a timeout: a connect that never completes rejects with ETIMEDOUT and leaves no fd behind', async () => {
  const hang = await hangingPort();
  const fdsAtStart = openSockets();
  const client = await createClient({});
  const server = await serve({ onTraffic: (c) => void c.write(c.next()) }, 'tcp://127.0.0.1:0');
  try {
    const fds = openSockets();
    const t0 = Date.now();
    const err = await within(rejection(client.dial(`tcp://127.0.0.1:${hang.port}`, { timeout: 300 })), 10000, 'the timeout');
    const took = Date.now() - t0;
    assert.instance(err, Error);
    assert.is(err.code, 'ETIMEDOUT', String(err));
    assert.match(err.message, /timed out after 300 ms/);
    assert.ok(took >= 290, `rejected after ${took} ms`);
    assert.is(openSockets(), fds);
    assert.is(client.countConnections(), 0);
    // Several at once, each closed; a dial that connects in time is not disturbed by its timer.
    const many = await within(Promise.all([1, 2, 3].map(() => rejection(client.dial(`tcp://127.0.0.1:${hang.port}`, { timeout: 100 })))), 10000, 'three timeouts');
    for (const e of many) assert.is(e.code, 'ETIMEDOUT');
    assert.is(openSockets(), fds);
    const conn = await within(client.dial(`tcp://127.0.0.1:${portOf(server)}`, { timeout: 200 }), 5000, 'a dial in time');
    await sleep(300); // past its timeout: still open
    assert.not.ok(conn.closed);
    assert.is(client.countConnections(), 1);
    // stop() fails a dial in progress with ERR_CLIENT_STOPPED before its timeout (and its timer goes).
    const pending = rejection(client.dial(`tcp://127.0.0.1:${hang.port}`, { timeout: 60_000 }));
    await sleep(50);
    await within(client.stop(), 5000, 'stop');
    assert.is((await within(pending, 5000, 'the pending dial')).code, 'ERR_CLIENT_STOPPED');
    await server.stop();
    assert.is(openSockets(), fdsAtStart, 'the stopped client and server closed everything, the pending dial\'s socket too');
  } finally {
    await client.stop();
    await server.stop();
    hang.close();
  }
});

test('dial options are checked: TypeError for a non-object, an unknown key or a non-number timeout; RangeError out of range', async () => {
  const client = await createClient({});
  try {
    const addr = 'tcp://127.0.0.1:1';
    assert.instance(await rejection(client.dial(addr, 5 as never)), TypeError);
    assert.instance(await rejection(client.dial(addr, null as never)), TypeError);
    assert.instance(await rejection(client.dial(addr, { timeout: '100' } as never)), TypeError);
    assert.instance(await rejection(client.dial(addr, { timout: 100 } as never)), TypeError);
    assert.instance(await rejection(client.dial(addr, { timeout: -1 })), RangeError);
    assert.instance(await rejection(client.dial(addr, { timeout: 1.5 })), RangeError);
    assert.instance(await rejection(client.dial(addr, { timeout: 2 ** 31 })), RangeError);
    assert.is(client.countConnections(), 0);
  } finally {
    await client.stop();
  }
});

test.run();
