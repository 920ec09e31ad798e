// Engine.offer() and Engine.peer(): one loop's handler runs a task on another loop's thread
// (multicore state is per loop), and the server's own thread reaches every loop's tasks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as net from 'node:net';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Priority } from '../../src/index.js';
import { serve, type Engine } from '../../src/server.js';
import { within } from '../helpers.js';

const fixture = pathToFileURL(path.join(__dirname, 'fixtures', 'loop-peers.js'));
const portOf = (e: Engine): number => (e.address() as { port: number }).port;

function ask(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const s = net.connect(port, '127.0.0.1', () => s.write(`${line}\n`));
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      out += d;
      if (out.endsWith('\n')) s.end();
    });
    s.on('error', reject);
    s.on('close', () => resolve(out.trim()));
  });
}

test('multicore: loops know their index, run tasks for each other, and the server thread reaches them too', async () => {
  const engine = await within(serve(fixture, 'tcp://127.0.0.1:0', { multicore: true, numEventLoop: 2 }), 15000, 'two loop threads');
  try {
    assert.is(engine.loopIndex, -1);
    assert.is(engine.numEventLoop, 2);
    assert.throws(() => engine.offer({ x: () => 1 }), (e: { code?: string }) => e.code === 'ERR_INVALID_STATE');
    assert.throws(() => engine.peer(2), RangeError);
    const port = portOf(engine);
    // Round-robin: connection 0 on loop 0, connection 1 on loop 1.
    assert.is(await ask(port, 'hello'), 'loop 0/2 ERR_RESERVED_TASK');
    assert.is(await ask(port, 'hello'), 'loop 1/2 ERR_RESERVED_TASK');
    // Loop 0 adds to loop 1's total; loop 1 to its own; the state lives in loop 1 only.
    assert.is(await ask(port, 'ask 1 5'), 'from 0: 5');
    assert.is(await ask(port, 'ask 1 7'), 'from 1: 12');
    assert.is(await ask(port, 'ask 0 1'), 'from 0: 1');
    const remote = engine.peer<{ whoami: () => number; add: (n: number) => number }>(1);
    assert.is(engine.peer(1), remote, 'one RemotePoller per loop');
    assert.is(await remote.trigger(Priority.High, 'whoami'), 1);
    assert.is(await remote.trigger(Priority.High, 'add', 0), 12);
  } finally {
    await within(engine.stop(), 15000, 'stop');
  }
});

test('single-threaded: loop 0 of 1; offer() in onBoot only, peer(0) runs the tasks on this thread', async () => {
  const engine = await serve(
    {
      onBoot(e) {
        assert.throws(() => e.offer(null as never), TypeError);
        assert.throws(() => e.offer({ peers: () => 1 }), RangeError);
        assert.throws(() => e.peer(0), (err: { code?: string }) => err.code === 'ERR_INVALID_STATE');
        e.offer({ double: (n: number) => n * 2 });
      },
    },
    'tcp://127.0.0.1:0',
  );
  try {
    assert.is(engine.loopIndex, 0);
    assert.is(engine.numEventLoop, 1);
    assert.is(await engine.peer<{ double: (n: number) => number }>(0).trigger(Priority.Low, 'double', 21), 42);
    assert.throws(() => engine.offer({ again: () => 0 }), (e: { code?: string }) => e.code === 'ERR_INVALID_STATE');
  } finally {
    await engine.stop();
  }
  assert.throws(() => engine.peer(0), (e: { code?: string }) => e.code === 'ERR_INVALID_STATE', 'a stopped engine reaches no loop');
});

test('a server whose onBoot offers nothing: peer() says so', async () => {
  const engine = await serve({}, 'tcp://127.0.0.1:0');
  try {
    assert.throws(() => engine.peer(0), /offered no tasks|not introduced/);
  } finally {
    await engine.stop();
  }
});

test.run();
