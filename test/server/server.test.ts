// netpoll/server with real sockets: serve(), the Conn's buffers, backpressure, pause and
// resume, idle timeouts, handlers that fail, stop(), and the errors bad input must give.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import diagnosticsChannel from 'node:diagnostics_channel';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Action, ServerDiagnosticsChannel, serve, type Conn, type Engine, type EventHandler, type ServerDiagnostic } from '../../src/server.js';
import { isSystemError, socket } from '../../src/index.js';
import { nodeCommand, sleep, within } from '../helpers.js';

function portOf(engine: Engine): number {
  const a = engine.address();
  if (typeof a === 'string') throw new Error('not a TCP engine');
  return a.port;
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** Sends `data`, half-closes, and collects everything until the server closes. */
function roundTrip(port: number, data: Buffer | string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.connect(port, '127.0.0.1', () => s.end(data));
    s.on('data', (d) => chunks.push(d));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

/** Waits until `cond()` holds, polling every few ms, for at most `ms`. */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(5);
  }
}

const echo: EventHandler = {
  onTraffic(conn) {
    conn.write(conn.next());
  },
};

test('serve() echoes for many clients, and a large payload comes back whole', async () => {
  const engine = await serve(echo, 'tcp://127.0.0.1:0');
  try {
    const port = portOf(engine);
    assert.equal(engine.address(), { address: '127.0.0.1', family: 'IPv4', port });
    const payloads = Array.from({ length: 20 }, (_, i) => Buffer.from(`client ${i} `.repeat(i * 50 + 1)));
    const replies = await within(Promise.all(payloads.map((p) => roundTrip(port, p))), 10000, 'echo clients');
    replies.forEach((r, i) => assert.ok(r.equals(payloads[i]), `client ${i}`));
    const big = Buffer.alloc(4 << 20, 7);
    for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xff;
    assert.ok((await within(roundTrip(port, big), 20000, 'the 4 MiB echo')).equals(big));
    const st = engine.stats();
    assert.is(st.opened, 21);
    assert.is(st.bytesIn, st.bytesOut);
    assert.ok(st.bytesIn >= big.length);
  } finally {
    await engine.stop();
  }
});

test('peek, next and discard see bytes across reads; leftovers wait for the next onTraffic', async () => {
  const frames: string[] = [];
  const engine = await serve({
    onTraffic(conn) {
      // frames: a 2-byte length, then the body
      while (conn.inboundBuffered >= 2) {
        const len = conn.peek(2).readUInt16BE(0);
        if (conn.inboundBuffered < 2 + len) return;
        assert.is(conn.discard(2), 2);
        const body = conn.next(len).toString();
        frames.push(body);
        conn.write(`<${body}>`);
      }
    },
  }, 'tcp://127.0.0.1:0');
  try {
    const s = await connect(portOf(engine));
    const got: Buffer[] = [];
    s.on('data', (d) => got.push(d));
    const frame = (t: string): Buffer => Buffer.concat([Buffer.from([0, t.length]), Buffer.from(t)]);
    const all = Buffer.concat([frame('alpha'), frame('be'), frame('gamma-delta')]);
    for (let i = 0; i < all.length; i += 3) {
      s.write(all.subarray(i, i + 3));
      await sleep(2);
    }
    await until(() => Buffer.concat(got).toString() === '<alpha><be><gamma-delta>', 5000, 'replies');
    assert.equal(frames, ['alpha', 'be', 'gamma-delta']);
    s.destroy();
  } finally {
    await engine.stop();
  }
});

test('peek and next hand out views, not copies, when the bytes lie contiguous', async () => {
  const checks: boolean[] = [];
  const engine = await serve({
    onTraffic(conn) {
      const a = conn.peek();
      const b = conn.peek(3);
      const c = conn.next();
      checks.push(a.buffer === b.buffer && a.byteOffset === b.byteOffset && c.buffer === a.buffer && c.byteOffset === a.byteOffset);
      conn.write(c);
    },
  }, 'tcp://127.0.0.1:0');
  try {
    assert.is((await roundTrip(portOf(engine), 'no copies')).toString(), 'no copies');
    assert.equal(checks, [true]);
  } finally {
    await engine.stop();
  }
});

