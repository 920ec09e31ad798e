// multicore: loops in worker threads importing the handler module, connections handed out by
// the acceptor with the remote trigger under gnet's load balancers; stop() ends every thread.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as net from 'node:net';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { serve, type Engine } from '../../src/server.js';
import { within } from '../helpers.js';

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

test.run();
