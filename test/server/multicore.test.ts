// multicore: loops in worker threads importing the handler module, connections handed out by
// the acceptor with the remote trigger under gnet's load balancers; stop() ends every thread.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import diagnosticsChannel from 'node:diagnostics_channel';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { serve, type Engine } from '../../src/server.js';
import { isSystemError, socket } from '../../src/index.js';
import { rejection, sleep, within } from '../helpers.js';

const fixture = pathToFileURL(path.join(__dirname, 'fixtures', 'loop-echo.js'));
const portOf = (e: Engine): number => (e.address() as { port: number }).port;

function roundTrip(port: number, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const s = net.connect(port, '127.0.0.1', () => s.end(data));
    s.on('data', (d) => (out += d));
    s.on('error', reject);
    s.on('close', () => resolve(out));
  });
}

test('multicore round-robin: two loop threads share the connections, each with its own state; stop() ends them', async () => {
  const engine = await within(serve(fixture, 'tcp://127.0.0.1:0', { multicore: true, numEventLoop: 2 }), 15000, 'two loop threads');
  try {
    const replies: string[] = [];
    for (let i = 0; i < 6; i++) replies.push(await within(roundTrip(portOf(engine), `#${i}`), 5000, `client ${i}`));
    const loops = new Set(replies.map((r) => /^loop (\d+)/.exec(r)?.[1]));
    assert.is(loops.size, 2, replies.join(' | '));
    replies.forEach((r, i) => assert.ok(r.endsWith(`: #${i}`), r));
    // Per-thread state: each loop counted only its own connections (3 each, in turn).
    assert.ok(replies.some((r) => /\(3\): /.test(r)) && !replies.some((r) => /\(4\): /.test(r)), replies.join(' | '));
    assert.is(engine.stats().loops.length, 2);
  } finally {
    await within(engine.stop(), 15000, 'stop');
  }
  assert.is(engine.countConnections(), 0);
});

test('a loop thread that dies mid-traffic is reported gone; the others take the connections, and stop() still resolves', async () => {
  const diagnosticsChannel = await import('node:diagnostics_channel');
  const gone: unknown[] = [];
  const listener = (m: unknown): void => {
    const msg = m as { type: string; error?: { code?: string } };
    if (msg.type === 'error' && msg.error?.code === 'ERR_LOOP_GONE') gone.push(msg);
  };
  diagnosticsChannel.subscribe('netpoll:server', listener);
  const engine = await within(serve(fixture, 'tcp://127.0.0.1:0', { multicore: true, numEventLoop: 2 }), 15000, 'two loop threads');
  try {
    await roundTrip(portOf(engine), 'die').catch(() => '');
    const t0 = Date.now();
    while (gone.length === 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
    assert.is(gone.length, 1);
    const replies: string[] = [];
    for (let i = 0; i < 4; i++) replies.push(await within(roundTrip(portOf(engine), `#${i}`), 5000, `client ${i}`));
    assert.is(new Set(replies.map((r) => /^loop (\d+)/.exec(r)?.[1])).size, 1, replies.join(' | '));
  } finally {
    diagnosticsChannel.unsubscribe('netpoll:server', listener);
    await within(engine.stop(), 15000, 'stop after a loop died');
  }
});

test('Action.Shutdown in a loop thread stops the whole engine', async () => {
  const engine = await within(serve(fixture, 'tcp://127.0.0.1:0', { multicore: true, numEventLoop: 2 }), 15000, 'two loop threads');
  await roundTrip(portOf(engine), 'shutdown');
  const t0 = Date.now();
  while (!engine.stopping && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
  assert.ok(engine.stopping);
  await within(engine.stop(), 15000, 'the stop a loop asked for');
  assert.is(engine.countConnections(), 0);
});

test('least-connections spreads a burst of connections evenly: hand-offs not yet adopted count', async () => {
  const engine = await within(serve(fixture, 'tcp://127.0.0.1:0', { multicore: true, numEventLoop: 2, lb: 'least-connections' }), 15000, 'two loop threads');
  const sockets: net.Socket[] = [];
  try {
    // All 8 connect at once and stay open: the acceptor picks while none is adopted yet.
    await within(
      Promise.all(
        Array.from({ length: 8 }, () => new Promise<void>((resolve, reject) => {
          const s = net.connect(portOf(engine), '127.0.0.1', () => resolve());
          s.on('error', reject);
          sockets.push(s);
        })),
      ),
      10000,
      'eight connections',
    );
    for (let t = 0; t < 200 && engine.countConnections() < 8; t++) await sleep(25);
    assert.equal(engine.stats().loops.map((l) => l.connections), [4, 4]);
  } finally {
    for (const s of sockets) s.destroy();
    await within(engine.stop(), 15000, 'stop');
  }
});

test('multicore least-connections and source-addr-hash serve; a module that does not load rejects serve()', async () => {
  for (const lb of ['least-connections', 'source-addr-hash'] as const) {
    const engine = await within(serve(fixture, 'tcp://127.0.0.1:0', { multicore: true, numEventLoop: 2, lb }), 15000, lb);
    try {
      assert.match(await within(roundTrip(portOf(engine), 'hi'), 5000, lb), /^loop \d+ \(1\): hi$/);
    } finally {
      await within(engine.stop(), 15000, 'stop');
    }
  }
  let err: any;
  try {
    await serve(pathToFileURL(path.join(__dirname, 'fixtures', 'missing.js')), 'tcp://127.0.0.1:0', { multicore: true, numEventLoop: 1 });
  } catch (e) {
    err = e;
  }
  assert.match(String(err?.message), /could not start/);
  let typeErr: any;
  try {
    await serve({}, 'tcp://127.0.0.1:0', { multicore: true });
  } catch (e) {
    typeErr = e;
  }
  assert.instance(typeErr, TypeError);
});

/** Linux: how many TCP sockets listen on `port` (IPv4), from /proc/net/tcp (state 0A is LISTEN). */
function listenersOn(port: number): number {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return fs
    .readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .filter((line) => {
      const f = line.trim().split(/\s+/);
      return f.length > 3 && f[1].endsWith(`:${hex}`) && f[3] === '0A';
    }).length;
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(10);
  }
}

/** Opens a connection, sends `data`, and resolves with the socket and the first reply (the socket stays open). */
function openAndAsk(port: number, data: string): Promise<{ s: net.Socket; reply: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(data));
    s.once('data', (d) => resolve({ s, reply: d.toString() }));
    s.on('error', reject);
  });
}

