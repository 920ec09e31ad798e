// createClient(): dial (TCP and Unix), enroll, stop, with the same handler and Conn as a server.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createClient, serve, type Conn, type Engine } from '../../src/server.js';
import { isSystemError, socketpair, socket } from '../../src/index.js';
import { libkqueue, sleep, within } from '../helpers.js';

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

test.run();