test('messages of one size get the same view object, each with its own bytes (no garbage per message)', async () => {
  const views: Buffer[] = [];
  const seen: string[] = [];
  const engine = await serve({
    onTraffic(conn) {
      const v = conn.next();
      views.push(v);
      seen.push(v.toString());
      conn.write(v);
    },
  }, 'tcp://127.0.0.1:0');
  try {
    const s = await connect(portOf(engine));
    let got = '';
    s.on('data', (d) => (got += d.toString()));
    for (const msg of ['first', 'again', 'third', 'long message']) {
      s.write(msg);
      await until(() => got.endsWith(msg), 5000, `the echo of ${msg}`);
    }
    s.destroy();
    assert.equal(seen, ['first', 'again', 'third', 'long message']);
    assert.ok(views[0] === views[1] && views[1] === views[2], 'one view for the three 5-byte messages');
    assert.ok(views[3] !== views[2]);
    assert.is(views[0].toString(), 'long ', 'a view of the memory the loop reuses');
  } finally {
    await engine.stop();
  }
});

test('a half-closed peer gets its replies, then an orderly close (onClose without error)', async () => {
  const closes: (Error | undefined)[] = [];
  const engine = await serve({ ...echo, onClose: (_c, err) => void closes.push(err) }, 'tcp://127.0.0.1:0');
  try {
    const reply = await within(roundTrip(portOf(engine), 'half-closed'), 5000, 'half-close');
    assert.is(reply.toString(), 'half-closed');
    await until(() => closes.length === 1, 2000, 'onClose');
    assert.is(closes[0], undefined);
    assert.is(engine.countConnections(), 0);
  } finally {
    await engine.stop();
  }
});

test('a peer that resets mid-write costs only its own connection: onClose gets ECONNRESET or EPIPE', async () => {
  const closes: (Error | undefined)[] = [];
  const big = Buffer.alloc(8 << 20);
  const engine = await serve({
    onTraffic(conn) {
      conn.discard();
      conn.write(big);
    },
    onClose: (_c, err) => void closes.push(err),
  }, 'tcp://127.0.0.1:0', { highWaterMark: 16 << 20 });
  try {
    const port = portOf(engine);
    const s = await connect(port);
    s.pause();
    s.write('go');
    await until(() => engine.stats().bytesOut > 0, 5000, 'the server writes');
    s.resetAndDestroy();
    await until(() => closes.length === 1, 5000, 'onClose after the reset');
    assert.ok(closes[0] instanceof Error);
    assert.ok(['ECONNRESET', 'EPIPE'].includes((closes[0] as Error & { code: string }).code), String(closes[0]));
    // The engine goes on.
    assert.is((await roundTrip(port, 'again')).length, 8 << 20);
  } finally {
    await engine.stop();
  }
});

test('a slow reader: reading stops above the high-water mark, memory stays bounded, onDrain resumes the writer', async () => {
  const chunk = Buffer.alloc(64 * 1024, 1);
  const total = 16 << 20;
  let sent = 0;
  let drains = 0;
  let maxOutbound = 0;
  const pump = (conn: Conn): void => {
    while (sent < total) {
      sent += chunk.length;
      const ok = conn.write(chunk);
      maxOutbound = Math.max(maxOutbound, conn.outboundBuffered);
      if (!ok) return;
    }
  };
  const engine = await serve({
    onTraffic(conn) {
      conn.discard();
      pump(conn);
    },
    onDrain(conn) {
      drains++;
      pump(conn);
    },
  }, 'tcp://127.0.0.1:0', { highWaterMark: 256 * 1024, socketSendBuffer: 64 * 1024 });
  try {
    const s = await connect(portOf(engine));
    s.pause();
    s.write('go');
    await until(() => engine.stats().pausedForBackpressure === 1, 5000, 'backpressure');
    // The peer keeps sending; we do not read it while held back.
    for (let i = 0; i < 20; i++) s.write(Buffer.alloc(1024));
    await sleep(100);
    const [info] = engine.connections();
    assert.ok(info.pausedForBackpressure);
    assert.ok(info.outboundBuffered <= 256 * 1024 + chunk.length, `outbound ${info.outboundBuffered}`);
    assert.ok(info.inboundBuffered === 0, 'the input waits in the kernel, not in our memory');
    let received = 0;
    s.on('data', (d) => (received += d.length));
    s.resume();
    await within(until(() => received >= total, 20000, 'everything'), 25000, 'the slow reader');
    assert.ok(drains > 0);
    assert.ok(maxOutbound <= 256 * 1024 + chunk.length, `max outbound ${maxOutbound}`);
    s.destroy();
  } finally {
    await engine.stop();
  }
});

