// API fuzz: every exported function and Poller method, and every export of the
// native binding and NativePoller method, called with random JS values (and on
// random receivers): what comes out is a value, a TypeError/RangeError, a
// SystemError, ErrPollerClosed, one of the documented state errors, or the caller's
// own thrown value, within a bounded time; never a crash, an abort or a hang. Every
// error the caller's code throws comes back somewhere (a throw, a rejection, or an
// 'uncaughtException'), never lost.
//
// The random values include hostile ones: arrays whose index getters, Proxy traps or
// Array.prototype getters (for holes) transfer another argument's buffer and force a
// collection, detached buffers, objects whose valueOf detaches a buffer, and pollers
// whose fd another thread closed and reused. Run under `npm run test:asan` too: a
// native use of freed memory is then a report, not a silent corruption.
//
// NETPOLL_FUZZ_RUNS sets the runs per API (default 150; `npm run fuzz` raises it).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import * as fc from 'fast-check';
import * as netpoll from '../../src/index.js';
import { ErrEngineShutdown, ErrPollerClosed, MaxPollEventsCap, Poller, PollEvent, RemotePoller, close, connectPoller, openPoller, pipe, write, type PollEventHandler, type PollerHandle } from '../../src/index.js';
import { binding } from '../../src/binding.js';
import type { NativePoller } from '../../typings/binding.js';
import { openFdCount, sleep, within } from '../helpers.js';
import { assertProperty, trapProcessFailures } from './support.js';

const RUNS = Number(process.env.NETPOLL_FUZZ_RUNS ?? 150);
const SETTLE_MS = 2000;

/** What the fuzz's own callbacks and getters throw: the caller's error, passed through. */
class CallerError extends Error {}

/** Errors the caller's code threw that have not come back yet (by a throw, a rejection or 'uncaughtException'). */
const unobserved = new Set<CallerError>();
function callerError(message: string): CallerError {
  const e = new CallerError(message);
  unobserved.add(e);
  return e;
}
function observe(e: unknown): void {
  if (e instanceof CallerError) unobserved.delete(e);
}
process.on('uncaughtException', observe);

/**
 * Transfers `view`'s buffer away and collects, as hostile code can between any two
 * steps that run JavaScript; reentry-safe. A young-generation collection is enough to
 * free the transferred copy (it was just made) and costs a millisecond, not the
 * fifteen of a full one: the byte counts readv/writev return catch a use of freed
 * memory without any collection, and ASan catches it once the memory is freed.
 */
let detaching = false;
const collect = globalThis.gc as ((options?: { type: 'minor' | 'major' }) => void) | undefined;
function detach(view: ArrayBufferView): void {
  if (detaching || view.byteLength === 0 || view.buffer instanceof SharedArrayBuffer) return;
  detaching = true;
  try {
    structuredClone(view.buffer, { transfer: [view.buffer as ArrayBuffer] });
    collect?.({ type: 'minor' });
  } finally {
    detaching = false;
  }
}

/**
 * A worker that closes fds behind netpoll's back (fs.closeSync) and takes their numbers
 * for pipes of its own, synchronously: the main thread waits (Atomics.wait) until it
 * is done. Then it can tell whether its pipes still work.
 */
class FdThief {
  readonly #cmd = new Int32Array(new SharedArrayBuffer(16)); // [busy, op, arg, result]
  readonly #worker: Worker;

  constructor() {
    const indexJs = require.resolve('../../src/index.js');
    this.#worker = new Worker(
      `const { workerData } = require('node:worker_threads');
       const fs = require('node:fs');
       const np = require(${JSON.stringify(indexJs)});
       const cmd = new Int32Array(workerData);
       const pipes = [];
       for (;;) {
         Atomics.wait(cmd, 0, 0);
         let result = 0;
         try {
           if (cmd[1] === 1) {        // close fd, and take its number for a new pipe
             fs.closeSync(cmd[2]);
             const [r, w] = np.pipe();
             pipes.push([r, w]);
             result = r;
           } else if (cmd[1] === 2) { // do all its pipes still carry bytes?
             const buf = Buffer.alloc(8);
             result = pipes.every(([r, w]) => np.write(w, Buffer.from('t')) === 1 && np.read(r, buf) === 1) ? 1 : 0;
           } else if (cmd[1] === 3) { // close them
             for (const [r, w] of pipes.splice(0)) { np.close(r); np.close(w); }
           }
         } catch (e) { result = -1; }
         cmd[3] = result;
         Atomics.store(cmd, 0, 0);
         Atomics.notify(cmd, 0);
       }`,
      { eval: true, workerData: this.#cmd.buffer },
    );
    this.#worker.unref();
  }

