// Model-based property test of netpoll/server: random sequences of open, peer write, server
// write (write, writev, a string, asyncWrite), pause, resume, wake, close, peer end, peer
// reset, setIdleTimeout, handlers that throw or return garbage, and a final stop() (from
// outside, or re-entrantly from onTraffic), against real loopback TCP connections from
// node:net. A model says what each peer must receive, what the handler must be given,
// and which onClose calls (with which error) must happen; a `sync` step waits until the
// kernel has carried every byte the model expects.
//
// Bounded in `npm test` (NETPOLL_MODEL_RUNS / 10 sequences of at most NETPOLL_MODEL_STEPS
// steps: 100 x 12 by default); `npm run fuzz` raises both. A failure prints fast-check's
// seed and path; replay with NETPOLL_MODEL_SEED=<seed> NETPOLL_MODEL_PATH=<path>.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as fc from 'fast-check';
import { Action, serve, type Conn, type Engine } from '../../src/server.js';
import { libkqueue, openFdCount, sleep, within } from '../helpers.js';
import { assertProperty, trapProcessFailures } from './support.js';

const RUNS = Math.max(1, Math.round(Number(process.env.NETPOLL_MODEL_RUNS ?? 1000) / 10));
const STEPS = Number(process.env.NETPOLL_MODEL_STEPS ?? 12);
const SEED = process.env.NETPOLL_MODEL_SEED === undefined ? undefined : Number(process.env.NETPOLL_MODEL_SEED);
const PATH = process.env.NETPOLL_MODEL_PATH;
const DEADLINE_MS = 5000;

const process_ = trapProcessFailures();

/** What a handler's onTraffic returns once: benign values change nothing, hostile ones close the connection with their error. */
const GARBAGE = {
  string: () => 'close',
  number: () => 42,
  object: () => ({ action: Action.Close }),
  resolved: () => Promise.resolve(Action.None),
  thenable: () => ({ then: (ok: (v: unknown) => void) => ok(Action.None) }),
  emptyProxy: () => new Proxy({}, {}),
  throwingGetter: () => ({ get then(): never { throw new Error('then getter'); } }),
  throwingProxy: () => new Proxy({}, { get(): never { throw new Error('proxy trap'); } }),
  revokedProxy: () => {
    const r = Proxy.revocable({}, {});
    r.revoke();
    return r.proxy;
  },
  rejected: () => Promise.reject(new Error('rejected')),
} as const;
type Garbage = keyof typeof GARBAGE;
const HOSTILE: ReadonlySet<Garbage> = new Set(['throwingGetter', 'throwingProxy', 'revokedProxy', 'rejected']);

type Cmd =
  | { op: 'open' }
  | { op: 'peerWrite'; i: number; n: number }
  | { op: 'srvWrite'; i: number; n: number; how: 'write' | 'writev' | 'string' | 'async' }
  | { op: 'pause' | 'resume' | 'wake' | 'close' | 'peerEnd' | 'peerReset' | 'throw' | 'returnClose'; i: number }
  | { op: 'garbage'; i: number; kind: Garbage }
  | { op: 'idle'; i: number; ms: 0 | 15 | 60000 }
  | { op: 'tick' }
  | { op: 'sync' };

/** The model of one connection. */
interface M {
  id: number;
  client: net.Socket;
  conn: Conn;
  /** Bytes the peer sent, and what onTraffic was given. */
  sent: number;
  got: Buffer[];
  gotLen: number;
  /** Bytes the server queued, and what the peer received. */
  expectOut: Buffer[];
  expectLen: number;
  recv: Buffer[];
  recvLen: number;
  paused: boolean;
  wakePending: boolean;
  /** The server stopped reading (close(), Action.Close). */
  serverClosing: boolean;
  /** What the next onTraffic does instead of reading. */
  armed: 'throw' | 'close' | 'stop' | Garbage | undefined;
  /** The error onClose must get (a throw, a hostile return value). */
  mustErr: Error | string | undefined;
  /** Closes without an error cannot be promised: a reset, an idle timeout, a hostile value. */
  errAllowed: boolean;
  reset: boolean;
  closes: Array<Error | undefined>;
  clientClosed: boolean;
  violations: string[];
}