test('pause() stops onTraffic with no busy loop; resume() replays buffered input', async () => {
  let conn!: Conn;
  const seen: string[] = [];
  const engine = await serve({
    onOpen(c) {
      conn = c;
    },
    onTraffic(c) {
      seen.push(c.peek().toString());
      if (seen.length === 1) {
        c.pause(); // leave the input buffered
        return;
      }
      c.discard();
    },
  }, 'tcp://127.0.0.1:0');
  try {
    const s = await connect(portOf(engine));
    s.write('one');
    await until(() => seen.length === 1, 5000, 'first onTraffic');
    s.write('two');
    await sleep(50);
    const before = engine.stats();
    await sleep(200);
    const after = engine.stats();
    assert.is(after.paused, 1);
    assert.ok(after.events - before.events <= 1, `events while paused: ${after.events - before.events}`);
    assert.is(seen.length, 1);
    conn.resume();
    await until(() => seen.slice(1).join('') === 'onetwo', 5000, 'onTraffic after resume, with the input kept and the input held back');
    assert.is(engine.stats().paused, 0);
    s.destroy();
  } finally {
    await engine.stop();
  }
});

test('idleTimeout closes a quiet connection with ETIMEDOUT; traffic keeps one alive; setIdleTimeout changes it', async () => {
  const closes = new Map<string, Error | undefined>();
  const engine = await serve({
    onOpen(conn) {
      conn.context = closes.size === 0 && conn.context === undefined ? 'x' : 'y';
    },
    onTraffic(conn) {
      const t = conn.next().toString();
      if (t.startsWith('name ')) conn.context = t.slice(5);
      if (t === 'long') conn.setIdleTimeout(0);
    },
    onClose: (conn, err) => void closes.set(String(conn.context), err),
  }, 'tcp://127.0.0.1:0', { idleTimeout: 300 });
  try {
    const port = portOf(engine);
    const quiet = await connect(port);
    quiet.write('name quiet');
    const busy = await connect(port);
    busy.write('name busy');
    const forever = await connect(port);
    forever.write('name forever');
    await sleep(50);
    forever.write('long');
    const t0 = Date.now();
    while (Date.now() - t0 < 800) {
      busy.write('.');
      await sleep(50);
    }
    await until(() => closes.has('quiet'), 3000, 'the quiet one closed');
    const err = closes.get('quiet') as Error & { code: string };
    assert.is(err.code, 'ETIMEDOUT');
    assert.not.ok(closes.has('busy'), 'the busy one lives');
    assert.not.ok(closes.has('forever'));
    await until(() => closes.has('busy'), 3000, 'the busy one closed once quiet');
    assert.is(engine.stats().timedOut, 2);
    assert.is(engine.countConnections(), 1);
    quiet.destroy();
    busy.destroy();
    forever.destroy();
  } finally {
    await engine.stop();
  }
});