const linuxOnly = process.platform === 'linux';

test('reusePort multicore: each loop listens on a SO_REUSEPORT socket of its own and accepts for itself; the kernel spreads the connections; counts, stats and a graceful stop work', async () => {
  if (!linuxOnly) return console.log('  (skipped: per-loop SO_REUSEPORT listeners are used where the kernel balances them, Linux)');
  const engine = await within(serve(fixture, 'tcp://127.0.0.1:0', { multicore: true, numEventLoop: 2, reusePort: true }), 15000, 'two loop threads');
  const sockets: net.Socket[] = [];
  const closed: Promise<void>[] = [];
  const n = 40;
  try {
    const port = portOf(engine);
    assert.ok(port > 0);
    assert.equal(engine.address(), { address: '127.0.0.1', family: 'IPv4', port });
    // Two listening sockets on the port (one per loop), none on the calling thread.
    assert.is(listenersOn(port), 2);
    const replies: string[] = [];
    for (let i = 0; i < n; i++) {
      const { s, reply } = await within(openAndAsk(port, `#${i}`), 5000, `client ${i}`);
      sockets.push(s);
      closed.push(new Promise((resolve) => s.once('close', () => resolve())));
      replies.push(reply);
    }
    replies.forEach((r, i) => assert.ok(r.endsWith(`: #${i}`), r));
    // The kernel hashes each connection to one listener: with 40 connections both loops get
    // some (all on one would be a 1 in 2^39 event, or no balancing at all).
    assert.is(new Set(replies.map((r) => /^loop (\d+)/.exec(r)?.[1])).size, 2, replies.join(' | '));
    await until(() => engine.countConnections() === n, 5000, 'counted');
    const perLoop = engine.stats().loops.map((l) => l.connections);
    assert.is(perLoop.length, 2);
    assert.ok(perLoop.every((c) => c > 0), String(perLoop));
    assert.is(perLoop[0] + perLoop[1], n);
    assert.is(engine.stats().connections, n);
    // Per-loop state: each loop counted its own connections only, so neither counted all 40.
    assert.not.ok(replies.some((r) => new RegExp(`\\(${n}\\): `).test(r)), replies.join(' | '));
  } finally {
    await within(engine.stop(), 15000, 'stop');
  }
  // Graceful: the server closed every connection (the clients kept theirs open), and no listener is left.
  await within(Promise.all(closed), 5000, 'every client saw the close');
  assert.is(engine.countConnections(), 0);
  assert.is(listenersOn(portOf(engine)), 0);
});

