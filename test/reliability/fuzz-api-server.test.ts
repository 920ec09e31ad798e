// API fuzz of netpoll/server: serve(), createClient() and dial() with hostile handlers,
// option objects and addresses (getters and Proxy traps that throw, revoked Proxies,
// numbers out of range, objects whose valueOf throws, any value fast-check makes), and
// every Conn method called from a handler with any argument (detached buffers,
// SharedArrayBuffer views, Proxies of buffers, huge and negative counts). Each call must
// succeed or fail with a TypeError, a RangeError, a SystemError or the caller's own
// error; nothing may crash, hang, leak an fd or stop the engine serving the others.
//
// NETPOLL_FUZZ_RUNS sets the runs per API (default 150 here divided by 3; `npm run fuzz`
// raises it).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as fc from 'fast-check';
import { createClient, serve, type Conn, type Engine } from '../../src/server.js';
import { isSystemError } from '../../src/index.js';
import { libkqueue, openFdCount, sleep, within } from '../helpers.js';
import { assertProperty, trapProcessFailures } from './support.js';

const RUNS = Math.max(10, Math.round(Number(process.env.NETPOLL_FUZZ_RUNS ?? 150) / 3));
const failures = trapProcessFailures();

/** What the fuzz's own getters and traps throw: passed through to the caller as it is. */
class CallerError extends Error {}

const OPTION_KEYS = [
  'readBufferCap', 'writeBufferCap', 'highWaterMark', 'lowWaterMark', 'edgeTriggered', 'edgeTriggeredIOChunk',
  'tcpNoDelay', 'tcpKeepAlive', 'socketRecvBuffer', 'socketSendBuffer', 'reuseAddr', 'reusePort',
  'idleTimeout', 'stopTimeout', 'multicore', 'numEventLoop', 'lb',
];

/**
 * A value made when the call is made (fast-check itself would trip over a Proxy it holds:
 * it asks values whether they have a clone method), named for the failure report.
 */
type Lazy = (() => unknown) & { toString(): string };
const lazy = (label: string, make: () => unknown): Lazy => Object.assign(make, { toString: () => label });
const plain = (v: unknown): Lazy => lazy(fc.stringify(v), () => v);

/** Values that are hostile to whoever reads them. */
const hostile: fc.Arbitrary<Lazy> = fc.oneof(
  fc.constant(lazy('throwing Proxy', () => new Proxy({}, { get() { throw new CallerError('get trap'); }, has() { throw new CallerError('has trap'); }, ownKeys() { throw new CallerError('ownKeys trap'); } }))),
  fc.constant(lazy('revoked Proxy', () => {
    const r = Proxy.revocable({}, {});
    r.revoke();
    return r.proxy;
  })),
  fc.constant(lazy('throwing valueOf', () => ({ valueOf() { throw new CallerError('valueOf'); }, toString() { throw new CallerError('toString'); } }))),
  fc.constant(lazy('throwing toPrimitive', () => ({ [Symbol.toPrimitive]() { throw new CallerError('toPrimitive'); } }))),
  fc.constantFrom(-1, -0, 0.5, NaN, Infinity, -Infinity, 2 ** 31, 2 ** 53, Number.MAX_VALUE, 1n, '', '0', 'x'.repeat(5000), null).map(plain),
  fc.constant(lazy('Symbol', () => Symbol('s'))),
  fc.constant(lazy('[]', () => [])),
  fc.constant(lazy('function', () => () => 1)),
  fc.anything({ maxDepth: 1 }).map(plain),
);

/** An options object: known keys with hostile values, as a plain object, a getter or a Proxy. */
const options: fc.Arbitrary<Lazy> = fc.oneof(
  fc.array(fc.tuple(fc.constantFrom(...OPTION_KEYS), fc.oneof(hostile, fc.integer({ min: -2, max: 1 << 20 }).map(plain), fc.boolean().map(plain), fc.constantFrom('round-robin', 'least-connections', 'source-addr-hash').map(plain))), { maxLength: 4 })
    .map((entries) => lazy(`{${entries.map(([k, v]) => `${k}: ${String(v)}`).join(', ')}}`, () => Object.fromEntries(entries.map(([k, v]) => [k, v()])))),
  fc.constantFrom(...OPTION_KEYS).map((key) => lazy(`a getter ${key} that throws`, () => Object.defineProperty({}, key, { enumerable: true, get() { throw new CallerError(`getter ${key}`); } }))),
  fc.constantFrom(...OPTION_KEYS).map((key) => lazy(`a Proxy whose ${key} throws`, () => new Proxy({}, { get: (_t, p) => { if (p === key) throw new CallerError(`trap ${key}`); return undefined; } }))),
  hostile,
  fc.constant(plain(undefined)),
);