test('a handler that throws closes only its connection: the error reaches onClose and the channel', async () => {
  const closes: (Error | undefined)[] = [];
  const diags: ServerDiagnostic[] = [];
  const listener = (m: unknown): void => void diags.push(m as ServerDiagnostic);
  diagnosticsChannel.subscribe(ServerDiagnosticsChannel, listener);
  const engine = await serve({
    onTraffic(conn) {
      const t = conn.next().toString();
      if (t === 'throw') throw new Error('bug in the handler');
      if (t === 'throw-string') throw 'a string'; // eslint-disable-line no-throw-literal
      if (t === 'reject') return Promise.reject(new Error('async bug')) as never;
      if (t === 'garbage') return { not: 'an action' } as never;
      if (t === 'number') return 42 as never;
      conn.write(t);
    },
    onClose: (_c, err) => void closes.push(err),
  }, 'tcp://127.0.0.1:0');
  try {
    const port = portOf(engine);
    const bystander = await connect(port);
    for (const what of ['throw', 'throw-string', 'reject']) {
      const r = await within(roundTrip(port, what), 5000, what);
      assert.is(r.length, 0);
    }
    await until(() => closes.length === 3, 3000, 'three closes');
    assert.is(closes[0]!.message, 'bug in the handler');
    assert.is((closes[1] as Error & { code: string }).code, 'ERR_HANDLER_THREW');
    assert.is(closes[2]!.message, 'async bug');
    assert.is(engine.stats().handlerErrors, 3);
    const errors = diags.filter((d) => d.type === 'error');
    assert.is(errors.length, 3);
    assert.ok(diags.some((d) => d.type === 'open'));
    // Garbage return values count as Action.None.
    for (const what of ['garbage', 'number']) {
      const s = await connect(port);
      s.write(what);
      await sleep(30);
      s.write('still here');
      const got = await new Promise<string>((resolve) => s.once('data', (d) => resolve(d.toString())));
      assert.is(got, 'still here');
      s.destroy();
    }
    bystander.write('alive');
    const got = await new Promise<string>((resolve) => bystander.once('data', (d) => resolve(d.toString())));
    assert.is(got, 'alive');
    bystander.destroy();
  } finally {
    diagnosticsChannel.unsubscribe(ServerDiagnosticsChannel, listener);
    await engine.stop();
  }
});

test('stop() inside onTraffic: queued output is still written, every connection closes, onShutdown runs once', async () => {
  let shutdowns = 0;
  let stopPromise: Promise<void> | undefined;
  const reply = Buffer.alloc(2 << 20, 3);
  let engineRef: Engine | undefined;
  const engine = await serve({
    onBoot(e) {
      engineRef = e;
    },
    onTraffic(conn) {
      conn.discard();
      conn.write(reply);
      stopPromise = engineRef!.stop();
      assert.is(engineRef!.stop(), stopPromise, 'the same promise');
      engineRef!.stop(); // and again, harmlessly
    },
    onShutdown() {
      shutdowns++;
    },
  }, 'tcp://127.0.0.1:0', { highWaterMark: 4 << 20 });
  assert.is(engineRef, engine);
  const port = portOf(engine);
  const other = await connect(port);
  const otherClosed = new Promise((resolve) => other.on('close', resolve));
  const got = await within(roundTrip(port, 'stop'), 10000, 'the reply before the stop');
  assert.ok(got.equals(reply));
  await within(stopPromise!, 5000, 'stop');
  assert.is(shutdowns, 1);
  assert.ok(engine.stopping);
  await within(otherClosed, 5000, 'the other connection closed');
  await assert.not.throws(async () => engine.stop());
  // The port is free again.
  const again = await serve(echo, `tcp://127.0.0.1:${port}`);
  await again.stop();
});