test('reusePort multicore: a loop that dies takes its listener with it; the other loop accepts every new connection, and stop() still resolves', async () => {
  if (!linuxOnly) return console.log('  (skipped: Linux only)');
  const gone: unknown[] = [];
  const listener = (m: unknown): void => {
    const msg = m as { type: string; error?: { code?: string } };
    if (msg.type === 'error' && msg.error?.code === 'ERR_LOOP_GONE') gone.push(msg);
  };
  diagnosticsChannel.subscribe('netpoll:server', listener);
  const engine = await within(serve(fixture, 'tcp://127.0.0.1:0', { multicore: true, numEventLoop: 2, reusePort: true }), 15000, 'two loop threads');
  try {
    const port = portOf(engine);
    // Whichever loop the kernel gives it to, a 'die' connection ends that loop's thread; the
    // peer sees the end (the acceptor thread closes the dead loop's fds).
    await within(roundTrip(port, 'die').catch(() => ''), 5000, 'the dying connection ends');
    await until(() => gone.length === 1, 5000, 'ERR_LOOP_GONE');
    assert.is(listenersOn(port), 1);
    const replies: string[] = [];
    for (let i = 0; i < 8; i++) replies.push(await within(roundTrip(port, `#${i}`), 5000, `client ${i}`));
    assert.is(new Set(replies.map((r) => /^loop (\d+)/.exec(r)?.[1])).size, 1, replies.join(' | '));
    replies.forEach((r, i) => assert.ok(r.endsWith(`: #${i}`), r));
    await until(() => engine.countConnections() === 0, 5000, 'every connection closed');
  } finally {
    diagnosticsChannel.unsubscribe('netpoll:server', listener);
    await within(engine.stop(), 15000, 'stop after a loop died');
  }
  assert.is(listenersOn(portOf(engine)), 0);
});

test('reusePort multicore: a port in use is a SystemError (EADDRINUSE), no loop thread starts and no listener is left; bad options are TypeErrors', async () => {
  const taken = socket.listenTCP('127.0.0.1', 0); // no SO_REUSEPORT: nobody may share it
  const port = socket.localAddress(taken).port;
  try {
    const before = linuxOnly ? listenersOn(port) : 1;
    const err = await within(rejection(serve(fixture, `tcp://127.0.0.1:${port}`, { multicore: true, numEventLoop: 2, reusePort: true })), 5000, 'EADDRINUSE');
    assert.ok(isSystemError(err), String(err));
    assert.is(err.code, 'EADDRINUSE');
    if (linuxOnly) assert.is(listenersOn(port), before);
  } finally {
    socket.close(taken);
  }
  const bad = await rejection(serve(fixture, 'tcp://127.0.0.1:0', { multicore: true, reusePort: 1 as never }));
  assert.instance(bad, TypeError);
  if (!linuxOnly) return;
  // Listeners opened, then a loop thread cannot load the module: serve() rejects and closes them all.
  const probe = socket.listenTCP('127.0.0.1', 0, { reusePort: true });
  const free = socket.localAddress(probe).port;
  socket.close(probe);
  const missing = pathToFileURL(path.join(__dirname, 'fixtures', 'missing.js'));
  const failed = await within(rejection(serve(missing, `tcp://127.0.0.1:${free}`, { multicore: true, numEventLoop: 2, reusePort: true })), 15000, 'a failed start');
  assert.match(String(failed?.message), /could not start/);
  await until(() => listenersOn(free) === 0, 5000, 'no listener left after a failed start');
});

test('reusePort multicore on unix:// keeps the acceptor (a socket path cannot be bound twice) and serves', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netpoll-mc-'));
  const file = path.join(dir, 's.sock');
  const engine = await within(serve(fixture, `unix://${file}`, { multicore: true, numEventLoop: 2, reusePort: true }), 15000, 'unix loops');
  try {
    const replies: string[] = [];
    for (let i = 0; i < 4; i++) {
      replies.push(
        await within(
          new Promise<string>((resolve, reject) => {
            let out = '';
            const s = net.connect(file, () => s.end(`#${i}`));
            s.on('data', (d) => (out += d));
            s.on('error', reject);
            s.on('close', () => resolve(out));
          }),
          5000,
          `unix client ${i}`,
        ),
      );
    }
    // The acceptor's round-robin: both loops, in turn.
    assert.is(new Set(replies.map((r) => /^loop (\d+)/.exec(r)?.[1])).size, 2, replies.join(' | '));
    assert.is(engine.address(), file);
  } finally {
    await within(engine.stop(), 15000, 'stop');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