const sockDir = path.join(os.tmpdir(), `netpoll-fuzz-server-${process.pid}`);

/** An address: well-formed ones on loopback (port 0 or a Unix path of ours), malformed ones, hostile values. */
const address: fc.Arbitrary<Lazy> = fc.oneof(
  fc.constantFrom('tcp://127.0.0.1:0', 'tcp4://127.0.0.1:0', 'tcp6://[::1]:0', 'tcp://localhost:0', `unix://${sockDir}-a.sock`, 'udp://127.0.0.1:0').map(plain),
  fc.constantFrom('tcp://', 'tcp://127.0.0.1', 'tcp://127.0.0.1:-1', 'tcp://127.0.0.1:65536', 'tcp://127.0.0.1:99999999999', 'tcp://127.0.0.1:0x10', 'tcp://[::1:0', 'tcp://1.2.3.4.5:0', 'unix://', 'unix://relative', `unix://${'/x'.repeat(100)}`, 'unix:///tmp/a\0b', 'ftp://127.0.0.1:0', '127.0.0.1:0', 'tcp://127.0.0.1:0/path', 'TCP://127.0.0.1:0').map(plain),
  fc.string({ maxLength: 30 }).map((s) => plain(`tcp://127.0.0.1:${s}`)),
  fc.string({ maxLength: 30 }).map(plain),
  hostile,
);

/** The errors a call may fail with: documented kinds, or what the caller's own code threw. */
function allowed(e: unknown): boolean {
  return e instanceof TypeError || e instanceof RangeError || e instanceof CallerError || isSystemError(e);
}

function describe(e: unknown): string {
  return e instanceof Error ? `${e.constructor.name} ${(e as { code?: string }).code ?? ''} ${e.message}` : String(e);
}

let fdsBefore = 0;

test('setup', async () => {
  // A first engine and client: what the process opens once, lazily, is not counted as a leak.
  const e = await serve({}, 'tcp://127.0.0.1:0');
  const c = await createClient({});
  await within(c.dial(`tcp://127.0.0.1:${(e.address() as { port: number }).port}`), 5000, 'dial');
  await c.stop();
  await e.stop();
  await sleep(20);
  fdsBefore = openFdCount();
});

test('serve() with any handler, address and options resolves (and stops) or fails with a TypeError, RangeError, SystemError or the caller\'s error', async () => {
  const handler: fc.Arbitrary<Lazy> = fc.oneof(fc.constant(lazy('{}', () => ({}))), fc.constant(lazy('echo', () => ({ onTraffic: (c: Conn) => void c.write(c.next()) }))), hostile, options);
  await assertProperty(
    fc.asyncProperty(handler, address, options, async (h, addr, opts) => {
      let engine: Engine | undefined;
      try {
        engine = await within(serve(h() as never, addr() as never, opts() as never), 10_000, 'serve');
      } catch (e) {
        if (!allowed(e)) throw new Error(`serve(${String(h)}, ${String(addr)}, ${String(opts)}) failed with ${describe(e)}`);
        return;
      }
      await within(engine.stop(), 10_000, 'stop');
    }),
    { numRuns: RUNS, endOnFailure: true },
  );
});

test('createClient() and dial() with any handler, options and address resolve or fail with a documented error; the client still stops', async () => {
  const target = await serve({ onTraffic: (c) => void c.write(c.next()) }, 'tcp://127.0.0.1:0');
  const port = (target.address() as { port: number }).port;
  try {
    const dialed: fc.Arbitrary<Lazy> = fc.oneof(address, fc.constant(plain(`tcp://127.0.0.1:${port}`)));
    await assertProperty(
      fc.asyncProperty(fc.oneof(fc.constant(lazy('{}', () => ({}))), hostile), options, dialed, async (h, opts, addr) => {
        let client;
        try {
          client = await within(createClient(h() as never, opts() as never), 10_000, 'createClient');
        } catch (e) {
          if (!allowed(e)) throw new Error(`createClient(${String(h)}, ${String(opts)}) failed with ${describe(e)}`);
          return;
        }
        try {
          const conn = await within(client.dial(addr() as never), 10_000, 'dial');
          conn.close();
        } catch (e) {
          if (!allowed(e)) throw new Error(`dial(${String(addr)}) failed with ${describe(e)}`);
        } finally {
          await within(client.stop(), 10_000, 'client stop');
        }
      }),
      { numRuns: RUNS, endOnFailure: true },
    );
  } finally {
    await target.stop();
  }
});