test('a Conn used after its onClose (write, next, close and the rest) does nothing and throws nothing, even when its fd number serves a new connection', async () => {
  const opened: Conn[] = [];
  const closed: Conn[] = [];
  const engine = await serve(
    {
      onOpen: (c) => void opened.push(c),
      onTraffic: (c) => void c.write(c.next()),
      onClose: (c) => {
        closed.push(c);
        // Inside onClose too: the connection is gone.
        assert.is(c.write('late'), false);
        assert.is(c.next().length, 0);
      },
    },
    'tcp://127.0.0.1:0',
  );
  const second = await connect(portOf(engine));
  let first: net.Socket | undefined;
  try {
    first = await connect(portOf(engine));
    await until(() => opened.length === 2, 5000, 'both open');
    const stale = opened.find((c) => c.remoteAddress.port === first!.localPort)!;
    first.destroy();
    await until(() => closed.length === 1, 5000, 'the first closed');
    assert.is(closed[0], stale);
    // A third connection most likely gets the stale Conn's fd number back.
    const third = await connect(portOf(engine));
    try {
      await until(() => opened.length === 3, 5000, 'the third open');
      assert.ok(stale.closed);
      assert.is(stale.write('x'), false);
      assert.is(stale.writev(['y', Buffer.from('z')]), false);
      assert.is(await stale.asyncWrite('w'), false);
      stale.flush();
      assert.is(stale.next().length, 0);
      assert.is(stale.peek(10).length, 0);
      assert.is(stale.discard(), 0);
      assert.is(stale.inboundBuffered, 0);
      assert.is(stale.outboundBuffered, 0);
      stale.pause();
      stale.resume();
      stale.wake();
      stale.setIdleTimeout(10);
      stale.close();
      assert.is(stale.localAddress.port, 0);
      // Bad arguments are still refused, closed or not.
      assert.throws(() => stale.next(-1), (e: unknown) => e instanceof RangeError);
      assert.throws(() => stale.writev('x' as never), (e: unknown) => e instanceof TypeError);
      // The connections that hold the number now, and the other one, saw none of it.
      await sleep(50);
      const echoOf = (s: net.Socket, data: string): Promise<string> =>
        new Promise((resolve) => {
          let got = '';
          const onData = (d: Buffer): void => {
            got += d.toString();
            if (got.length >= data.length) {
              s.off('data', onData);
              resolve(got);
            }
          };
          s.on('data', onData);
          s.write(data);
        });
      assert.is(await within(echoOf(third, 'ping'), 5000, 'third'), 'ping');
      assert.is(await within(echoOf(second, 'pong'), 5000, 'second'), 'pong');
      assert.is(engine.countConnections(), 2);
      assert.is(closed.length, 1);
    } finally {
      third.destroy();
    }
  } finally {
    first?.destroy();
    second.destroy();
    await engine.stop();
  }
});

test('Action.Close closes after the reply; Action.Shutdown stops the engine', async () => {
  let shutdown = false;
  const engine = await serve({
    onTraffic(conn) {
      const t = conn.next().toString();
      conn.write(`bye ${t}`);
      return t === 'all' ? Action.Shutdown : Action.Close;
    },
    onShutdown: () => void (shutdown = true),
  }, 'tcp://127.0.0.1:0');
  const port = portOf(engine);
  const s = await connect(port);
  s.write('one');
  const chunks: Buffer[] = [];
  s.on('data', (d) => chunks.push(d));
  await new Promise((resolve) => s.on('close', resolve));
  assert.is(Buffer.concat(chunks).toString(), 'bye one');
  assert.is((await roundTrip(port, 'all')).toString(), 'bye all');
  await until(() => shutdown, 5000, 'onShutdown');
  await engine.stop();
});

test('onTick runs after boot and again after the delay it returns; wake() and asyncWrite() from outside', async () => {
  let ticks = 0;
  let conn: Conn | undefined;
  let wakes = 0;
  const engine = await serve({
    onTick() {
      ticks++;
      return ticks < 3 ? 20 : undefined;
    },
    onOpen(c) {
      conn = c;
    },
    onTraffic(c) {
      if (c.inboundBuffered === 0) wakes++;
      c.discard();
    },
  }, 'tcp://127.0.0.1:0');
  try {
    await until(() => ticks === 3, 3000, 'three ticks');
    await sleep(60);
    assert.is(ticks, 3);
    const s = await connect(portOf(engine));
    await until(() => conn !== undefined, 3000, 'onOpen');
    conn!.wake();
    conn!.wake(); // coalesced
    await until(() => wakes === 1, 3000, 'the wake');
    const got = new Promise<string>((resolve) => s.once('data', (d) => resolve(d.toString())));
    assert.is(await conn!.asyncWrite('later'), true);
    assert.is(await got, 'later');
    s.destroy();
    await until(() => engine.countConnections() === 0, 3000, 'closed');
    assert.is(await conn!.asyncWrite('too late'), false);
    assert.is(conn!.write('too late'), false);
  } finally {
    await engine.stop();
  }
});

