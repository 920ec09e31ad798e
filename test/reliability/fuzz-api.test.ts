// API fuzz: every exported function and Poller method called with random JS values
// (and on random receivers): what comes out is a value, a TypeError/RangeError, a
// SystemError, ErrPollerClosed, one of the documented state errors, or the caller's
// own thrown value, within a bounded time; never a crash, an abort or a hang.
//
// NETPOLL_FUZZ_RUNS sets the runs per API (default 150; `npm run fuzz` raises it).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as fc from 'fast-check';
import * as netpoll from '../../src/index.js';
import { ErrEngineShutdown, ErrPollerClosed, Poller, PollEvent, close, openPoller, pipe, write } from '../../src/index.js';
import { openFdCount, sleep } from '../helpers.js';
import { assertProperty, trapProcessFailures } from './support.js';

const RUNS = Number(process.env.NETPOLL_FUZZ_RUNS ?? 150);
const SETTLE_MS = 2000;

/** What the fuzz's own callbacks and getters throw: the caller's error, passed through. */
class CallerError extends Error {}

const socketDir = fs.mkdtempSync(path.join(os.tmpdir(), 'netpoll-fuzz-'));
let socketSerial = 0;

/** A value made at call time (fds and pollers must be fresh, and closed ones checked still closed). */
class Special {
  constructor(readonly kind: SpecialKind) {}
  toString(): string {
    return `<${this.kind}>`;
  }
}

const SPECIAL_KINDS = [
  'liveReadFd',
  'liveWriteFd',
  'closedFd',
  'pollerFd',
  'hugeFd',
  'detachedArrayBuffer',
  'detachedView',
  'sharedArrayBuffer',
  'sharedView',
  'bigBuffer',
  'float64Array',
  'dataView',
  'revokedProxy',
  'throwingGetters',
  'abortedSignal',
  'abortedOptions',
  'batchOptions',
  'okCallback',
  'stopCallback',
  'throwingCallback',
  'weirdReturnCallback',
  'openPoller',
  'closedPoller',
  'loopbackHost',
  'refusedPort',
] as const;
type SpecialKind = (typeof SPECIAL_KINDS)[number];

/** Per-run resources; everything made is released after the run. */
class Context {
  readonly live = pipe();
  readonly poller = openPoller();
  readonly closedPoller = openPoller();
  readonly made: Array<() => void> = [];
  readonly pending: Array<Promise<unknown>> = [];
  readonly #made = new Set<number>();

  constructor(readonly refusedPort: number) {
    this.closedPoller.close();
    // Something for polling and iteration to deliver quickly.
    this.poller.addRead({ fd: this.live[0], callback: () => undefined });
    write(this.live[1], Buffer.from('ready'));
  }

  /** A fresh Unix socket path in this test's private directory. */
  socketPath(): string {
    return path.join(socketDir, `s${++socketSerial}.sock`);
  }

  /** A number that is no open fd now: a just-closed one if still free, else one far above the limit. */
  closedFd(): number {
    const [r, w] = pipe();
    close(r);
    close(w);
    return isOpen(r) ? 999_999 : r;
  }

  /**
   * `v`, unless it is the number of an open fd that is not this run's: reading, writing
   * or closing node's own descriptors (libuv's) would break node, not test netpoll.
   */
  safeFd(v: unknown): unknown {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0x7fffffff) return v;
    if (v === this.live[0] || v === this.live[1] || v === this.poller.fd || this.#made.has(v) || !isOpen(v)) return v;
    return this.closedFd();
  }