const pattern = (seed: number, n: number): Buffer => {
  const b = Buffer.allocUnsafe(n);
  for (let k = 0; k < n; k++) b[k] = ((seed + k) * 7 + ((seed + k) >> 8)) & 0xff;
  return b;
};

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 5, arbitrary: fc.constant({ op: 'open' } as const) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('peerWrite' as const), i: fc.nat(7), n: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 200_000 })) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('srvWrite' as const),
      i: fc.nat(7),
      n: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 300_000 })),
      how: fc.constantFrom('write' as const, 'writev' as const, 'string' as const, 'async' as const),
    }),
  },
  { weight: 6, arbitrary: fc.record({ op: fc.constantFrom('pause' as const, 'resume' as const, 'wake' as const, 'close' as const, 'peerEnd' as const, 'peerReset' as const, 'throw' as const, 'returnClose' as const), i: fc.nat(7) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('garbage' as const), i: fc.nat(7), kind: fc.constantFrom(...(Object.keys(GARBAGE) as Garbage[])) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('idle' as const), i: fc.nat(7), ms: fc.constantFrom(0 as const, 15 as const, 60000 as const) }) },
  { weight: 2, arbitrary: fc.constant({ op: 'tick' } as const) },
  { weight: 2, arbitrary: fc.constant({ op: 'sync' } as const) },
);

async function until(cond: () => boolean, what: () => string): Promise<void> {
  const end = Date.now() + DEADLINE_MS;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`not within ${DEADLINE_MS} ms: ${what()}`);
    await sleep(2);
  }
}

/** What each open fd is, for a leak's report. */
function fdList(): string {
  return fs.readdirSync('/proc/self/fd').map((n) => {
    try {
      return `${n}=${fs.readlinkSync(`/proc/self/fd/${n}`)}`;
    } catch {
      return `${n}=?`;
    }
  }).join(' ');
}

/** What the runs did, printed at the end: a property that checks nothing passes too. */
const totals = { sequences: 0, steps: 0, connections: 0, bytes: 0 };

const isOpen = (m: M): boolean => m.closes.length === 0;

