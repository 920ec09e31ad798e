// udp:// on netpoll/server: each datagram is one onTraffic on a Conn whose remoteAddress is the
// sender and whose write() answers it; driven by node:dgram and by socat (skipped when absent).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile, spawnSync } from 'node:child_process';
import * as dgram from 'node:dgram';
import { Action, serve, type Conn, type Engine, type EventHandler } from '../../src/server.js';
import { within } from '../helpers.js';

function portOf(engine: Engine): number {
  const a = engine.address();
  if (typeof a === 'string') throw new Error('not an IP engine');
  return a.port;
}

/** A dgram socket bound to loopback that collects what it receives. */
async function client(): Promise<{ s: dgram.Socket; port: number; next: () => Promise<string> }> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const queue: string[] = [];
  const waiting: ((m: string) => void)[] = [];
  s.on('message', (m) => {
    const w = waiting.shift();
    if (w) w(m.toString());
    else queue.push(m.toString());
  });
  return {
    s,
    port: s.address().port,
    next: () => within(queue.length ? Promise.resolve(queue.shift()!) : new Promise<string>((r) => waiting.push(r)), 5000, 'a reply datagram'),
  };
}

const send = (s: dgram.Socket, msg: string, port: number): Promise<void> =>
  new Promise((resolve, reject) => s.send(msg, port, '127.0.0.1', (e) => (e ? reject(e) : resolve())));

test('each datagram is an onTraffic whose write() answers its sender', async () => {
  const seen: { port: number; context: unknown; fd: number }[] = [];
  const unsupported: string[] = [];
  let kept: Conn | undefined;
  const handler: EventHandler = {
    onOpen: () => assert.unreachable('no onOpen for udp://'),
    onTraffic(conn: Conn) {
      seen.push({ port: conn.remoteAddress.port, context: conn.context, fd: conn.fd });
      kept = conn;
      conn.context = 'set';
      const head = conn.peek(3).toString();
      assert.is(conn.inboundBuffered, conn.peek().length);
      if (head === 'bad') throw new Error('a bad datagram');
      if (head === 'pau') {
        try {
          conn.pause();
        } catch (e) {
          unsupported.push((e as { code: string }).code);
        }
      }
      conn.discard(1);
      conn.writev([`${conn.remoteAddress.port}:`, conn.next()]);
      assert.is(conn.inboundBuffered, 0);
    },
  };
  const engine = await serve(handler, 'udp://127.0.0.1:0');
  const a = await client();
  const b = await client();
  try {
    const port = portOf(engine);
    await send(a.s, 'xhello', port);
    assert.is(await a.next(), `${a.port}:hello`);
    await send(b.s, 'yworld', port);
    assert.is(await b.next(), `${b.port}:world`);
    // A handler that throws costs that datagram only.
    await send(a.s, 'bad', port);
    await send(a.s, 'pause', port);
    assert.is(await a.next(), `${a.port}:ause`);
    assert.equal(unsupported, ['ERR_UNSUPPORTED_OPERATION']);
    assert.is(engine.stats().handlerErrors, 1);
    assert.is(engine.countConnections(), 0);
    assert.ok(seen.every((s) => s.context === undefined), 'each datagram is a Conn of its own');
    assert.equal(seen.map((s) => s.port), [a.port, b.port, a.port, a.port]);
  } finally {
    a.s.close();
    b.s.close();
    await within(engine.stop(), 5000, 'stop()');
  }
  // stop() closed the socket: its port can be bound again, and a Conn kept past its handler
  // call sends nothing (its fd number may be reused by then).
  assert.is(kept!.write('late'), false);
  assert.is(await kept!.asyncWrite('late'), false);
  assert.is(kept!.peek().length, 0, 'the bytes were only valid in the handler call');
  const again = await serve({}, `udp://127.0.0.1:${portOf(engine)}`);
  await again.stop();
});

test('Action.Shutdown from a datagram stops the engine; udp:// refuses multicore', async () => {
  let shutdown = 0;
  let stopped!: () => void;
  const done = new Promise<void>((r) => (stopped = r));
  const engine = await serve(
    {
      onTraffic: (conn) => (conn.next().toString() === 'stop' ? Action.Shutdown : Action.None),
      onShutdown: () => {
        shutdown++;
        stopped();
      },
    },
    'udp://127.0.0.1:0',
  );
  const a = await client();
  try {
    await send(a.s, 'stop', portOf(engine));
    await within(done, 5000, 'onShutdown');
    assert.is(shutdown, 1);
  } finally {
    a.s.close();
    await engine.stop();
  }
  let err: unknown;
  try {
    await serve(new URL('file:///nonexistent.js'), 'udp://127.0.0.1:0', { multicore: true });
  } catch (e) {
    err = e;
  }
  assert.instance(err, TypeError);
});

test('socat as the client', async () => {
  if (spawnSync('sh', ['-c', 'command -v socat']).status !== 0) {
    console.log('  (socat not installed: skipped)');
    return;
  }
  const engine = await serve({ onTraffic: (conn) => void conn.write(conn.next().toString().toUpperCase()) }, 'udp://127.0.0.1:0');
  try {
    const out = await within(
      new Promise<string>((resolve, reject) => {
        const child = execFile('socat', ['-t', '2', '-', `UDP:127.0.0.1:${portOf(engine)}`], { timeout: 20000 }, (e, stdout, stderr) =>
          e ? reject(new Error(`socat: ${e.message}\n${stderr}`)) : resolve(stdout),
        );
        child.stdin!.end('hello over udp\n');
      }),
      25000,
      'socat',
    );
    assert.is(out, 'HELLO OVER UDP\n');
  } finally {
    await engine.stop();
  }
});

test.run();