  #call(op: number, arg = 0): number {
    const cmd = this.#cmd;
    cmd[1] = op;
    cmd[2] = arg;
    Atomics.store(cmd, 0, 1);
    Atomics.notify(cmd, 0);
    if (Atomics.wait(cmd, 0, 1, 10000) === 'timed-out') throw new Error('the fd thief did not answer');
    return cmd[3];
  }

  /** Closes `fd` on the worker thread and opens a pipe there that takes its number; the pipe's read fd. */
  steal(fd: number): number {
    return this.#call(1, fd);
  }

  /** Whether every pipe the worker opened still works. */
  pipesWork(): boolean {
    return this.#call(2) === 1;
  }

  release(): void {
    this.#call(3);
  }

  terminate(): Promise<number> {
    return this.#worker.terminate();
  }
}
const thief = new FdThief();

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
  'orphanedPoller',
  'loopbackHost',
  'refusedPort',
  'victimView',
  'getterArray',
  'proxyArray',
  'holeyArray',
  'detachingValue',
  'closingThrowingCallback',
  'eventList',
  'detachedEventList',
  'nativePoller',
  'pollerHandle',
  'staleHandle',
  'forgedHandle',
  'remotePoller',
  'float64Entries',
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
  /** The buffer the hostile values of this run detach (1 KiB, as in the attack). */
  readonly victim = new Uint8Array(1024);
  #orphan: Poller | undefined;
  #remoteOwner: Poller | undefined;
  #handle: PollerHandle | undefined;
  /** What the owner's stash tasks return or throw. */
  stash: unknown;

  /** Whether the owner poller still polls (a task's answer must never stop it). */
  get ownerPolling(): boolean {
    return this.#remoteOwner?.running === true;
  }

  /** A polling poller offering tasks to other threads (and this one), and its handle. */
  handle(): PollerHandle {
    if (this.#handle === undefined) {
      const p = openPoller();
      this.#remoteOwner = p;
      this.#handle = p.handle({
        echo: (x?: unknown) => x,
        fail: (x?: unknown) => { throw new TypeError(`task failed with ${typeof x}`); },
        stop: () => ErrEngineShutdown,
        // The owner's own values, which no copy could carry here: whatever the run stashed.
        returnStash: () => this.stash,
        throwStash: () => { throw this.stash; },
        rejectStash: async () => { await null; throw this.stash; },
      });
      void p.polling().catch(() => undefined);
    }
    return this.#handle;
  }

  /** A RemotePoller of this run's owner poller, closed at dispose. */
  remote(): RemotePoller {
    const r = connectPoller(this.handle());
    this.made.push(() => r.close());
    return r;
  }

  constructor(readonly refusedPort: number) {
    this.closedPoller.close();
    // Something for polling and iteration to deliver quickly.
    this.poller.addRead({ fd: this.live[0], callback: () => undefined });
    write(this.live[1], Buffer.from('ready'));
  }

  /** A poller whose fd the worker thread closed behind its back and reused for a pipe of its own. */
  orphan(): Poller {
    if (this.#orphan === undefined) {
      const p = openPoller();
      this.#orphan = p;
      thief.steal(p.fd);
    }
    return this.#orphan;
  }

  /** A NativePoller straight from the binding, opened on a plain (detachable) event list, closed at dispose. */
  native(open = true): NativePoller {
    const n = new binding.NativePoller();
    if (open) n.open(false, new Int32Array(3 * MaxPollEventsCap));
    this.made.push(() => n.close());
    return n;
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
            throw callerError('fd getter');
          },
          get callback(): never {
            throw callerError('callback getter');
          },
          get signal(): never {
            throw callerError('signal getter');
          },
          get batch(): never {
            throw callerError('batch getter');
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
          throw callerError('callback threw');
        };
      case 'weirdReturnCallback': {
        const { proxy, revoke } = Proxy.revocable({}, {});
        revoke();
        return () => proxy; // the loop inspects what a callback returns
      }
      case 'closingThrowingCallback':
        return () => {
          this.poller.close();
          throw callerError('callback closed the poller, then threw');
        };
      case 'openPoller': {
        const p = openPoller();
        this.made.push(() => p.close());
        return p;
      }
      case 'closedPoller':
        return this.closedPoller;
      case 'orphanedPoller':
        return this.orphan();
      case 'victimView':
        return this.victim;
      case 'getterArray': {
        const victim = this.victim;
        const list: unknown[] = [victim];
        Object.defineProperty(list, 1, {
          enumerable: true,
          get() {
            detach(victim);
            return new Uint8Array(8);
          },
        });
        return list;
      }
      case 'proxyArray': {
        const victim = this.victim;
        return new Proxy([victim, new Uint8Array(8)], {
          get(target, key, receiver) {
            if (key === '1') detach(victim);
            return Reflect.get(target, key, receiver);
          },
        });
      }
      case 'holeyArray': {
        // Index 1 is a hole: reading it asks the prototype chain, where a getter waits
        // (on a prototype of its own below Array.prototype, so that the rest of the
        // process, fast-check and node included, does not meet it; test/socket.test.ts
        // does it on Array.prototype itself).
        const victim = this.victim;
        const proto = Object.create(Array.prototype, {
          1: {
            get() {
              detach(victim);
              return new Uint8Array(8);
            },
          },
        });
        const list: unknown[] = [victim];
        list[2] = new Uint8Array(8);
        Object.setPrototypeOf(list, proto);
        return list;
      }
      case 'detachingValue': {
        const victim = this.victim;
        const hit = (): number => (detach(victim), -1);
        return { valueOf: hit, toString: () => String(hit()), [Symbol.toPrimitive]: hit, get fd(): number { return hit(); }, get length(): number { return hit(); } };
      }
      case 'eventList':
        return new Int32Array(3 * MaxPollEventsCap);
      case 'detachedEventList': {
        const list = new Int32Array(3 * MaxPollEventsCap);
        detach(list);
        return list;
      }
      case 'nativePoller':
        return this.native();
      case 'pollerHandle':
        return this.handle();
      case 'staleHandle': {
        const p = openPoller();
        const h = p.handle({ echo: (x?: unknown) => x });
        p.close();
        return h;
      }
      case 'forgedHandle':
        return { id: this.handle().id, token: 'f'.repeat(32), tasks: ['echo'] };
      case 'remotePoller':
        return this.remote();
      case 'float64Entries':
        // Well-formed-looking entries for the binding's remote calls: slot/id, meta, kind, num, len.
        return new Float64Array([0, 0, 4, 1, 0, 1, 2, 9, 0, 3, 2, 1, 5, 0, 2]);
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
      this.#remoteOwner?.close();
      if (this.#orphan !== undefined) {
        this.#orphan.close();
        // Closing must not have touched the number the worker took for its pipe.
        assert.ok(thief.pipesWork(), 'a poller closed a number another thread reused');
        thief.release();
      }
      const settled = await Promise.race([Promise.allSettled(this.pending).then(() => true), sleep(SETTLE_MS).then(() => false)]);
      assert.ok(settled, `a returned promise did not settle within ${SETTLE_MS} ms of close() (hang)`);
      // Rethrow what a settled promise's check found.
      for (const r of await Promise.allSettled(this.pending)) if (r.status === 'rejected') throw r.reason;
      const lost = [...unobserved].map((e) => e.message);
      unobserved.clear();
      assert.equal(lost, [], 'errors the caller\'s code threw never came back');
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