async function runSequence(cmds: Cmd[], stopInHandler: boolean, highWaterMark: number, checkFds = true): Promise<void> {
  const fdsBefore = openFdCount();
  const models: M[] = [];
  const byConn = new Map<Conn, M>();
  const waiting = new Map<number, (c: Conn) => void>();
  const early = new Map<number, Conn>();
  const stray: string[] = [];
  let shutdowns = 0;
  let engine!: Engine;
  let stopping: Promise<void> | undefined;
  engine = await serve({
    onOpen(conn) {
      const port = conn.remoteAddress.port;
      const w = waiting.get(port);
      // The accept may come before the peer's 'connect' event.
      if (w === undefined) early.set(port, conn);
      else {
        waiting.delete(port);
        w(conn);
      }
    },
    onTraffic(conn) {
      const m = byConn.get(conn);
      if (m === undefined) return void stray.push('onTraffic for an unknown conn');
      if (!isOpen(m)) m.violations.push('onTraffic after onClose');
      if (m.paused) m.violations.push('onTraffic while paused');
      m.wakePending = false;
      const data = conn.next();
      if (data.length > 0) {
        m.got.push(Buffer.from(data));
        m.gotLen += data.length;
      }
      const armed = m.armed;
      m.armed = undefined;
      if (armed === 'throw') {
        const e = new Error(`thrown for ${m.id}`);
        m.mustErr = e;
        throw e;
      }
      if (armed === 'close') {
        m.serverClosing = true;
        return Action.Close;
      }
      if (armed === 'stop') {
        stopping = engine.stop();
        if (engine.stop() !== stopping) m.violations.push('a second stop() gave another promise');
        return undefined;
      }
      if (armed !== undefined) {
        // A rejection lands a microtask later: by then the connection may have closed
        // otherwise (a stop() from another handler in the same turn), and onClose had no error.
        if (armed === 'rejected') m.errAllowed = true;
        else if (HOSTILE.has(armed)) m.mustErr = armed === 'revokedProxy' ? 'revoked' : armed === 'throwingGetter' ? 'then getter' : 'proxy trap';
        return GARBAGE[armed]() as never;
      }
      return undefined;
    },
    onClose(conn, err) {
      const m = byConn.get(conn);
      if (m === undefined) return void stray.push('onClose for an unknown conn');
      m.closes.push(err);
    },
    onShutdown() {
      shutdowns++;
    },
  }, 'tcp://127.0.0.1:0', { highWaterMark, stopTimeout: 4000 });
  const port = (engine.address() as { port: number }).port;
  const pick = (i: number): M | undefined => (models.length === 0 ? undefined : models[i % models.length]);
  const serverWrite = (m: M, bytes: Buffer, how: string): void => {
    if (m.conn.closed) {
      // Nothing is queued on a closing connection; write says so.
      if (m.conn.write(bytes) !== false) m.violations.push('write on a closing conn returned true');
      return;
    }
    if (how === 'write') m.conn.write(bytes);
    else if (how === 'writev') m.conn.writev([bytes.subarray(0, bytes.length >> 1), bytes.subarray(bytes.length >> 1)]);
    else if (how === 'string') {
      bytes = Buffer.from(bytes.toString('latin1').replace(/[^\x20-\x7e]/g, 'x'), 'latin1');
      m.conn.write(bytes.toString('latin1'));
    } else {
      void m.conn.asyncWrite(bytes).then((ok) => {
        if (ok !== true && ok !== false) m.violations.push(`asyncWrite resolved with ${String(ok)}`);
      });
    }
    m.expectOut.push(bytes);
    m.expectLen += bytes.length;
  };
  const trace: string[] = [];
  try {
    for (const cmd of cmds) {
      trace.push(JSON.stringify(cmd));
      if (cmd.op === 'open') {
        if (models.length >= 8) continue;
        const client = net.connect(port, '127.0.0.1');
        client.on('error', () => undefined);
        await new Promise<void>((resolve, reject) => {
          client.once('connect', resolve);
          client.once('error', reject);
        });
        const conn = early.get(client.localPort!) ?? (await new Promise<Conn>((resolve) => waiting.set(client.localPort!, resolve)));
        early.delete(client.localPort!);
        const m: M = {
          id: models.length, client, conn, sent: 0, got: [], gotLen: 0, expectOut: [], expectLen: 0, recv: [], recvLen: 0,
          paused: false, wakePending: false, serverClosing: false, armed: undefined, mustErr: undefined, errAllowed: false,
          reset: false, closes: [], clientClosed: false, violations: [],
        };
        client.on('data', (d: Buffer) => {
          m.recv.push(d);
          m.recvLen += d.length;
        });
        client.on('close', () => (m.clientClosed = true));
        byConn.set(conn, m);
        models.push(m);
        continue;
      }
      if (cmd.op === 'tick') {
        await sleep(1);
        continue;
      }
      if (cmd.op === 'sync') {
        await until(
          () => models.every((m) => m.reset || !isOpen(m) || ((m.paused || m.serverClosing || m.gotLen === m.sent) && m.recvLen === m.expectLen && (m.paused || !m.wakePending))),
          () => models.map((m) => `#${m.id}: got ${m.gotLen}/${m.sent}, recv ${m.recvLen}/${m.expectLen}, paused ${m.paused}, wake ${m.wakePending}, closes ${m.closes.length}`).join('; '),
        );
        continue;
      }
      const m = pick(cmd.i);
      if (m === undefined) continue;
      switch (cmd.op) {
        case 'peerWrite':
          if (m.reset || m.client.writableEnded) break;
          m.client.write(pattern(m.sent, cmd.n));
          m.sent += cmd.n;
          break;
        case 'srvWrite':
          serverWrite(m, pattern(m.expectLen + 1, cmd.n), cmd.how);
          break;
        case 'pause':
          m.conn.pause();
          if (isOpen(m)) {
            m.paused = true;
            m.wakePending = false; // a wake queued before runs while paused: no call
          }
          break;
        case 'resume':
          m.conn.resume();
          m.paused = false;
          break;
        case 'wake':
          m.conn.wake();
          if (!m.conn.closed && !m.paused) m.wakePending = true;
          break;
        case 'close':
          m.conn.close();
          m.serverClosing = true;
          break;
        case 'peerEnd':
          if (!m.reset) m.client.end();
          break;
        case 'peerReset':
          if (!m.reset && !m.clientClosed) {
            m.reset = true;
            m.errAllowed = true;
            // Node's resetAndDestroy() after end() fails with EINVAL and never emits 'close'.
            if (m.client.writableEnded) m.client.destroy();
            else m.client.resetAndDestroy();
          }
          break;
        case 'throw':
        case 'returnClose':
        case 'garbage':
          if (m.armed === undefined && !m.conn.closed) {
            m.armed = cmd.op === 'garbage' ? cmd.kind : cmd.op === 'throw' ? 'throw' : 'close';
            m.conn.wake();
            if (!m.paused) m.wakePending = true;
          }
          break;
        case 'idle':
          m.conn.setIdleTimeout(cmd.ms);
          if (cmd.ms === 15) m.errAllowed = true;
          break;
      }
    }
    trace.push('stop');
    totals.sequences++;
    totals.steps += cmds.length;
    totals.connections += models.length;
    for (const m of models) totals.bytes += m.sent + m.expectLen;
    // The last step: stop(), from outside or re-entrantly from onTraffic.
    const host = stopInHandler ? models.find((m) => isOpen(m) && !m.paused && !m.conn.closed && m.armed === undefined) : undefined;
    if (host !== undefined) {
      host.armed = 'stop';
      host.conn.wake();
      await until(() => stopping !== undefined || !isOpen(host), () => 'the handler to call stop()');
    }
    stopping ??= engine.stop();
    if (engine.stop() !== stopping) throw new Error('stop() gave another promise');
    await within(stopping, DEADLINE_MS * 2, 'stop()');
    assert.is(shutdowns, 1, 'onShutdown once');
    assert.is(engine.countConnections(), 0, 'no connection left');
    assert.equal(stray, []);
    assert.is(early.size, 0, 'every onOpen was for a peer of ours');
    await until(() => models.every((m) => m.clientClosed), () => `peers still open: ${models.filter((m) => !m.clientClosed).map((m) => m.id)}`);
    for (const m of models) {
      const at = `conn #${m.id}`;
      assert.equal(m.violations, [], at);
      assert.is(m.closes.length, 1, `${at}: onClose once`);
      const err = m.closes[0];
      const got = Buffer.concat(m.got);
      assert.ok(got.equals(pattern(0, m.sent).subarray(0, got.length)), `${at}: onTraffic saw what the peer sent, in order`);
      if (m.reset) continue;
      const recv = Buffer.concat(m.recv);
      const expected = Buffer.concat(m.expectOut);
      // The peer gets everything the server queued, unless the connection closed abruptly,
      // or with the peer's bytes unread (the kernel answers those with a reset).
      const exact = m.mustErr === undefined && !m.errAllowed && m.gotLen === m.sent && err === undefined;
      if (exact) assert.ok(recv.equals(expected), `${at}: the peer received ${recv.length} of the ${expected.length} bytes queued, or other bytes`);
      else assert.ok(expected.subarray(0, recv.length).equals(recv), `${at}: the peer received bytes that were not queued`);
      if (m.mustErr instanceof Error) assert.is(err, m.mustErr, `${at}: onClose got the error thrown`);
      else if (typeof m.mustErr === 'string') assert.ok(err instanceof Error && err.message.includes(m.mustErr === 'revoked' ? 'revoked' : m.mustErr), `${at}: onClose got ${String(err)}, not the ${m.mustErr} error`);
      else if (!m.errAllowed && m.gotLen === m.sent) assert.is(err, undefined, `${at}: an orderly close, not ${String(err)}`);
    }
    if (checkFds && !libkqueue) await until(() => openFdCount() <= fdsBefore, () => `fds: ${openFdCount()} open, ${fdsBefore} before: ${fdList()}`);
  } catch (e) {
    (e as Error).message += `\n    steps: ${trace.join(' ')}`;
    throw e;
  } finally {
    for (const m of models) m.client.destroy();
    await within(engine.stop(), DEADLINE_MS, 'stop() after a failure').catch(() => undefined);
  }
}