  make(s: Special): unknown {
    switch (s.kind) {
      case 'liveReadFd':
        return this.live[0];
      case 'liveWriteFd':
        return this.live[1];
      case 'closedFd':
        return this.closedFd();
      case 'pollerFd':
        return this.poller.fd;
      case 'hugeFd':
        return 0x7fffffff;
      case 'detachedArrayBuffer': {
        const ab = new ArrayBuffer(16);
        structuredClone(ab, { transfer: [ab] });
        return ab;
      }
      case 'detachedView': {
        const u = new Uint8Array(16);
        structuredClone(u.buffer, { transfer: [u.buffer] });
        return u;
      }
      case 'sharedArrayBuffer':
        return new SharedArrayBuffer(8);
      case 'sharedView':
        return new Uint8Array(new SharedArrayBuffer(8));
      case 'bigBuffer':
        return Buffer.alloc(1 << 20, 1);
      case 'float64Array':
        return new Float64Array(3);
      case 'dataView':
        return new DataView(new ArrayBuffer(5), 1, 3);
      case 'revokedProxy': {
        const { proxy, revoke } = Proxy.revocable({}, {});
        revoke();
        return proxy;
      }
      case 'throwingGetters':
        return {
          get fd(): number {
            throw new CallerError('fd getter');
          },
          get callback(): never {
            throw new CallerError('callback getter');
          },
          get signal(): never {
            throw new CallerError('signal getter');
          },
          get batch(): never {
            throw new CallerError('batch getter');
          },
        };
      case 'abortedSignal':
        return AbortSignal.abort(new CallerError('aborted'));
      case 'abortedOptions':
        return { signal: AbortSignal.abort(new CallerError('aborted')) };
      case 'batchOptions':
        return { batch: true };
      case 'okCallback':
        return () => undefined;
      case 'stopCallback':
        return () => ErrEngineShutdown;
      case 'throwingCallback':
        return () => {
          throw new CallerError('callback threw');
        };
      case 'weirdReturnCallback': {
        const { proxy, revoke } = Proxy.revocable({}, {});
        revoke();
        return () => proxy; // the loop inspects what a callback returns
      }
      case 'openPoller': {
        const p = openPoller();
        this.made.push(() => p.close());
        return p;
      }
      case 'closedPoller':
        return this.closedPoller;
      case 'loopbackHost':
        return '127.0.0.1';
      case 'refusedPort':
        return this.refusedPort;
    }
  }

  /** Replaces Specials (also inside plain arrays and objects made by the arbitraries) with real values. */
  resolve(v: unknown, depth = 0): unknown {
    if (v instanceof Special) return this.make(v);
    if (depth > 1 || v === null || typeof v !== 'object') return v;
    if (Array.isArray(v)) return v.map((x) => this.resolve(x, depth + 1));
    if (Object.getPrototypeOf(v) === Object.prototype) {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = this.resolve(x, depth + 1);
      return out;
    }
    return v;
  }

  /** Releases whatever a call may have created: returned fds and pollers. */
  adopt(result: unknown): void {
    if (result instanceof Poller) this.made.push(() => result.close());
    else if (Array.isArray(result) && result.length === 2 && result.every((x) => typeof x === 'number')) {
      // The fds of a new pipe() or socketpair().
      for (const fd of result as number[]) this.#made.add(fd);
      this.made.push(() => result.forEach(safeClose));
    }
  }

  async dispose(): Promise<void> {
    try {
      this.poller.close();
      for (const release of this.made.splice(0)) release();
      const settled = await Promise.race([Promise.allSettled(this.pending).then(() => true), sleep(SETTLE_MS).then(() => false)]);
      assert.ok(settled, `a returned promise did not settle within ${SETTLE_MS} ms of close() (hang)`);
      // Rethrow what a settled promise's check found.
      for (const r of await Promise.allSettled(this.pending)) if (r.status === 'rejected') throw r.reason;
    } finally {
      safeClose(this.live[0]);
      safeClose(this.live[1]);
    }
  }
}