test('unix:// serves a socket path, address() is the path, stop() removes the file', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netpoll-server-'));
  const file = path.join(dir, 'echo.sock');
  const engine = await serve(echo, `unix://${file}`);
  try {
    assert.is(engine.address(), file);
    const reply = await new Promise<string>((resolve, reject) => {
      let out = '';
      const s = net.connect(file, () => s.end('over unix'));
      s.on('data', (d) => (out += d));
      s.on('error', reject);
      s.on('close', () => resolve(out));
    });
    assert.is(reply, 'over unix');
  } finally {
    await engine.stop();
  }
  assert.not.ok(fs.existsSync(file));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('bad addresses and options are TypeError or RangeError; a port in use is a SystemError EADDRINUSE', async () => {
  const rejects = async (p: Promise<unknown>): Promise<any> => {
    try {
      await p;
    } catch (e) {
      return e;
    }
    throw new Error('expected a rejection');
  };
  for (const addr of ['127.0.0.1:80', 'http://x:1', 'tcp://127.0.0.1', 'tcp://[::1:80', 'unix://', 42, 'sctp://127.0.0.1:1', 'udp://127.0.0.1']) {
    const e = await rejects(serve(echo, addr as string));
    assert.instance(e, TypeError, String(addr));
  }
  assert.instance(await rejects(serve(echo, 'tcp://127.0.0.1:70000')), RangeError);
  assert.instance(await rejects(serve(echo, 'tcp4://[::1]:0')), TypeError);
  assert.instance(await rejects(serve(null as never, 'tcp://127.0.0.1:0')), TypeError);
  assert.instance(await rejects(serve(echo, 'tcp://127.0.0.1:0', { highWaterMark: -1 })), RangeError);
  assert.instance(await rejects(serve(echo, 'tcp://127.0.0.1:0', { idleTimeout: 'soon' as never })), TypeError);
  assert.instance(await rejects(serve(echo, 'tcp://127.0.0.1:0', { tcpNoDelay: 1 as never })), TypeError);
  assert.instance(await rejects(serve(echo, 'tcp://127.0.0.1:0', { bogus: true } as never)), TypeError);
  assert.instance(await rejects(serve(echo, 'tcp://127.0.0.1:0', { multicore: true })), TypeError);
  const engine = await serve(echo, 'tcp://127.0.0.1:0');
  try {
    const e = await rejects(serve(echo, `tcp://127.0.0.1:${portOf(engine)}`, { reuseAddr: false }));
    assert.ok(isSystemError(e));
    assert.is(e.code, 'EADDRINUSE');
    // onBoot throwing rejects serve, and frees the port.
    const boot = await rejects(serve({ onBoot() { throw new Error('no boot'); } }, 'tcp://127.0.0.1:0'));
    assert.is(boot.message, 'no boot');
  } finally {
    await engine.stop();
  }
});

test('tcp6:// and host names: [::1] and localhost', async () => {
  let engine: Engine;
  try {
    engine = await serve(echo, 'tcp6://[::1]:0');
  } catch (e) {
    console.log('  (no IPv6 loopback here: skipped)', (e as Error).message);
    return;
  }
  try {
    const a = engine.address() as { family: string; address: string; port: number };
    assert.is(a.family, 'IPv6');
    const reply = await new Promise<string>((resolve, reject) => {
      let out = '';
      const s = net.connect(a.port, '::1', () => s.end('six'));
      s.on('data', (d) => (out += d));
      s.on('error', reject);
      s.on('close', () => resolve(out));
    });
    assert.is(reply, 'six');
  } finally {
    await engine.stop();
  }
  const local = await serve(echo, 'tcp4://localhost:0');
  assert.is((local.address() as { address: string }).address, '127.0.0.1');
  await local.stop();
});

test('1,000 connections at once each get their echo; the count goes back to zero', async () => {
  const engine = await serve(echo, 'tcp://127.0.0.1:0', { backlog: 1024 });
  try {
    const port = portOf(engine);
    const n = 1000;
    const sockets: net.Socket[] = [];
    const replies = await within(
      Promise.all(
        Array.from({ length: n }, (_, i) =>
          new Promise<string>((resolve, reject) => {
            const s = net.connect(port, '127.0.0.1', () => s.write(`#${i}`));
            sockets.push(s);
            s.once('data', (d) => resolve(d.toString()));
            s.on('error', reject);
          }),
        ),
      ),
      30000,
      '1000 clients',
    );
    replies.forEach((r, i) => assert.is(r, `#${i}`));
    assert.is(engine.countConnections(), n);
    assert.is(engine.connections().length, n);
    for (const s of sockets) s.destroy();
    await until(() => engine.countConnections() === 0, 10000, 'all closed');
  } finally {
    await engine.stop();
  }
});

/** The soft and hard RLIMIT_NOFILE (Infinity for unlimited), as a shell started by this process sees them. */
function fdLimits(): { soft: number; hard: number } | undefined {
  const r = spawnSync('sh', ['-c', 'ulimit -Sn; ulimit -Hn'], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  const [soft, hard] = r.stdout.trim().split('\n').map((v) => (v.trim() === 'unlimited' ? Infinity : Number(v)));
  return Number.isFinite(soft) || soft === Infinity ? { soft, hard } : undefined;
}

test('10,000 connections at once against one engine each get their echo; the count goes back to zero', async () => {
  const n = 10_000;
  // The server's process holds n descriptors (the clients run in a child, which holds n of its own).
  const need = n + 512;
  const limits = fdLimits();
  if (limits === undefined || limits.hard < need) {
    console.log(`  (skipped: 10,000 connections need RLIMIT_NOFILE >= ${need}; the hard limit here is ${limits?.hard ?? 'unknown'}: raise it with ulimit -Hn)`);
    return;
  }
  if (limits.soft < need) {
    // The hard limit allows it: raise this process's soft limit (children inherit it).
    const r = spawnSync('prlimit', ['--pid', String(process.pid), `--nofile=${need}:${limits.hard === Infinity ? 'unlimited' : limits.hard}`], { encoding: 'utf8' });
    if (r.status !== 0 || (fdLimits()?.soft ?? 0) < need) {
      console.log(`  (skipped: the soft RLIMIT_NOFILE is ${limits.soft} < ${need} and prlimit could not raise it: ${r.error?.message ?? r.stderr.trim()})`);
      return;
    }
  }
  const engine = await serve(echo, 'tcp://127.0.0.1:0', { backlog: 4096 });
  const [cmd, args] = nodeCommand([path.join(__dirname, 'fixtures', 'many-clients.js'), String(portOf(engine)), String(n), '500']);
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    let out = '';
    child.stdout.setEncoding('utf8');
    const echoed = new Promise<string>((resolve) => {
      child.stdout.on('data', (d: string) => {
        out += d;
        if (out.includes('\n')) resolve(out.trim());
      });
      void exited.then(() => resolve(out.trim()));
    });
    const line = await within(echoed, 90_000, '10,000 clients echoed');
    assert.is(line, `echoed ${n}`);
    await until(() => engine.countConnections() === n, 10_000, 'all 10,000 counted');
    assert.is(engine.stats().connections, n);
    child.stdin.write('close\n');
    assert.is(await within(exited, 20_000, 'the clients closing'), 0);
    await until(() => engine.countConnections() === 0, 30_000, 'all closed');
    assert.is(engine.stats().opened, n);
  } finally {
    child.kill();
    await engine.stop();
  }
});

test('edge-triggered with a small IO chunk echoes large payloads whole', async () => {
  const engine = await serve(echo, 'tcp://127.0.0.1:0', { edgeTriggered: true, edgeTriggeredIOChunk: 4096, readBufferCap: 1024, writeBufferCap: 512 });
  try {
    const port = portOf(engine);
    const big = Buffer.alloc(1 << 20);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
    const replies = await within(Promise.all([roundTrip(port, big), roundTrip(port, big.subarray(0, 100_000))]), 20000, 'edge-triggered echo');
    assert.ok(replies[0].equals(big));
    assert.ok(replies[1].equals(big.subarray(0, 100_000)));
  } finally {
    await engine.stop();
  }
});

test('socket options reach each connection: tcpNoDelay (default on), tcpKeepAlive, buffer sizes', async () => {
  const { getSocketOption } = socket;
  const seen: Record<string, number>[] = [];
  const handler: EventHandler = {
    onOpen(conn) {
      seen.push({
        noDelay: getSocketOption(conn.fd, 'noDelay'),
        keepAlive: getSocketOption(conn.fd, 'keepAlive'),
        recvBuffer: getSocketOption(conn.fd, 'recvBuffer'),
      });
      return Action.Close;
    },
  };
  // The peer sends nothing: onOpen closes without reading, and a close with unread data is a
  // reset (the kernel's), which the peer's read would report as ECONNRESET whenever its data
  // beats the accept (always under kqueue's waiter thread, sometimes on epoll).
  const connectUntilClosed = (port: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', reject);
      s.on('close', () => resolve());
      s.resume();
    });
  const plain = await serve(handler, 'tcp://127.0.0.1:0');
  try {
    await within(connectUntilClosed(portOf(plain)), 5000, 'plain closes');
  } finally {
    await plain.stop();
  }
  const tuned = await serve(handler, 'tcp://127.0.0.1:0', { tcpNoDelay: false, tcpKeepAlive: 30_000, socketRecvBuffer: 32 * 1024, socketSendBuffer: 32 * 1024 });
  try {
    await within(connectUntilClosed(portOf(tuned)), 5000, 'tuned closes');
  } finally {
    await tuned.stop();
  }
  assert.is(seen[0].noDelay, 1);
  assert.is(seen[0].keepAlive, 0);
  assert.is(seen[1].noDelay, 0);
  assert.is(seen[1].keepAlive, 1);
  assert.ok(seen[1].recvBuffer >= 32 * 1024 && seen[1].recvBuffer <= 64 * 1024 + 4096, String(seen[1].recvBuffer));
});