/** Arguments for Conn methods: counts, data, lists, hostile values. */
const connArg: fc.Arbitrary<() => unknown> = fc.oneof(
  hostile,
  fc.constantFrom(0, 1, 3, -1, -(2 ** 40), 2 ** 31, 2 ** 53, 2 ** 64, 1.5, NaN).map(plain),
  fc.constant(() => {
    const u = new Uint8Array(64);
    structuredClone(u.buffer, { transfer: [u.buffer] });
    return u; // detached
  }),
  fc.constant(() => new Uint8Array(new SharedArrayBuffer(32 << 10)).fill(0x53)),
  fc.constant(() => new Proxy(Buffer.from('proxy'), {})),
  fc.constant(() => new Proxy(Buffer.from('proxy'), { get() { throw new CallerError('buffer trap'); } })),
  fc.constant(() => Object.setPrototypeOf({ length: 4 }, Uint8Array.prototype)),
  fc.constant(() => [Buffer.from('a'), 'b', new Uint8Array(new SharedArrayBuffer(3))]),
  fc.constant(() => [Buffer.from('a'), 5]),
  fc.constant(() => new Proxy([Buffer.from('a')], { get(t, p) { if (p === '0') throw new CallerError('list trap'); return Reflect.get(t, p); } })),
  fc.constant(() => Object.defineProperty([Buffer.from('a')], 'length', { value: 2 ** 31, writable: true })),
  fc.constant(() => 'text ✓'),
  fc.constant(() => Buffer.alloc(40 << 10, 0x61)),
);
const METHODS = ['next', 'peek', 'discard', 'write', 'writev', 'asyncWrite', 'setIdleTimeout', 'flush', 'pause', 'resume', 'wake', 'close'] as const;

test('every Conn method, with any argument, from onTraffic returns or throws a documented error; the engine serves the next connection', async () => {
  const plan: { calls: Array<[(typeof METHODS)[number], () => unknown]>; bad: string[]; done: boolean } = { calls: [], bad: [], done: false };
  const engine = await serve({
    onTraffic(conn) {
      if (conn.peek(4).toString() === 'echo') return void conn.write(conn.next());
      // Once per connection: wake() and resume() would run the plan again, for ever.
      if (conn.context === 'done') return void conn.discard();
      conn.context = 'done';
      for (const [method, arg] of plan.calls) {
        try {
          const r = (conn[method] as (a: unknown) => unknown)(arg());
          if (r instanceof Promise) r.then((v) => typeof v === 'boolean' || plan.bad.push(`${method} resolved ${String(v)}`), (e) => plan.bad.push(`${method} rejected ${describe(e)}`));
        } catch (e) {
          if (!allowed(e)) plan.bad.push(`${method} threw ${describe(e)}`);
        }
      }
      plan.done = true;
      return undefined;
    },
  }, 'tcp://127.0.0.1:0', { idleTimeout: 200 });
  const port = (engine.address() as { port: number }).port;
  const talk = (data: string, wait: boolean): Promise<string> =>
    new Promise((resolve) => {
      let out = '';
      const s = net.connect(port, '127.0.0.1', () => s.write(data));
      s.on('data', (d) => {
        out += d.toString('latin1');
        if (!wait) s.end();
      });
      s.on('error', () => undefined);
      s.on('close', () => resolve(out));
      if (wait) setTimeout(() => s.destroy(), 5);
    });
  try {
    await assertProperty(
      fc.asyncProperty(fc.array(fc.tuple(fc.constantFrom(...METHODS), connArg), { minLength: 1, maxLength: 6 }), async (calls) => {
        plan.calls = calls;
        if (process.env.FUZZ_DEBUG) console.log(calls.map(([m, a]) => `${m}(${String(a)})`).join(' '));
        plan.bad = [];
        plan.done = false;
        await within(talk('go', true), 10_000, 'the hostile calls');
        assert.equal(plan.bad, []);
        assert.is(await within(talk('echo', false), 10_000, 'an echo after'), 'echo');
      }),
      { numRuns: RUNS, endOnFailure: true },
    );
  } finally {
    await within(engine.stop(), 10_000, 'stop');
  }
});

test('no unhandled rejection, uncaught exception or leaked fd after the fuzz', async () => {
  await sleep(50);
  assert.equal(failures.failures.filter((e) => !(e instanceof CallerError)), []);
  if (!libkqueue) {
    const end = Date.now() + 5000;
    while (openFdCount() > fdsBefore && Date.now() < end) await sleep(20);
    assert.ok(openFdCount() <= fdsBefore, `${openFdCount()} fds open, ${fdsBefore} before`);
  }
});

test.run();