function isOpen(fd: number): boolean {
  try {
    fs.fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

function safeClose(fd: number): void {
  try {
    close(fd);
  } catch {
    // already closed by the fuzzed call itself
  }
}

const STATE_CODES = new Set(['ERR_POLLER_BUSY', 'ERR_NO_CALLBACK', 'ABORT_ERR']);

/** Whether `e` is an error the API may produce. */
function acceptable(e: unknown): boolean {
  if (e === ErrPollerClosed || e instanceof CallerError) return true;
  if (e instanceof TypeError || e instanceof RangeError) return true;
  if (!(e instanceof Error)) return false;
  const x = e as Error & { code?: unknown; errno?: unknown; syscall?: unknown; cause?: unknown };
  if (typeof x.code === 'string' && typeof x.errno === 'number' && x.errno < 0 && typeof x.syscall === 'string') return true; // SystemError
  if (typeof x.code === 'string' && STATE_CODES.has(x.code)) return true;
  return false;
}

function describe(e: unknown): string {
  if (e instanceof Error) return `${e.constructor.name} ${(e as { code?: string }).code ?? ''} ${e.message}`;
  return `non-Error ${String(e)}`;
}

/** Calls `fn`, checks what comes out, and keeps returned promises to check once they settle. */
function invoke(ctx: Context, what: string, fn: () => unknown): void {
  let result: unknown;
  try {
    result = fn();
  } catch (e) {
    if (!acceptable(e)) throw new Error(`${what} threw ${describe(e)}`);
    return;
  }
  ctx.adopt(result);
  if (result instanceof Promise) {
    ctx.pending.push(
      result.then(
        (v) => ctx.adopt(v),
        (e) => {
          if (!acceptable(e)) throw new Error(`${what} rejected with ${describe(e)}`);
        },
      ),
    );
  } else if (result !== null && typeof result === 'object' && typeof (result as AsyncIterator<unknown>).next === 'function') {
    // An iterator from events(): pull once, then let go.
    const it = result as AsyncIterator<unknown>;
    invoke(ctx, `${what}.next()`, () => it.next());
    invoke(ctx, `${what}.return()`, () => it.return?.());
  }
}

// ---- arbitraries ----

const edgeValues: unknown[] = [
  undefined, null, NaN, 0, -0, 1, -1, 3, 0.5, Infinity, -Infinity, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), 2 ** 32, 2 ** 53, -(2 ** 53),
  Number.MAX_VALUE, Number.MIN_VALUE, Number.EPSILON, '', '0', '3', 'fd', '::1', 'localhost', '127.0.0.1', 'not a host', '1e3',
  10n, -1n, 2n ** 64n, true, false, [], [3], {}, { fd: 3 }, Symbol('x'), () => undefined, async () => undefined,
  function* gen() {}, new Date(NaN), /re/, new Error('plain'), Object.create(null), new Map(), new Set(), new WeakMap(),
  new Uint8Array(0), Buffer.alloc(0), new ArrayBuffer(0), Promise.resolve(3), new Proxy({}, {}),
];

const specialArb = fc.constantFrom(...SPECIAL_KINDS).map((k) => new Special(k));
const anyArb = fc.anything({ maxDepth: 2, withBigInt: true, withBoxedValues: true, withNullPrototype: true, withTypedArray: true, withSparseArray: true, withDate: true, withMap: true, withSet: true });
const leafArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...edgeValues) },
  { weight: 4, arbitrary: specialArb },
  { weight: 2, arbitrary: anyArb },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.double() },
);
/** Attachment- and options-shaped objects whose fields are themselves random. */
const shapedArb = fc.oneof(
  fc.record({ fd: leafArb, callback: leafArb }, { requiredKeys: [] }),
  fc.record({ signal: leafArb, batch: leafArb }, { requiredKeys: [] }),
  fc.record({ nonblocking: leafArb }),
);
const valueArb: fc.Arbitrary<unknown> = fc.oneof({ weight: 4, arbitrary: leafArb }, { weight: 1, arbitrary: shapedArb });
const argsArb = fc.array(valueArb, { maxLength: 4 });

/** Connecting may only ever target this machine's loopback, on a port known to refuse. */
function safeHost(v: unknown): unknown {
  return typeof v === 'string' && net.isIP(v) !== 0 ? '127.0.0.1' : v;
}

// ---- the APIs ----

type Call = (ctx: Context, args: unknown[]) => unknown;
const fns: Record<string, Call> = {
  openPoller: (_c, a) => (openPoller as (...x: unknown[]) => unknown)(...a),
  pipe: (_c, a) => (netpoll.pipe as (...x: unknown[]) => unknown)(...a),
  socketpair: (_c, a) => (netpoll.socketpair as (...x: unknown[]) => unknown)(...a),
  // The port is either fuzzed into a RangeError/TypeError or a refused loopback port.
  dialTCP: (c, a) => {
    const port = typeof a[1] === 'number' && Number.isInteger(a[1]) && (a[1] as number) >= 1 && (a[1] as number) <= 65535 ? c.refusedPort : a[1];
    const fd = (netpoll.dialTCP as (...x: unknown[]) => unknown)(safeHost(a[0]), port, a[2]);
    // The port refuses, so this is unexpected; close what was connected all the same.
    if (typeof fd === 'number') safeClose(fd);
    return fd;
  },
  socketError: (c, a) => (netpoll.socketError as (...x: unknown[]) => unknown)(c.safeFd(a[0]), ...a.slice(1)),
  read: (c, a) => (netpoll.read as (...x: unknown[]) => unknown)(c.safeFd(a[0]), ...a.slice(1)),
  write: (c, a) => (netpoll.write as (...x: unknown[]) => unknown)(c.safeFd(a[0]), ...a.slice(1)),
  close: (c, a) => {
    const fd = a[0] === c.live[0] || a[0] === c.live[1] ? c.closedFd() : c.safeFd(a[0]);
    return (netpoll.close as (...x: unknown[]) => unknown)(fd, ...a.slice(1));
  },
  ...socketToolkit(),
  isReadEvent: (_c, a) => (netpoll.isReadEvent as (...x: unknown[]) => unknown)(...a),
  isWriteEvent: (_c, a) => (netpoll.isWriteEvent as (...x: unknown[]) => unknown)(...a),
  isErrorEvent: (_c, a) => (netpoll.isErrorEvent as (...x: unknown[]) => unknown)(...a),
  isErrorOnlyEvent: (_c, a) => (netpoll.isErrorOnlyEvent as (...x: unknown[]) => unknown)(...a),
  errorIs: (_c, a) => (netpoll.errorIs as (...x: unknown[]) => unknown)(...a),
  'new PollEvent': (_c, a) => new (PollEvent as unknown as new (...x: unknown[]) => unknown)(...a),
  'new Poller': (_c, a) => new (Poller as unknown as new (...x: unknown[]) => unknown)(...a),
};