let failuresBefore = 0;

test('warm-up: a first engine and connection (what the process opens once, lazily, is not counted as a leak)', async () => {
  failuresBefore = process_.failures.length;
  await runSequence([{ op: 'open' }, { op: 'peerWrite', i: 0, n: 10 }, { op: 'srvWrite', i: 0, n: 10, how: 'async' }, { op: 'sync' }], false, 1024, false);
});

test(`random open/write/pause/resume/wake/close/reset/idle/throw/garbage/stop sequences on a server match the model (${RUNS} runs, ≤${STEPS} steps)`, async () => {
  await assertProperty(
    fc.asyncProperty(fc.array(cmdArb, { maxLength: STEPS, size: 'max' }), fc.boolean(), fc.constantFrom(1024, 64 * 1024), async (cmds, stopInHandler, hwm) => {
      await runSequence([{ op: 'open' }, { op: 'open' }, ...cmds], stopInHandler, hwm);
    }),
    { numRuns: RUNS, seed: SEED, path: PATH, endOnFailure: true },
  );
  console.log(`  (${totals.sequences} sequences, ${totals.steps} steps, ${totals.connections} connections, ${totals.bytes} bytes queued either way)`);
});

test('no unhandled rejection or uncaught exception after the model runs', async () => {
  await sleep(20);
  // Only since this file's first test: the waiter-thread test runs other files' before it.
  assert.equal(process_.failures.slice(failuresBefore), []);
});

test.run();
