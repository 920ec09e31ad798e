// netpoll/server's output path: the outbound queue (slabs, reused slots, strings written
// straight into slabs) against a model, and, with real sockets, mixed writes that come out
// whole and in order through short writes, and writes from one connection's handler to
// others (settled after that handler returns).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as net from 'node:net';
import { OutboundBuffer, SlabPool } from '../../src/server/buffer/outbound.js';
import { serve, type Conn, type Engine } from '../../src/server.js';
import { within } from '../helpers.js';

function portOf(engine: Engine): number {
  const a = engine.address();
  if (typeof a === 'string') throw new Error('not a TCP engine');
  return a.port;
}

/** A small deterministic generator, so that a failure can be replayed. */
function generator(seed: number): (n: number) => number {
  let s = seed;
  return (n) => {
    s = (Math.imul(s, 1103515245) + 12345) & 0x7fffffff;
    return s % n;
  };
}

const PIECES = ['y', 'é', '€', '😀', '\ud800', 'ab\r\n', '+OK\r\n'];

test('the outbound queue holds exactly what was pushed, in order, through consumes, clears and slot reuse', () => {
  for (let trial = 0; trial < 400; trial++) {
    const rnd = generator(trial + 1);
    const pool = new SlabPool(1 + rnd(80), 4);
    const out = new OutboundBuffer(pool);
    let model = Buffer.alloc(0);
    let counter = 0;
    for (let step = 0; step < 80; step++) {
      const op = rnd(6);
      if (op < 2) {
        const b = Buffer.alloc(rnd(200));
        for (let i = 0; i < b.length; i++) b[i] = counter++ & 0xff;
        out.push(b, rnd(2) === 0);
        model = Buffer.concat([model, b]);
      } else if (op < 4) {
        // Short and long, ASCII and not (a lone surrogate included): what Buffer.from makes of it.
        let s = '';
        for (let i = 0, n = rnd(4) === 0 ? rnd(150) : rnd(12); i < n; i++) s += rnd(4) === 0 ? PIECES[rnd(PIECES.length)] : 'x';
        s += String(counter++);
        out.pushString(s);
        model = Buffer.concat([model, Buffer.from(s)]);
      } else if (op === 4 && model.length > 0) {
        const n = rnd(model.length + 1);
        out.consume(n);
        model = model.subarray(n);
      } else if (rnd(8) === 0) {
        out.clear();
        model = Buffer.alloc(0);
      }
      assert.is(out.length, model.length);
      assert.equal(Buffer.concat(out.iovecs(1024)), model, `trial ${trial}, step ${step}`);
      if (out.chunks === 1) {
        // What the loop writes with one write() and an offset.
        assert.equal(out.firstChunk.subarray(out.firstStart, out.firstStart + out.length), model);
      }
    }
  }
});

test('a written buffer is not changed by what the caller does to its own buffer afterwards', () => {
  const out = new OutboundBuffer(new SlabPool(64));
  const scratch = Buffer.from('first');
  out.push(scratch, false);
  scratch.write('XXXXX');
  out.pushString('+OK\r\n');
  assert.is(Buffer.concat(out.iovecs(1024)).toString(), 'first+OK\r\n');
});

test('mixed writes (strings of every kind, small and large buffers) arrive whole and in order through short writes', async () => {
  const rnd = generator(7);
  const parts: (string | Buffer)[] = [];
  for (let i = 0; i < 3000; i++) {
    const kind = rnd(4);
    if (kind === 0) parts.push(`:${i}\r\n`);
    else if (kind === 1) parts.push(`${PIECES[rnd(PIECES.length)].repeat(1 + rnd(30))}${i}`);
    else if (kind === 2) parts.push(Buffer.alloc(1 + rnd(40), i & 0xff));
    else parts.push(Buffer.alloc(rnd(3) === 0 ? 5000 : 300, (i * 7) & 0xff));
  }
  const expected = Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));
  // A small slab and send buffer: many slabs per turn, short writes, writev of many chunks.
  const engine = await serve(
    {
      onTraffic(conn) {
        conn.discard();
        for (let i = 0; i < parts.length; i += 3) conn.writev(parts.slice(i, i + 3));
        conn.close();
      },
    },
    'tcp://127.0.0.1:0',
    { writeBufferCap: 256, socketSendBuffer: 4096, highWaterMark: 64 * 1024 * 1024 },
  );
  try {
    const got = await within(
      new Promise<Buffer>((resolve, reject) => {
        const chunks: Buffer[] = [];
        const s = net.connect(portOf(engine), '127.0.0.1', () => s.write('go'));
        s.on('data', (d) => {
          chunks.push(d);
          // A slow reader, so the server's writes come back short.
          s.pause();
          setTimeout(() => s.resume(), 1);
        });
        s.on('error', reject);
        s.on('close', () => resolve(Buffer.concat(chunks)));
      }),
      20_000,
      'the mixed writes',
    );
    assert.is(got.length, expected.length);
    assert.ok(got.equals(expected), 'the bytes differ');
  } finally {
    await engine.stop();
  }
});

test("writes to other connections from one connection's onTraffic go out (a broadcast), and the writer's own too", async () => {
  const conns = new Set<Conn>();
  const engine = await serve(
    {
      onOpen(conn) {
        conns.add(conn);
      },
      onClose(conn) {
        conns.delete(conn);
      },
      onTraffic(conn) {
        const line = conn.next();
        for (const c of conns) c.write(line);
      },
    },
    'tcp://127.0.0.1:0',
  );
  const sockets: net.Socket[] = [];
  try {
    const received = new Map<net.Socket, string>();
    for (let i = 0; i < 5; i++) {
      const s = await new Promise<net.Socket>((resolve, reject) => {
        const sock = net.connect(portOf(engine), '127.0.0.1', () => resolve(sock));
        sock.once('error', reject);
      });
      received.set(s, '');
      s.on('data', (d) => received.set(s, received.get(s)! + d.toString()));
      sockets.push(s);
    }
    await within(
      (async () => {
        while (engine.countConnections() < 5) await new Promise((r) => setTimeout(r, 5));
      })(),
      5000,
      'five connections',
    );
    sockets[2].write('hello all\n');
    await within(
      (async () => {
        while ([...received.values()].some((v) => v !== 'hello all\n')) await new Promise((r) => setTimeout(r, 5));
      })(),
      5000,
      'the broadcast on every connection',
    );
  } finally {
    for (const s of sockets) s.destroy();
    await engine.stop();
  }
});

test.run();