/**
 * The socket toolkit (netpoll.socket.*), each called with the random values as they
 * come, except where they would reach beyond this test: fds that are not this run's
 * are swapped for closed ones, addresses for the loopback, ports for a refusing (or
 * kernel-picked) one, Unix socket paths for fresh ones in a private directory. Every
 * fd a call returns is closed.
 */
function socketToolkit(): Record<string, Call> {
  const t = netpoll.socket as unknown as Record<string, (...x: unknown[]) => unknown>;
  const fdFirst = new Set(['accept', 'socketError', 'sendTo', 'recvFrom', 'read', 'write', 'readv', 'writev', 'sendUrgent', 'recvUrgent', 'shutdown', 'close', 'dup', 'setNoDelay', 'setKeepAlive', 'setRecvBuffer', 'setSendBuffer', 'getSocketOption', 'localAddress', 'remoteAddress']);
  const validPort = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 65535;
  const out: Record<string, Call> = {};
  for (const [name, fn] of Object.entries(t)) {
    if (typeof fn !== 'function') continue;
    out[`socket.${name}`] = (c, a) => {
      const args = [...a];
      if (fdFirst.has(name)) args[0] = name === 'close' && (args[0] === c.live[0] || args[0] === c.live[1]) ? c.closedFd() : c.safeFd(args[0]);
      if (name === 'listenTCP' || name === 'bindUDP') {
        args[0] = safeHost(args[0]);
        if (validPort(args[1])) args[1] = 0;
      }
      if (name === 'dialTCP') {
        args[0] = safeHost(args[0]);
        if (validPort(args[1])) args[1] = c.refusedPort;
      }
      if (name === 'sendTo') {
        args[2] = safeHost(args[2]);
        if (validPort(args[3])) args[3] = c.refusedPort;
      }
      if ((name === 'listenUnix' || name === 'dialUnix') && typeof args[0] === 'string' && args[0] !== '' && !args[0].includes('\0')) args[0] = c.socketPath();
      const result = fn(...args);
      if (typeof result === 'number' && ['listenTCP', 'dialTCP', 'listenUnix', 'dialUnix', 'bindUDP', 'dup', 'takeFd'].includes(name)) safeClose(result);
      if (result !== null && typeof result === 'object' && typeof (result as { fd?: unknown }).fd === 'number') safeClose((result as { fd: number }).fd);
      return result;
    };
  }
  return out;
}

const methods = [
  'addRead', 'addWrite', 'addReadWrite', 'modRead', 'modWrite', 'modReadWrite', 'delete', 'attachment', 'polling', 'trigger',
  'events', 'ref', 'unref', 'hasRef', 'close', Symbol.dispose, Symbol.asyncDispose, Symbol.asyncIterator,
] as const;
const getters = ['backend', 'fd', 'closed', 'running', 'eventListSize', 'bufferedEvents'] as const;

/** The receiver of a method call: the open poller, a closed one, or any value at all. */
const receiverArb = fc.oneof(
  { weight: 6, arbitrary: fc.constant<'open'>('open') },
  { weight: 2, arbitrary: fc.constant<'closed'>('closed') },
  { weight: 1, arbitrary: valueArb.map((v) => ({ value: v })) },
);

function receiver(ctx: Context, r: 'open' | 'closed' | { value: unknown }): unknown {
  if (r === 'open') return ctx.poller;
  if (r === 'closed') return ctx.closedPoller;
  return ctx.resolve(r.value);
}

let refusedPort = 0;
const trap = trapProcessFailures();