const STATE_CODES = new Set(['ERR_POLLER_BUSY', 'ERR_NO_CALLBACK', 'ABORT_ERR', 'ERR_POLLER_HANDLE_EXISTS']);

/** Whether `e` is an error the API may produce. */
function acceptable(e: unknown): boolean {
  if (e === ErrPollerClosed || e instanceof CallerError) return true;
  // The caller's error thrown by a remote task's param getter comes back copied.
  if (e instanceof Error && e.name === 'CallerError') return true;
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

/**
 * What node-addon-api throws when a RemoteChannel or RemoteLink method is called on
 * something that is not one (its unwrap fails before our code runs): a plain Error,
 * cleanly thrown. Only the raw binding can be called that way. (NativePoller's
 * methods and getters throw a TypeError.)
 */
function wrongNativeReceiver(self: unknown): (e: unknown) => boolean {
  let native = false;
  try {
    native = self instanceof binding.NativePoller;
  } catch {
    // a revoked Proxy: no NativePoller either
  }
  return (e) => !native && e instanceof Error && e.message === 'Invalid argument';
}

/** Calls `fn`, checks what comes out, and keeps returned promises to check once they settle. */
function invoke(ctx: Context, what: string, fn: () => unknown, alsoAcceptable?: (e: unknown) => boolean): void {
  let result: unknown;
  try {
    result = fn();
  } catch (e) {
    observe(e);
    if (!acceptable(e) && !alsoAcceptable?.(e)) throw new Error(`${what} threw ${describe(e)}`);
    return;
  }
  ctx.adopt(result);
  if (result instanceof Promise) {
    ctx.pending.push(
      result.then(
        (v) => ctx.adopt(v),
        (e) => {
          observe(e);
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
  ...rawBinding(),
  'new NativePoller': (_c, a) => new (binding.NativePoller as unknown as new (...x: unknown[]) => unknown)(...a),
  isReadEvent: (_c, a) => (netpoll.isReadEvent as (...x: unknown[]) => unknown)(...a),
  isWriteEvent: (_c, a) => (netpoll.isWriteEvent as (...x: unknown[]) => unknown)(...a),
  isErrorEvent: (_c, a) => (netpoll.isErrorEvent as (...x: unknown[]) => unknown)(...a),
  isErrorOnlyEvent: (_c, a) => (netpoll.isErrorOnlyEvent as (...x: unknown[]) => unknown)(...a),
  errorIs: (_c, a) => (netpoll.errorIs as (...x: unknown[]) => unknown)(...a),
  'new PollEvent': (_c, a) => new (PollEvent as unknown as new (...x: unknown[]) => unknown)(...a),
  'new Poller': (_c, a) => new (Poller as unknown as new (...x: unknown[]) => unknown)(...a),
  connectPoller: (c, a) => {
    const r = (connectPoller as (...x: unknown[]) => unknown)(...a);
    if (r instanceof RemotePoller) c.made.push(() => r.close());
    return r;
  },
  'new RemotePoller': (_c, a) => new (RemotePoller as unknown as new (...x: unknown[]) => unknown)(...a),
  'new RemoteChannel': (c, a) => {
    const ch = new (binding.RemoteChannel as unknown as new (...x: unknown[]) => { close(): void })(...a);
    c.made.push(() => ch.close());
    return ch;
  },
};

/**
 * The socket toolkit (netpoll.socket.*), each called with the random values as they
 * come, except where they would reach beyond this test: fds that are not this run's
 * are swapped for closed ones, addresses for the loopback, ports for a refusing (or
 * kernel-picked) one, Unix socket paths for fresh ones in a private directory. Every
 * fd a call returns is closed.
 */
function socketToolkit(): Record<string, Call> {
  return safeCalls('socket', netpoll.socket as unknown as Record<string, unknown>);
}

/** Every function the native binding exports, called directly (as any code that requires dist/src/binding.js can). */
function rawBinding(): Record<string, Call> {
  const { NativePoller: _, ...functions } = binding as unknown as Record<string, unknown>;
  return safeCalls('binding', functions);
}

/** The sum of the byteLengths of what `list` holds now (a detached buffer: 0). */
function liveBytes(list: unknown): number {
  if (!Array.isArray(list)) return Infinity;
  let sum = 0;
  for (let i = 0; i < Math.min(list.length, netpoll.socket.IOV_MAX); i++) {
    const b: unknown = list[i];
    if (ArrayBuffer.isView(b) || b instanceof ArrayBuffer) sum += b.byteLength;
  }
  return sum;
}

/** The functions of `api`, with the argument rewriting that keeps them inside this test (see socketToolkit). */
function safeCalls(prefix: string, api: Record<string, unknown>): Record<string, Call> {
  const fdFirst = new Set(['accept', 'socketError', 'sendTo', 'recvFrom', 'read', 'write', 'readv', 'writev', 'sendUrgent', 'recvUrgent', 'shutdown', 'close', 'dup', 'setNoDelay', 'setKeepAlive', 'setRecvBuffer', 'setSendBuffer', 'getSocketOption', 'setSockOpt', 'getSockOpt', 'localAddress', 'remoteAddress']);
  const validPort = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 65535;
  const out: Record<string, Call> = {};
  for (const [name, value] of Object.entries(api)) {
    if (typeof value !== 'function') continue;
    const fn = value as (...x: unknown[]) => unknown;
    out[`${prefix}.${name}`] = (c, a) => {
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
      if (typeof result === 'number' && result >= 0 && ['listenTCP', 'dialTCP', 'listenUnix', 'dialUnix', 'bindUDP', 'dup', 'takeFd'].includes(name)) safeClose(result);
      if (result !== null && typeof result === 'object' && typeof (result as { fd?: unknown }).fd === 'number') safeClose((result as { fd: number }).fd);
      // Bytes can only have gone to or come from buffers still alive: a count beyond
      // them means the call used one that a getter detached (freed memory).
      if ((name === 'readv' || name === 'writev') && typeof result === 'number' && result > liveBytes(args[1])) {
        throw new Error(`${prefix}.${name} moved ${result} bytes, more than the ${liveBytes(args[1])} its live buffers hold`);
      }
      return result;
    };
  }
  return out;
}

const methods = [
  'addRead', 'addWrite', 'addReadWrite', 'modRead', 'modWrite', 'modReadWrite', 'delete', 'attachment', 'polling', 'trigger',
  'events', 'ref', 'unref', 'hasRef', 'stats', 'close', 'handle', Symbol.dispose, Symbol.asyncDispose, Symbol.asyncIterator,
] as const;
const getters = ['backend', 'fd', 'closed', 'running', 'eventListSize', 'bufferedEvents'] as const;

/**
 * The receiver of a method call: the open poller, a closed one, one whose fd another
 * thread closed and reused, or any value at all.
 */
const receiverArb = fc.oneof(
  { weight: 6, arbitrary: fc.constant<'open'>('open') },
  { weight: 2, arbitrary: fc.constant<'closed'>('closed') },
  { weight: 1, arbitrary: fc.constant<'orphaned'>('orphaned') },
  { weight: 1, arbitrary: valueArb.map((v) => ({ value: v })) },
);
type Receiver = 'open' | 'closed' | 'orphaned' | { value: unknown };

function receiver(ctx: Context, r: Receiver): unknown {
  if (r === 'open') return ctx.poller;
  if (r === 'closed') return ctx.closedPoller;
  if (r === 'orphaned') return ctx.orphan();
  return ctx.resolve(r.value);
}

/** NativePoller's methods and getters, called on native pollers of every state or on anything. */
const nativeMethods = ['open', 'ctl', 'start', 'stop', 'pause', 'resume', 'wake', 'close', 'setRef', 'endRound', 'remoteOpen', 'remoteTake', 'remoteReply'] as const;
const nativeGetters = ['fd', 'wakerFd', 'capacity', 'lastBatchTime', 'remoteQueued', 'events', 'failedSyscall', 'waiterThread'] as const;
const nativeReceiverArb = fc.oneof(
  { weight: 4, arbitrary: fc.constant<'opened'>('opened') },
  { weight: 2, arbitrary: fc.constant<'fresh'>('fresh') },
  { weight: 1, arbitrary: fc.constant<'closed'>('closed') },
  // Another of the binding's wrapped classes: a getter that took it for a NativePoller read garbage.
  { weight: 1, arbitrary: fc.constant<'foreign'>('foreign') },
  { weight: 1, arbitrary: valueArb.map((v) => ({ value: v })) },
);

function nativeReceiver(ctx: Context, r: 'opened' | 'fresh' | 'closed' | 'foreign' | { value: unknown }): unknown {
  if (r === 'opened') return ctx.native();
  if (r === 'foreign') return rawChannel(ctx);
  if (r === 'fresh') return ctx.native(false);
  if (r === 'closed') {
    const n = ctx.native();
    n.close();
    return n;
  }
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

for (const method of nativeMethods) {
  test(`NativePoller#${method}(random values) on any receiver returns or throws only documented errors`, async () => {
    await assertProperty(
      fc.asyncProperty(nativeReceiverArb, argsArb, async (recv, args) => {
        const ctx = new Context(refusedPort);
        try {
          const self = nativeReceiver(ctx, recv);
          const fn = (binding.NativePoller.prototype as unknown as Record<string, (...x: unknown[]) => unknown>)[method];
          // Only this run's fds: ctl must not register node's own descriptors.
          const a = args.map((x) => ctx.resolve(x));
          if (method === 'ctl') a[1] = ctx.safeFd(a[1]);
          invoke(ctx, `NativePoller#${method}`, () => fn.apply(self, a));
          await new Promise((resolve) => setImmediate(resolve)); // a started poller delivers a batch
        } finally {
          await ctx.dispose();
        }
      }),
      { numRuns: RUNS, verbose: 1 },
    );
  });
}

test('NativePoller getters on any receiver return or throw a TypeError', async () => {
  await assertProperty(
    fc.asyncProperty(nativeReceiverArb, fc.constantFrom(...nativeGetters), async (recv, getter) => {
      const ctx = new Context(refusedPort);
      try {
        const desc = Object.getOwnPropertyDescriptor(binding.NativePoller.prototype, getter)!;
        const self = nativeReceiver(ctx, recv);
        invoke(ctx, getter, () => desc.get!.call(self));
      } finally {
        await ctx.dispose();
      }
    }),
    { numRuns: RUNS, verbose: 1 },
  );
});

// ---- trigger from other threads: RemotePoller, and the binding's channels and links ----

const remoteMethods = ['trigger', 'post', 'close', Symbol.dispose] as const;
/** A RemotePoller connected to a polling poller, one whose poller closed, a closed one, or anything. */
const remoteReceiverArb = fc.oneof(
  { weight: 5, arbitrary: fc.constant<'connected'>('connected') },
  { weight: 1, arbitrary: fc.constant<'gone'>('gone') },
  { weight: 1, arbitrary: fc.constant<'closed'>('closed') },
  { weight: 1, arbitrary: valueArb.map((v) => ({ value: v })) },
);

function remoteReceiver(ctx: Context, r: 'connected' | 'gone' | 'closed' | { value: unknown }): unknown {
  if (r === 'connected') return ctx.remote();
  if (r === 'gone') return connectPoller(ctx.make(new Special('staleHandle')) as PollerHandle);
  if (r === 'closed') {
    const remote = ctx.remote();
    remote.close();
    return remote;
  }
  return ctx.resolve(r.value);
}

/** Task names worth trying: the offered ones most of the time. */
const taskNameArb = fc.oneof({ weight: 4, arbitrary: fc.constantFrom('echo', 'fail', 'stop') }, { weight: 1, arbitrary: valueArb });

for (const method of remoteMethods) {
  const label = typeof method === 'symbol' ? `[${method.description}]` : method;
  test(`RemotePoller#${label}(random values) on any receiver returns or throws only documented errors`, async () => {
    await assertProperty(
      fc.asyncProperty(remoteReceiverArb, fc.oneof(valueArb, fc.constantFrom(0, 1)), taskNameArb, argsArb, async (recv, priority, task, rest) => {
        const ctx = new Context(refusedPort);
        try {
          const self = remoteReceiver(ctx, recv);
          const fn = (RemotePoller.prototype as unknown as Record<string | symbol, (...x: unknown[]) => unknown>)[method];
          const args = method === 'trigger' || method === 'post' ? [priority, task, ...rest] : rest;
          invoke(ctx, `RemotePoller#${label}`, () => fn.apply(self, args.map((a) => ctx.resolve(a))));
        } finally {
          await ctx.dispose();
        }
      }),
      { numRuns: RUNS, verbose: 1 },
    );
  });
}

/** Values whose reading runs hostile code: getters and Proxy traps that throw (plain Errors, not the caller's). */
const hostileArb: fc.Arbitrary<unknown> = fc.oneof(
  valueArb,
  fc.tuple(valueArb, fc.constantFrom('name', 'message', 'stack', 'code', 'cause', 'then', 'x')).map(([inner, key]) => ({ inner, key, error: true })),
  fc.tuple(valueArb, fc.constantFrom('get', 'getPrototypeOf', 'ownKeys', 'has', 'getOwnPropertyDescriptor')).map(([inner, trap]) => ({ inner, trap })),
  // What the owner touches of a result beyond reading it (issue 18 §3.1): a promise whose
  // `then` or `constructor` throws, thenables, coercion, revoked Proxies.
  fc
    .tuple(valueArb, fc.constantFrom('promiseThen', 'promiseConstructor', 'thenableThrows', 'thenableGetter', 'thenableOfHostile', 'toPrimitive', 'revoked', 'proxiedPromise', 'rejectsRevoked'))
    .map(([inner, shape]) => ({ inner, shape })),
);

function makeHostile(ctx: Context, v: unknown): unknown {
  if (v === null || typeof v !== 'object' || !('inner' in v)) return ctx.resolve(v);
  const inner = ctx.resolve((v as { inner: unknown }).inner);
  const boom = (): never => {
    const e = new Error('hostile');
    Object.defineProperty(e, 'message', { get: () => { throw inner; } });
    throw e;
  };
  if ('shape' in v) {
    const revocable = Proxy.revocable({}, {});
    revocable.revoke();
    // Promise.resolve(inner) rejects when reading inner's `then` throws (a revoked Proxy):
    // that rejection is the fuzz's own, handled before `then` is replaced below.
    // A new promise every time: Promise.resolve(inner) would hand back `inner` itself when it
    // is a promise (edgeValues holds one, shared by every run), and the shapes below redefine
    // its `then` or `constructor` for good, breaking every later run that draws it.
    const resolved = (): Promise<unknown> => {
      const p = new Promise<unknown>((resolve) => resolve(inner));
      p.catch(() => undefined);
      return p;
    };
    switch ((v as { shape: string }).shape) {
      case 'promiseThen':
        return Object.defineProperty(resolved(), 'then', { value: boom });
      case 'promiseConstructor':
        return Object.defineProperty(resolved(), 'constructor', { get: boom });
      case 'thenableThrows':
        return { then: boom };
      case 'thenableGetter':
        return { get then(): unknown { return boom(); } };
      case 'thenableOfHostile':
        return { then: (ok: (x: unknown) => void) => ok({ get then(): unknown { return boom(); } }) };
      case 'toPrimitive':
        return { [Symbol.toPrimitive]: boom, valueOf: boom, toString: boom, inner };
      case 'revoked':
        return revocable.proxy;
      case 'proxiedPromise':
        return new Proxy(resolved(), { get: boom, getPrototypeOf: boom });
      default: {
        const p = Promise.reject(revocable.proxy);
        p.catch(() => undefined); // the task rejects with it when it returns it
        return p;
      }
    }
  }
  if ('key' in v) {
    const e = new Error('outer');
    Object.defineProperty(e, (v as { key: string }).key, { enumerable: true, configurable: true, get: boom });
    return e;
  }
  return new Proxy(new Error('proxied'), { [(v as unknown as { trap: string }).trap]: boom });
}

test('a remote task that returns, throws or rejects with any owner-side value (getters and traps that throw included) answers its caller, and polling goes on', async () => {
  await assertProperty(
    fc.asyncProperty(hostileArb, fc.constantFrom('returnStash', 'throwStash', 'rejectStash'), async (value, task) => {
      const ctx = new Context(refusedPort);
      try {
        const remote = ctx.remote();
        ctx.stash = makeHostile(ctx, value);
        const settled = await Promise.race([remote.trigger(0, task).then(() => true, () => true), sleep(5 * SETTLE_MS).then(() => false)]); // a hang, not a slow machine
        assert.ok(settled, `the caller of ${task} was never answered`);
        assert.ok(ctx.ownerPolling, `${task}'s answer stopped the owner's polling`);
        // Posted (nobody waits for the answer): the owner drops it, and still polls; the
        // trigger after it runs (FIFO), so the post ran before it.
        assert.is(remote.post(0, task), true);
        const after = await Promise.race([remote.trigger(0, 'echo', 1).then(() => true, () => false), sleep(5 * SETTLE_MS).then(() => false)]);
        assert.ok(after, `a trigger after posting ${task} was not answered`);
        assert.ok(ctx.ownerPolling, `posting ${task} stopped the owner's polling`);
        // What the stashed value's getters threw was thrown on the owner's side: its caller
        // gets a copy (checked above to settle), never the object itself.
        unobserved.clear();
      } finally {
        await ctx.dispose();
      }
    }),
    { numRuns: RUNS, verbose: 1 },
  );
});

/** The binding's own caller-side classes, as code that requires the addon could call them. */
interface RawChannel {
  connect(...a: unknown[]): unknown;
  setRef(...a: unknown[]): unknown;
  close(...a: unknown[]): unknown;
}

function rawChannel(ctx: Context): RawChannel {
  const ch = new (binding.RemoteChannel as unknown as new (...a: unknown[]) => RawChannel)(() => undefined, new Float64Array(5 * 8), []);
  ctx.made.push(() => ch.close());
  return ch;
}

test('RemoteChannel and RemoteLink methods (the raw binding) on any receiver return or throw only documented errors', async () => {
  const calls = ['channel.connect', 'channel.setRef', 'channel.close', 'link.flush', 'link.close'] as const;
  await assertProperty(
    fc.asyncProperty(fc.constantFrom(...calls), fc.oneof({ weight: 3, arbitrary: fc.constant('real') }, { weight: 1, arbitrary: valueArb }), argsArb, async (call, recv, args) => {
      const ctx = new Context(refusedPort);
      try {
        const channel = rawChannel(ctx);
        let self: unknown = channel;
        const [kind, method] = call.split('.') as ['channel' | 'link', string];
        if (kind === 'link') {
          const h = ctx.handle();
          const link = channel.connect(h.id, h.token);
          self = recv === 'real' ? link : ctx.resolve(recv);
        } else if (recv !== 'real') {
          self = ctx.resolve(recv);
        }
        if (recv === 'real' && kind === 'channel' && method === 'connect' && args.length === 0) args = [ctx.handle().id, ctx.handle().token];
        const proto = Object.getPrototypeOf(kind === 'link' ? channel.connect(ctx.handle().id, ctx.handle().token) : channel) as Record<string, (...x: unknown[]) => unknown>;
        const fn = proto[method]!;
        invoke(ctx, call, () => fn.apply(self, args.map((a) => ctx.resolve(a))), wrongNativeReceiver(self));
        await new Promise((resolve) => setImmediate(resolve)); // a flushed task runs and is answered
      } finally {
        await ctx.dispose();
      }
    }),
    { numRuns: RUNS, verbose: 1 },
  );
});

test('random step sequences on a native poller whose event list JavaScript detaches never write into freed memory', async () => {
  // Each batch after the detach must be -EFAULT (and nothing written), never a crash.
  const EFAULT = -os.constants.errno.EFAULT;
  const steps = ['add', 'start', 'stop', 'pause', 'resume', 'wake', 'detach', 'gc', 'unref', 'close', 'turn'] as const;
  await assertProperty(
    fc.asyncProperty(fc.boolean(), fc.array(fc.constantFrom(...steps), { minLength: 1, maxLength: 16 }), async (waiterThread, plan) => {
      const ctx = new Context(refusedPort);
      const native = new binding.NativePoller();
      const list = new Int32Array(3 * MaxPollEventsCap);
      const bad: number[] = [];
      let detached = false;
      try {
        assert.is(native.open(waiterThread, list), 0);
        for (const step of plan) {
          switch (step) {
            case 'add': native.ctl(binding.CTL_ADD, ctx.live[0], binding.INTEREST_READ); break;
            case 'start': native.start((n) => { if (detached && n !== EFAULT) bad.push(n); }, {}); break;
            case 'stop': native.stop(); break;
            case 'pause': native.pause(); break;
            case 'resume': native.resume(); break;
            case 'wake': native.wake(); break;
            case 'detach': detach(list); detached = true; break;
            case 'gc': collect?.({ type: 'minor' }); break;
            case 'unref': native.setRef(false); break;
            case 'close': native.close(); break;
            case 'turn': await new Promise((resolve) => setImmediate(resolve)); break;
          }
        }
        await new Promise((resolve) => setImmediate(resolve));
        assert.equal(bad, [], 'batches delivered after the list was detached');
      } finally {
        native.close();
        await ctx.dispose();
      }
    }),
    { numRuns: RUNS, verbose: 1 },
  );
});

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

// ---- targeted properties: each class of defect, where random values alone would rarely meet ----

/** A buffer list for readv/writev: plain members, with the victim, detached ones, and one hostile element. */
const hostileListArb = fc.record({
  members: fc.array(fc.constantFrom('victim', 'fresh', 'detached', 'arrayBuffer', 'dataView'), { minLength: 1, maxLength: 6 }),
  hostile: fc.constantFrom('getter', 'proxy', 'hole', 'none'),
  at: fc.nat(),
});

function hostileList(ctx: Context, plan: { members: string[]; hostile: string; at: number }): unknown[] {
  const victim = ctx.victim;
  const list: unknown[] = plan.members.map((m) => {
    switch (m) {
      case 'victim': return victim;
      case 'detached': return ctx.make(new Special('detachedView'));
      case 'arrayBuffer': return new ArrayBuffer(32);
      case 'dataView': return new DataView(new ArrayBuffer(24), 4, 16);
      default: return new Uint8Array(16);
    }
  });
  const k = plan.at % (list.length + 1); // the hostile element's index: maybe past the end
  const payload = (): Uint8Array => {
    detach(victim);
    return new Uint8Array(8);
  };
  switch (plan.hostile) {
    case 'getter':
      Object.defineProperty(list, k, { enumerable: true, configurable: true, get: payload });
      return list;
    case 'hole': {
      delete list[k];
      if (k >= list.length) list.length = k + 1;
      Object.setPrototypeOf(list, Object.create(Array.prototype, { [k]: { get: payload } }));
      return list;
    }
    case 'proxy':
      return new Proxy(list, { get: (target, key, receiver) => (key === String(k) ? payload() : Reflect.get(target, key, receiver)) });
    default:
      return list;
  }
}

test('readv and writev, through the toolkit or the binding, move bytes only to and from buffers still alive, whatever the list\'s getters do', async () => {
  await assertProperty(
    fc.asyncProperty(fc.constantFrom('socket.readv', 'socket.writev', 'binding.readv', 'binding.writev'), hostileListArb, async (name, plan) => {
      const ctx = new Context(refusedPort);
      try {
        write(ctx.live[1], Buffer.alloc(4096, 1)); // something to read
        const fd = name.endsWith('readv') ? ctx.live[0] : ctx.live[1];
        invoke(ctx, name, () => fns[name](ctx, [fd, hostileList(ctx, plan)]));
      } finally {
        await ctx.dispose();
      }
    }),
    { numRuns: RUNS, verbose: 1 },
  );
});

const callbackKinds = ['okCallback', 'stopCallback', 'throwingCallback', 'closingThrowingCallback', 'weirdReturnCallback'] as const;

test('every error a callback or task throws comes back: as a rejection, or as an uncaught exception once its run has ended', async () => {
  await assertProperty(
    fc.asyncProperty(fc.array(fc.tuple(fc.constantFrom('polling', 'attachment', 'trigger', 'events'), fc.constantFrom(...callbackKinds)), { minLength: 1, maxLength: 4 }), async (calls) => {
      const ctx = new Context(refusedPort);
      try {
        for (const [how, kind] of calls) {
          const cb = ctx.make(new Special(kind)) as PollEventHandler;
          if (how === 'polling') invoke(ctx, 'polling', () => ctx.poller.polling(cb));
          else if (how === 'attachment') invoke(ctx, 'addRead+polling', () => (ctx.poller.modRead({ fd: ctx.live[0], callback: cb }), ctx.poller.polling()));
          else if (how === 'trigger') invoke(ctx, 'trigger', () => ctx.poller.trigger(1, cb as () => unknown));
          else invoke(ctx, 'events', () => ctx.poller.events());
          await new Promise((resolve) => setImmediate(resolve));
        }
      } finally {
        await ctx.dispose();
      }
    }),
    { numRuns: RUNS, verbose: 1 },
  );
});

test('a polling poller stays live through synchronous bursts of writes, deletes, re-adds and fd reuse, and no callback sees a stale fd', async () => {
  // Each burst runs in one loop turn while the poller polls (the loop busy meanwhile,
  // so a waiter thread hands batches over that the loop takes only later); then a
  // task must run, and every event must be for an fd registered at the time.
  const op = fc.oneof(
    fc.record({ kind: fc.constant<'write'>('write'), i: fc.nat(2) }),
    fc.record({ kind: fc.constant<'delete'>('delete'), i: fc.nat(2) }),
    fc.record({ kind: fc.constant<'add'>('add'), i: fc.nat(2), edge: fc.boolean() }),
    fc.record({ kind: fc.constant<'reopen'>('reopen'), i: fc.nat(2) }),
    fc.record({ kind: fc.constant<'busy'>('busy'), ms: fc.constantFrom(0, 5, 30) }),
  );
  await assertProperty(
    fc.asyncProperty(fc.boolean(), fc.array(fc.array(op, { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 4 }), async (waiterThread, bursts) => {
      const poller = openPoller({ waiterThread });
      const pipes = [pipe(), pipe(), pipe()];
      const registered = new Set<number>();
      // Numbers closed without delete(): the poller still has them (delete before close,
      // the docs say), so an event read before the close may still come, until the
      // number is added again (a new registration) or deleted.
      const unsure = new Set<number>();
      const stale: number[] = [];
      const buf = Buffer.alloc(64);
      try {
        const running = poller.polling((fd) => {
          if (!registered.has(fd) && !unsure.has(fd)) stale.push(fd);
          try {
            netpoll.read(fd, buf);
          } catch {
            // an unsure number may be a write end by now
          }
        });
        for (const burst of bursts) {
          await new Promise<void>((resolve) => setTimeout(resolve, 1));
          for (const step of burst) {
            const [r, w] = pipes[step.kind === 'busy' ? 0 : step.i];
            if (step.kind === 'write') write(w, Buffer.from('x'));
            else if (step.kind === 'delete' && registered.has(r)) (poller.delete(r), registered.delete(r), unsure.delete(r));
            else if (step.kind === 'add' && !registered.has(r)) {
              // A number closed without delete may still be registered in the kernel
              // (libkqueue keeps it until told): EEXIST then, as the docs say.
              try {
                poller.addRead({ fd: r }, step.edge);
                registered.add(r);
                unsure.delete(r);
              } catch (e) {
                if ((e as { code?: string }).code !== 'EEXIST' || !unsure.has(r)) throw e;
              }
            } else if (step.kind === 'reopen') {
              // Closed without delete, and the number taken by a new pipe at once.
              if (registered.delete(r)) unsure.add(r);
              close(r);
              close(w);
              pipes[step.i] = pipe();
            } else if (step.kind === 'busy') for (const end = Date.now() + step.ms; Date.now() < end; );
          }
          const task = poller.trigger(0, () => 'ran');
          assert.is(await within(task, 2000, 'a task after the burst (the poller went deaf)'), 'ran');
        }
        await new Promise<void>((resolve) => setTimeout(resolve, 2));
        assert.equal(stale, [], 'events for fds not registered when delivered');
        poller.close();
        await within(running, 2000);
      } finally {
        poller.close();
        for (const [r, w] of pipes) {
          safeClose(r);
          safeClose(w);
        }
      }
    }),
    { numRuns: Math.max(20, Math.floor(RUNS / 3)), verbose: 1 },
  );
});

test('fs.closeSync(poller.fd) at any point of a random call sequence, even in the tick polling() started, never aborts', async () => {
  await assertProperty(
    fc.asyncProperty(fc.array(fc.tuple(fc.constantFrom(...methods), argsArb), { maxLength: 4 }), fc.array(fc.tuple(fc.constantFrom(...methods), argsArb), { maxLength: 4 }), async (before, after) => {
      const ctx = new Context(refusedPort);
      try {
        const call = ([method, args]: (typeof before)[number]): void => {
          const fn = (Poller.prototype as unknown as Record<string | symbol, (...x: unknown[]) => unknown>)[method];
          invoke(ctx, String(typeof method === 'symbol' ? method.description : method), () => fn.apply(ctx.poller, args.map((a) => ctx.resolve(a))));
        };
        before.forEach(call);
        invoke(ctx, 'polling', () => ctx.poller.polling(() => undefined));
        if (ctx.poller.fd >= 0) fs.closeSync(ctx.poller.fd); // same tick: libuv has not seen the fd yet
        after.forEach(call);
        await new Promise((resolve) => setImmediate(resolve));
        await new Promise((resolve) => setTimeout(resolve, 1));
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
  await thief.terminate();
  await sleep(50);
  global.gc?.();
  await sleep(50);
  // The caller's own errors may surface as uncaught exceptions (a callback that closed
  // the poller and then threw, a native poller's throwing batch callback): that is how
  // they come back. Anything else is a failure.
  assert.equal(trap.failures.filter((e) => !(e instanceof CallerError)).map(String), []);
  const leaked = openFdCount() - baseline.fds;
  if (process.env.NETPOLL_DEBUG_FDS) for (const n of fs.readdirSync('/proc/self/fd')) console.log(n, (() => { try { return fs.readlinkSync(`/proc/self/fd/${n}`); } catch { return '?'; } })());
  assert.ok(leaked <= 4, `fds leaked by the fuzz: ${leaked}`);
});

test.run();