test('reusePort lets two engines listen on one port', async () => {
  const a = await serve(echo, 'tcp://127.0.0.1:0', { reusePort: true });
  let b: Engine | undefined;
  try {
    b = await serve(echo, `tcp://127.0.0.1:${portOf(a)}`, { reusePort: true });
    assert.is(portOf(b), portOf(a));
    assert.is((await roundTrip(portOf(a), 'shared')).toString(), 'shared');
  } finally {
    await b?.stop();
    await a.stop();
  }
});

test('src/server/ imports netpoll only through its public modules, and the core never imports the server', () => {
  const root = path.join(__dirname, '..', '..', '..', 'src');
  const serverDir = path.join(root, 'server');
  const files = (dir: string): string[] =>
    fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? files(path.join(dir, d.name)) : d.name.endsWith('.ts') ? [path.join(dir, d.name)] : []));
  const importsOf = (file: string): string[] =>
    [...fs.readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => path.resolve(path.dirname(file), m[1]));
  const allowed = new Set([path.join(root, 'index.js'), path.join(root, 'socket.js')]);
  const serverFiles = files(serverDir);
  assert.ok(serverFiles.length >= 8);
  for (const f of serverFiles) {
    for (const target of importsOf(f)) {
      const inside = target.startsWith(serverDir + path.sep);
      assert.ok(inside || allowed.has(target), `${path.relative(root, f)} imports ${path.relative(root, target)}`);
    }
  }
  for (const f of fs.readdirSync(root).filter((n) => n.endsWith('.ts') && n !== 'server.ts')) {
    for (const target of importsOf(path.join(root, f))) {
      assert.not.ok(target.startsWith(serverDir) || target === path.join(root, 'server.js'), `${f} imports the server`);
    }
  }
});

test.run();