test.before(async () => {
  // A loopback port that was just ours and now refuses: dialTCP never reaches anyone.
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  refusedPort = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const baseline = { fds: 0 };
test.before(() => {
  baseline.fds = openFdCount();
});

for (const [name, call] of Object.entries(fns)) {
  test(`${name}(random values) returns or throws only documented errors`, async () => {
    await assertProperty(
      fc.asyncProperty(argsArb, async (args) => {
        const ctx = new Context(refusedPort);
        try {
          invoke(ctx, name, () => call(ctx, args.map((a) => ctx.resolve(a))));
        } finally {
          await ctx.dispose();
        }
      }),
      { numRuns: RUNS, verbose: 1 },
    );
  });
}

for (const method of methods) {
  const label = typeof method === 'symbol' ? `[${method.description}]` : method;
  test(`Poller#${label}(random values) on any receiver returns or throws only documented errors`, async () => {
    await assertProperty(
      fc.asyncProperty(receiverArb, argsArb, async (recv, args) => {
        const ctx = new Context(refusedPort);
        try {
          const self = receiver(ctx, recv);
          const fn = (Poller.prototype as unknown as Record<string | symbol, (...x: unknown[]) => unknown>)[method];
          invoke(ctx, `${label}`, () => fn.apply(self, args.map((a) => ctx.resolve(a))));
        } finally {
          await ctx.dispose();
        }
      }),
      { numRuns: RUNS, verbose: 1 },
    );
  });
}

test('Poller getters on any receiver return or throw a TypeError', async () => {
  await assertProperty(
    fc.asyncProperty(receiverArb, fc.constantFrom(...getters), async (recv, getter) => {
      const ctx = new Context(refusedPort);
      try {
        const desc = Object.getOwnPropertyDescriptor(Poller.prototype, getter)!;
        invoke(ctx, getter, () => desc.get!.call(receiver(ctx, recv)));
      } finally {
        await ctx.dispose();
      }
    }),
    { numRuns: RUNS, verbose: 1 },
  );
});

test('random call sequences on one poller never crash or hang', async () => {
  const all = [...methods];
  await assertProperty(
    fc.asyncProperty(fc.array(fc.tuple(fc.constantFrom(...all), argsArb), { minLength: 1, maxLength: 12 }), async (calls) => {
      const ctx = new Context(refusedPort);
      try {
        for (const [method, args] of calls) {
          const fn = (Poller.prototype as unknown as Record<string | symbol, (...x: unknown[]) => unknown>)[method];
          invoke(ctx, String(typeof method === 'symbol' ? method.description : method), () => fn.apply(ctx.poller, args.map((a) => ctx.resolve(a))));
          await new Promise((resolve) => setImmediate(resolve)); // let a started loop turn
        }
      } finally {
        await ctx.dispose();
      }
    }),
    { numRuns: RUNS, verbose: 1 },
  );
});

/** Kept open to the end: its fd number was closed behind its back and may be reused. */
const keptAlive: Poller[] = [];

test('close() refuses a poller\'s own fd (libuv would abort on it), and polling after fs.closeSync(poller.fd) rejects', async () => {
  const poller = openPoller();
  keptAlive.push(poller);
  const err = (() => {
    try {
      close(poller.fd);
    } catch (e) {
      return e as Error & { code?: string };
    }
    return undefined;
  })();
  assert.is(err?.code, 'EBUSY');
  assert.ok(isOpen(poller.fd), 'the poller\'s fd stays open');
  const [r, w] = pipe();
  try {
    poller.addRead({ fd: r });
    write(w, Buffer.from('x'));
    fs.closeSync(poller.fd); // behind netpoll's back
    const rejected = await poller.polling(() => ErrEngineShutdown).then(
      () => undefined,
      (e) => e as Error & { code?: string },
    );
    assert.is(rejected?.code, 'EBADF');
    assert.not.ok(poller.running, 'a failed start leaves the poller idle');
    const again = await poller.events().next().then(
      () => undefined,
      (e) => e as Error & { code?: string },
    );
    assert.is(again?.code, 'EBADF', 'and it can be asked again, with the same answer');
  } finally {
    close(r);
    close(w);
  }
});

test('no unhandled rejection, uncaught exception or leaked fd after the fuzz', async () => {
  fs.rmSync(socketDir, { recursive: true, force: true });
  await sleep(50);
  global.gc?.();
  await sleep(50);
  assert.equal(trap.failures.map(String), []);
  const leaked = openFdCount() - baseline.fds;
  if (process.env.NETPOLL_DEBUG_FDS) for (const n of fs.readdirSync('/proc/self/fd')) console.log(n, (() => { try { return fs.readlinkSync(`/proc/self/fd/${n}`); } catch { return '?'; } })());
  assert.ok(leaked <= 4, `fds leaked by the fuzz: ${leaked}`);
});

test.run();
