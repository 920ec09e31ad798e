// Trigger from any thread: the handle a poller gives out, RemotePoller on the
// calling side, and the owner's half a Poller uses to run what other threads send.
//
// A trigger travels as one entry of a batch: five doubles (id, priority | task << 1,
// kind, num, len) in a Float64Array, plus the param's bytes in a staging Buffer when
// it has any. Numbers, strings, Buffers, typed arrays and ArrayBuffers are copied
// as they are (the fast paths); anything else goes through v8.serialize (structured
// clone). A thread's triggers of one tick cross in one native call, and the owner's
// answers of one round go back in one call per caller thread (csrc/binding_remote.cc).
import { randomBytes } from 'node:crypto';
import { types } from 'node:util';
import { binding } from './binding.js';
import type { NativePoller, RemoteChannel, RemoteLink } from '../typings/binding.js';
import { ErrAcceptSocket, ErrEngineShutdown, ErrPollerClosed, stateError, systemError, validateInteger, validateObject } from './errors.js';
import { MaxPollEventsCap } from './events.js';
import type { Priority } from './poller.js';
import type { RemoteSink, TaskQueue } from './queue.js';

// node:v8 takes a few milliseconds to load, and only values without a fast path need it.
let v8module: typeof import('node:v8') | undefined;
const v8 = (): typeof import('node:v8') => (v8module ??= require('node:v8') as typeof import('node:v8'));

let Cloner: (new () => import('node:v8').Serializer) | undefined;

function dataCloneError(message: string): TypeError {
  const err = new TypeError(`${message} A task's param and result cross threads by structured clone.`) as TypeError & { code: string };
  err.code = 'ERR_DATA_CLONE';
  return err;
}

/**
 * v8.serialize, but a value structured clone refuses (a function, a symbol, a Proxy) is
 * a TypeError, as a bad argument is, rather than v8's plain Error. What a getter of the
 * value throws comes through as it is.
 */
function serialize(value: unknown): Buffer {
  Cloner ??= class extends v8().DefaultSerializer {
    _getDataCloneError(message: string): Error {
      return dataCloneError(message);
    }

    // Memory shared with another thread is not copied, and the task's thread could not
    // attach it: refused, as postMessage refuses it without a transfer.
    _getSharedArrayBufferId(): number {
      throw dataCloneError('#<SharedArrayBuffer> could not be cloned.');
    }
  };
  const ser = new Cloner();
  ser.writeHeader();
  ser.writeValue(value);
  return ser.releaseBuffer();
}

// An addon built from older sources has no remote calls: everything else still works with
// it, and handle() and connectPoller() fail with a TypeError (their native calls are missing).
const codes = binding.remoteCodes ?? ({} as typeof binding.remoteCodes);
const { UNDEFINED, NULL, FALSE, TRUE, NUMBER, STRING, SERIALIZED, SENTINEL, ARRAYBUFFER, BUFFER, FAILURE, TYPED, ERROR, ENTRY, NO_REPLY } = codes;

/** The sentinel errors by the index a value carries across threads. */
const sentinels: readonly Error[] = [ErrEngineShutdown, ErrAcceptSocket, ErrPollerClosed];

/** Node-API's typed array types, by name (napi_typedarray_type). */
const typedArrayTypes: Readonly<Record<string, number>> = {
  Int8Array: 0,
  Uint8Array: 1,
  Uint8ClampedArray: 2,
  Int16Array: 3,
  Uint16Array: 4,
  Int32Array: 5,
  Uint32Array: 6,
  Float32Array: 7,
  Float64Array: 8,
  BigInt64Array: 9,
  BigUint64Array: 10,
};
// The intrinsic getters, which read a typed array's internal slots: an own property
// named `buffer` or `byteLength` on the instance cannot mislead them.
const typedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype) as object;
const intrinsic = (name: PropertyKey): ((this: unknown) => unknown) =>
  Object.getOwnPropertyDescriptor(typedArrayPrototype, name)!.get as (this: unknown) => unknown;
const typedArrayName = intrinsic(Symbol.toStringTag) as (this: unknown) => string | undefined;
const typedArrayBuffer = intrinsic('buffer') as (this: unknown) => ArrayBufferLike;
const typedArrayByteOffset = intrinsic('byteOffset') as (this: unknown) => number;
const typedArrayByteLength = intrinsic('byteLength') as (this: unknown) => number;
const arrayBufferByteLength = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'byteLength')!.get as (this: unknown) => number;

/** Above this, a batch's buffers are given back once it has been sent. */
const KEEP_STAGING = 1 << 20;
const KEEP_ENTRIES = 4096;
/** Small sends in a row after which grown buffers are given back. */
const SHRINK_AFTER = 16;
/** The most payload bytes one value may carry (a task's entry stores the length in 32 bits). */
const MAX_PAYLOAD = 0xffffffff;

/** Entries and payload bytes on their way to another thread: one flush's worth. */
class Batch {
  hdr = new Float64Array(ENTRY * 64);
  count = 0;
  staging = Buffer.allocUnsafe(4096);
  used = 0;
  /** Where the payload bytes of the last entry added begin (dropLast). */
  #lastUsed = 0;
  /** Sends in a row that used under a quarter of buffers grown past KEEP_*. */
  #smallSends = 0;

  /** Appends an entry for `value`; throws (appending nothing) when it cannot be cloned. */
  add(id: number, meta: number, value: unknown, kindFlag = 0): void {
    // What runs the caller's code (the getters v8.serialize calls) runs first, before the
    // batch is touched: that code may trigger, send or close in turn, re-entering it.
    const cloned = takesFastPath(value) ? undefined : serialize(value);
    this.#lastUsed = this.used;
    if ((this.count + 1) * ENTRY > this.hdr.length) {
      const grown = new Float64Array(this.hdr.length * 2);
      grown.set(this.hdr);
      this.hdr = grown;
    }
    const at = this.count * ENTRY;
    const hdr = this.hdr;
    hdr[at] = id;
    hdr[at + 1] = meta;
    hdr[at + 4] = 0;
    if (cloned !== undefined) {
      const off = this.#reserve(cloned.length);
      this.staging.set(cloned, off);
      this.#payload(at, SERIALIZED | kindFlag, off, cloned.length);
      this.count++;
      return;
    }
    switch (typeof value) {
      case 'number':
        hdr[at + 2] = NUMBER | kindFlag;
        hdr[at + 3] = value;
        break;
      case 'undefined':
        hdr[at + 2] = UNDEFINED | kindFlag;
        break;
      case 'boolean':
        hdr[at + 2] = (value ? TRUE : FALSE) | kindFlag;
        break;
      case 'string': {
        const len = value.length * 2;
        const off = this.#reserve(len);
        this.staging.write(value, off, len, 'utf16le');
        this.#payload(at, STRING | kindFlag, off, len);
        break;
      }
      default:
        if (value === null) hdr[at + 2] = NULL | kindFlag;
        else this.#bytes(at, value as object, kindFlag);
    }
    this.count++;
  }

  /** Sentinel errors, typed arrays, Buffers and ArrayBuffers (takesFastPath said so): their kind and bytes. */
  #bytes(at: number, value: object, kindFlag: number): void {
    const sentinel = sentinels.indexOf(value as Error);
    if (sentinel >= 0) {
      this.hdr[at + 2] = SENTINEL | kindFlag;
      this.hdr[at + 3] = sentinel;
      return;
    }
    let kind: number;
    let view: Uint8Array;
    if (ArrayBuffer.isView(value)) {
      // Buffer by its prototype: instanceof could run a Proxy's trap (a prototype swapped in).
      kind = Object.getPrototypeOf(value) === Buffer.prototype ? BUFFER : TYPED + typedArrayTypes[typedArrayName.call(value)!]!;
      const length = typedArrayByteLength.call(value);
      // A view of a detached buffer has no bytes left: it arrives empty.
      const buffer = typedArrayBuffer.call(value);
      // As a SharedArrayBuffer itself is (serialize): memory shared with another thread is
      // refused, not silently copied as if it were not shared.
      if (types.isSharedArrayBuffer(buffer)) throw dataCloneError('A view of a #<SharedArrayBuffer> could not be cloned.');
      view = length === 0 ? new Uint8Array(0) : new Uint8Array(buffer, typedArrayByteOffset.call(value), length);
    } else {
      kind = ARRAYBUFFER;
      const length = arrayBufferByteLength.call(value);
      // A detached ArrayBuffer has no bytes left: it arrives empty, as a view of one does.
      view = length === 0 ? new Uint8Array(0) : new Uint8Array(value as ArrayBuffer, 0, length);
    }
    const len = view.byteLength;
    const off = this.#reserve(len);
    this.staging.set(view, off);
    this.#payload(at, kind | kindFlag, off, len);
  }

  #payload(at: number, kind: number, off: number, len: number): void {
    this.hdr[at + 2] = kind;
    this.hdr[at + 3] = off;
    this.hdr[at + 4] = len;
  }

  /** Room for `len` more payload bytes; returns where they go. */
  #reserve(len: number): number {
    if (len > MAX_PAYLOAD) throw rangeError(`a value of ${len} bytes is too large to send to another thread (at most ${MAX_PAYLOAD})`);
    const off = this.used;
    if (off + len > this.staging.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.staging.length * 2, off + len));
      this.staging.copy(grown, 0, 0, off);
      this.staging = grown;
    }
    this.used = off + len;
    return off;
  }

  /** Takes back the entry add() appended last (its caller's code closed the sender meanwhile). */
  dropLast(): void {
    this.count--;
    this.used = this.#lastUsed;
  }

  /**
   * Forgets what was sent; gives back buffers a large batch grew, once batches have been
   * small for a while: a producer that keeps sending large batches would otherwise grow
   * them again every tick (megabytes of external memory, which also drives the collector).
   */
  reset(): void {
    const big = this.staging.length > KEEP_STAGING || this.hdr.length > KEEP_ENTRIES * ENTRY;
    if (big && this.count * ENTRY * 4 < this.hdr.length && this.used * 4 < this.staging.length) this.#smallSends++;
    else this.#smallSends = 0;
    this.count = 0;
    this.used = 0;
    if (this.#smallSends < SHRINK_AFTER) return;
    this.#smallSends = 0;
    if (this.staging.length > KEEP_STAGING) this.staging = Buffer.allocUnsafe(4096);
    if (this.hdr.length > KEEP_ENTRIES * ENTRY) this.hdr = new Float64Array(ENTRY * 64);
  }
}

function noop(): void {}

/**
 * An array of `n` own slots (undefined) and no prototype, for the binding to store
 * values into: storing into an own data property finds no setter, so no user code (an
 * index setter on Array.prototype) runs while the binding delivers tasks or replies.
 * Array.from defines its elements (CreateDataProperty), which runs no setter either.
 */
function ownSlots(n: number): unknown[] {
  const slots = Array.from<unknown>({ length: n });
  Object.setPrototypeOf(slots, null);
  return slots;
}

/**
 * Whether `value` crosses without v8.serialize: numbers, strings, booleans, undefined,
 * null, the sentinel errors, typed arrays (not DataViews) and ArrayBuffers. Decided
 * without running any of the caller's code (no getter, no Proxy trap).
 */
function takesFastPath(value: unknown): boolean {
  switch (typeof value) {
    case 'number':
    case 'string':
    case 'boolean':
    case 'undefined':
      return true;
    case 'object':
      if (value === null || sentinels.includes(value as Error)) return true;
      if (ArrayBuffer.isView(value)) return typedArrayName.call(value) !== undefined;
      return types.isArrayBuffer(value);
    default:
      return false;
  }
}

function rangeError(message: string): RangeError {
  const err = new RangeError(message) as RangeError & { code: string };
  err.code = 'ERR_OUT_OF_RANGE';
  return err;
}

/** Marks an error description made by describeError. */
const ERROR_MARK = '__netpollError';
const errorTypes: Readonly<Record<string, ErrorConstructor>> = {
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};

/**
 * What a thrown Error becomes across threads: name, message, stack and its own
 * enumerable properties (`code`, `errno`, `syscall`, …), which v8.serialize would drop.
 */
function describeError(e: Error): Record<string, unknown> {
  const props: Record<string, unknown> = {};
  for (const key of Object.keys(e)) props[key] = (e as unknown as Record<string, unknown>)[key];
  const description: Record<string, unknown> = { [ERROR_MARK]: 1, name: e.name, message: e.message, stack: e.stack, props };
  if ('cause' in e) description.cause = e.cause;
  return description;
}

function reviveError(d: Record<string, unknown>): Error {
  const name = typeof d.name === 'string' ? d.name : 'Error';
  const ctor = Object.hasOwn(errorTypes, name) ? errorTypes[name]! : Error;
  const err = new ctor(typeof d.message === 'string' ? d.message : '', 'cause' in d ? { cause: reviveValue(d.cause) } : undefined);
  if (err.name !== name) Object.defineProperty(err, 'name', { value: name, configurable: true, writable: true });
  if (typeof d.stack === 'string') err.stack = d.stack;
  // Own properties, whatever their names ("__proto__" included): assigning would set them.
  if (d.props !== null && typeof d.props === 'object') {
    for (const [key, value] of Object.entries(d.props)) Object.defineProperty(err, key, { value, writable: true, enumerable: true, configurable: true });
  }
  return err;
}

function reviveValue(v: unknown): unknown {
  if (v !== null && typeof v === 'object' && (v as Record<string, unknown>)[ERROR_MARK] === 1) return reviveError(v as Record<string, unknown>);
  return v;
}

/**
 * Appends a rejection: the sentinel itself, an Error's description, or the thrown value.
 * Never throws: what a task throws is the task's business and must reach its caller,
 * not stop the owner's loop, though reading it may run the thrower's code (getters, a
 * Proxy's traps) that throws in turn. Each attempt below can fail only before it
 * touches the batch; the last one cannot fail.
 */
function addError(batch: Batch, id: number, error: unknown): void {
  let why: unknown;
  try {
    if (error instanceof Error && !sentinels.includes(error)) batch.add(id, 0, describeError(error), ERROR);
    else batch.add(id, 0, error, ERROR);
    return;
  } catch (e) {
    why = e;
  }
  try {
    // What a copy refused (a property, the cause or the value itself): keep what can be kept.
    if (error instanceof Error) {
      const { name, message, stack } = error;
      batch.add(id, 0, { [ERROR_MARK]: 1, name: String(name), message: String(message), stack: String(stack), props: {} }, ERROR);
    } else {
      // What copying it threw instead: the DataCloneError, or what a getter of it threw.
      batch.add(id, 0, why instanceof Error ? describeError(why) : why, ERROR);
    }
    return;
  } catch {
    // Reading the thrown value threw again.
  }
  batch.add(id, 0, uncopiable(), ERROR);
}

/** The description of an Error the task threw that could not even be read. */
function uncopiable(): Record<string, unknown> {
  return { [ERROR_MARK]: 1, name: 'Error', message: 'the remote task threw a value that could not be read or copied to the calling thread', props: { code: 'ERR_DATA_CLONE' } };
}

/** Typed array constructors by napi_typedarray_type. */
const typedArrays = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array] as const;

/**
 * A value that arrived: what `kind` (its ERROR flag cleared), `num` and `len` say. The
 * binding gives strings, and payloads too large to share, as `value` (an ArrayBuffer of
 * their own); other payloads are bytes [num, num + len) of `chunk`, shared by one
 * delivery (absent when every payload in it is empty). A Buffer is a view of the shared
 * bytes, as Node's pooled Buffers are of their pool; a typed array or an ArrayBuffer
 * gets bytes of its own, as structured clone gives it (code that reads `param.buffer`
 * must not see another task's param), and so does what v8.deserialize makes (it makes
 * typed arrays inside the value views of the bytes it reads). A rejection's Error
 * description (describeError) becomes an Error again only when `rejected`: a task's
 * result that looks like one stays the plain object it is.
 */
function decode(kind: number, num: number, len: number, value: unknown, chunk: Buffer | undefined, rejected = false): unknown {
  if (kind === BUFFER || kind === SERIALIZED || kind === ARRAYBUFFER || (kind >= TYPED && kind < TYPED + typedArrays.length)) {
    const own = value !== undefined;
    let bytes: ArrayBuffer;
    if (own) {
      bytes = value as ArrayBuffer;
    } else if (chunk === undefined) {
      bytes = new ArrayBuffer(0); // an empty payload
      num = 0;
    } else {
      bytes = chunk.buffer as ArrayBuffer;
      num += chunk.byteOffset;
    }
    if (kind === BUFFER) return Buffer.from(bytes, num, len);
    if (!own) {
      bytes = bytes.slice(num, num + len);
      num = 0;
    }
    if (kind === ARRAYBUFFER) return bytes;
    if (kind === SERIALIZED) {
      const v = v8().deserialize(Buffer.from(bytes, num, len));
      return rejected ? reviveValue(v) : v;
    }
    const ctor = typedArrays[kind - TYPED]!;
    return new ctor(bytes, num, len / ctor.BYTES_PER_ELEMENT);
  }
  switch (kind) {
    case UNDEFINED:
      return undefined;
    case NULL:
      return null;
    case FALSE:
      return false;
    case TRUE:
      return true;
    case NUMBER:
      return num;
    case SENTINEL: {
      const s = sentinels[num];
      if (s === undefined) throw stateError(`unknown sentinel error ${num}`, 'ERR_INTERNAL_ASSERTION');
      return s;
    }
    case FAILURE:
      return num === codes.FAILURE_UNKNOWN_TASK
        ? stateError('the poller has no task with this index', 'ERR_UNKNOWN_TASK')
        : systemError(-12, 'malloc'); // ENOMEM: the value could not be made
    default:
      return value; // a string, made by the binding
  }
}

// ---- the owner's half ----

/**
 * The tasks other threads may run on a poller, by name (see {@link Poller.handle}):
 * each takes at most one parameter, which arrives structured-cloned, and its result
 * (or what it throws) goes back the same way.
 *
 * @example
 * ```ts
 * const tasks = {
 *   register: (fd: number) => { poller.addRead({ fd, callback: onData }); },
 *   stop: () => ErrEngineShutdown,
 * } satisfies PollerTasks;
 * ```
 * @category Threads
 */
export type PollerTasks = Record<string, (param: never) => unknown>;

/**
 * The tasks of a handle whose types are not known (the default of {@link PollerHandle}
 * and {@link RemotePoller}): any name, an optional param of any type; the poller checks
 * names at run time.
 *
 * @example
 * ```ts
 * const remote: RemotePoller<AnyTasks> = connectPoller(workerData.handle);
 * await remote.trigger(Priority.High, 'anything', { any: 'param' });
 * ```
 * @category Threads
 */
export type AnyTasks = Record<string, (param?: unknown) => unknown>;

declare const taskTypes: unique symbol;

/**
 * What {@link Poller.handle} returns: plain data (an id, a random token and the task
 * names) that reaches a poller from any thread. Pass it as `workerData` or in a
 * message, then {@link connectPoller} it. The type parameter carries the tasks' names
 * and parameter types to {@link RemotePoller.trigger}; it does not exist at run time.
 *
 * A handle stays valid until its poller closes; after that, and for a forged or
 * garbled one, triggers reject with `ErrPollerClosed`. Ids are never reused, so a
 * handle of a closed poller never reaches a later one.
 *
 * @example
 * ```ts
 * const handle = poller.handle({ register: (fd: number) => { poller.addRead({ fd, callback }); } });
 * new Worker(file, { workerData: { handle } });
 * ```
 * @category Threads
 */
export interface PollerHandle<T extends PollerTasks = AnyTasks> {
  /** The poller's registration: a number never given to another poller. */
  readonly id: number;
  /** Random: an id alone does not reach a poller. */
  readonly token: string;
  /** The names of the tasks the poller offers. */
  readonly tasks: readonly string[];
  /** @hidden Carries the task types (never set). */
  readonly [taskTypes]?: T;
}

/** The most remote tasks one chores round takes in (RemoteOwner.drain). */
const MAX_TAKEN_PER_ROUND = 16 * 1024;

/** Replies buffered in one round: flushed to the binding once per microtask. */
export class RemoteOwner implements RemoteSink {
  readonly handle: PollerHandle;
  readonly #native: NativePoller;
  readonly #tasks: readonly ((param: unknown) => unknown)[];
  readonly #hdr = new Float64Array(ENTRY * 1024);
  readonly #values = ownSlots(1024 + 1);
  readonly #replies = new Batch();
  #flushQueued = false;
  #closed = false;
  readonly #flush = (): void => this.flush();

  constructor(native: NativePoller, tasks: object) {
    validateObject(tasks, 'tasks');
    const names = Object.keys(tasks);
    if (names.length > codes.MAX_TASKS) throw rangeError(`a poller offers at most ${codes.MAX_TASKS} tasks; got ${names.length}`);
    const fns = names.map((name) => {
      const fn = (tasks as Record<string, unknown>)[name];
      if (typeof fn !== 'function') {
        const err = new TypeError(`The "tasks.${name}" property must be of type function. Received ${typeof fn}`) as TypeError & { code: string };
        err.code = 'ERR_INVALID_ARG_TYPE';
        throw err;
      }
      return fn as (param: unknown) => unknown;
    });
    const token = randomBytes(16).toString('hex');
    const id = native.remoteOpen(names.length, JSON.stringify(names), token);
    if (id === -9) throw ErrPollerClosed; // EBADF: closed meanwhile
    if (id < 0) throw stateError('this poller has a handle already: handle() can be called once per poller', 'ERR_POLLER_HANDLE_EXISTS');
    this.#native = native;
    this.#tasks = fns;
    this.handle = Object.freeze({ id, token, tasks: Object.freeze(names) });
  }

  /**
   * Moves the tasks other threads queued into `urgent` and `normal`, by gnet's rule: the
   * urgent queue unless low priority and the urgent queue holds MaxPollEventsCap tasks.
   * At most MAX_TAKEN_PER_ROUND of them, from what was queued when the round began:
   * producers on other threads can queue faster than one thread runs tasks, and a round
   * that took until the queue is empty would never end (nothing runs meanwhile, the loop
   * stalls, memory grows). Returns true when tasks were left for the next round (in
   * order: they are taken before anything queued after them).
   */
  drain(urgent: TaskQueue, normal: TaskQueue): boolean {
    const hdr = this.#hdr;
    const values = this.#values;
    const cap = hdr.length / ENTRY;
    // The binding takes from its queue on the round's first call only.
    for (let refill = true, taken = 0; ; refill = false) {
      if (taken >= MAX_TAKEN_PER_ROUND) return true;
      const n = this.#native.remoteTake(hdr, values, refill);
      // No user code can run inside remoteTake (values has no setter to find), but the
      // check costs nothing and is what keeps a task from running after close: the
      // binding has answered what it took then.
      if (n === 0 || this.#closed) return false;
      taken += n;
      const chunk = values[cap] as Buffer | undefined;
      values[cap] = undefined;
      for (let i = 0, at = 0; i < n; i++, at += ENTRY) {
        const slot = hdr[at]!;
        const meta = hdr[at + 1]!;
        const kind = hdr[at + 2]!;
        let param: unknown;
        if (kind === NUMBER) {
          param = hdr[at + 3];
        } else {
          const value = values[i];
          values[i] = undefined;
          try {
            param = decode(kind, hdr[at + 3]!, hdr[at + 4]!, value, chunk);
          } catch (e) {
            this.fail(slot, e);
            continue;
          }
        }
        const fn = this.#tasks[meta >>> 1]!;
        if ((meta & 1) !== 0 && urgent.length >= MaxPollEventsCap) normal.push(fn, param, slot, this, undefined);
        else urgent.push(fn, param, slot, this, undefined);
      }
    }
  }

  /**
   * The task returned `result`: its answer goes back to the caller. Never throws, and
   * nothing it starts can reject unhandled: whatever a task returns is its caller's
   * business and must not stop this loop (issue 18 §3.1). Everything it does to
   * `result` that can run the task's code (reading `then`, a Proxy's traps, getters the
   * copy reads) is inside a try, and a thenable is adopted by a promise's own resolve
   * function, which catches what `then` throws (Promise.resolve would read
   * `constructor` first, outside any try, and call `then` itself).
   */
  done(slot: number, result: unknown): void {
    if (this.#closed) return;
    try {
      if (result !== null && (typeof result === 'object' || typeof result === 'function')) {
        if (typeof (result as { then?: unknown }).then === 'function') {
          // Settles the caller's promise when it does, as a local trigger's.
          new Promise((resolve) => resolve(result)).then(
            (v) => this.done(slot, v),
            (e: unknown) => this.fail(slot, e),
          );
          return;
        }
      }
      if (slot < 0) return; // post(): nobody waits for the answer
      this.#replies.add(slot, 0, result);
    } catch (e) {
      this.fail(slot, e); // reading `then` threw, or the result cannot be cloned
      return;
    }
    this.#scheduleFlush();
  }

  /** The task threw `error`, or its promise rejected: the caller's promise rejects with a copy. Never throws. */
  fail(slot: number, error: unknown): void {
    if (this.#closed || slot < 0) return;
    addError(this.#replies, slot, error);
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(this.#flush);
  }

  /** Sends the buffered answers. */
  flush(): void {
    this.#flushQueued = false;
    const replies = this.#replies;
    if (replies.count === 0) return;
    try {
      if (!this.#closed) this.#native.remoteReply(replies.hdr, replies.count, replies.staging);
    } finally {
      replies.reset();
    }
  }

  /** The poller closes: sends what is buffered; the binding answers the rest. */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
  }
}

// ---- the caller's half ----

/** One entry per reply chunk the channel delivers. */
const REPLY_ENTRIES = 4096;

/** The calls of this thread waiting for their replies, by id. */
// What `new Promise(capture)` hands over: a module-level executor, so that a call costs
// the promise and its two resolving functions, and no closure or record of its own (with
// 200,000 calls in flight, what each one allocates is what the collector copies).
let capturedResolve: (value: unknown) => void = noop;
let capturedReject: (error: unknown) => void = noop;
function capture(resolve: (value: unknown) => void, reject: (error: unknown) => void): void {
  capturedResolve = resolve;
  capturedReject = reject;
}

/**
 * This thread's side of every RemotePoller in it: one reply channel, the promises
 * waiting on it, and whether it holds the thread open (only while calls are pending).
 */
class CallerThread {
  readonly #hdr = new Float64Array(ENTRY * REPLY_ENTRIES);
  readonly #values = ownSlots(REPLY_ENTRIES + 1);
  // Without prototypes, and written by index only (no push/pop): storing a call finds no
  // inherited setter, so no user code runs while a trigger is queued or settled.
  readonly #resolves = Object.setPrototypeOf([], null) as (((value: unknown) => void) | undefined)[];
  readonly #rejects = Object.setPrototypeOf([], null) as (((error: unknown) => void) | undefined)[];
  readonly #promises = Object.setPrototypeOf([], null) as (Promise<unknown> | undefined)[];
  readonly #freeIds = Object.setPrototypeOf([], null) as number[];
  #free = 0;
  #count = 0;
  #channel: RemoteChannel | undefined;
  /** The open Outbox of each poller (by handle id) this thread sends to. */
  readonly #outboxes = new Map<number, Outbox>();

  outbox(id: number): Outbox | undefined {
    return this.#outboxes.get(id);
  }

  open(outbox: Outbox): Outbox {
    this.#outboxes.set(outbox.id, outbox);
    return outbox;
  }

  forget(outbox: Outbox): void {
    if (this.#outboxes.get(outbox.id) === outbox) this.#outboxes.delete(outbox.id);
  }

  get channel(): RemoteChannel {
    this.#channel ??= new binding.RemoteChannel((n) => this.#onReplies(n), this.#hdr, this.#values);
    return this.#channel;
  }

  /** The id of the call call() made last. */
  lastId = 0;

  /** A promise for a new call, whose id is then lastId; the channel holds the thread open while any is pending. */
  call(): Promise<unknown> {
    const promise = new Promise(capture);
    const id = this.#free > 0 ? this.#freeIds[--this.#free]! : this.#resolves.length;
    this.#resolves[id] = capturedResolve;
    this.#rejects[id] = capturedReject;
    this.#promises[id] = promise;
    this.lastId = id;
    if (this.#count++ === 0) this.channel.setRef(true);
    return promise;
  }

  settle(id: number, ok: boolean, value: unknown): void {
    const resolve = this.#resolves[id];
    if (resolve === undefined) return;
    const reject = this.#rejects[id]!;
    const promise = this.#promises[id]!;
    this.#resolves[id] = this.#rejects[id] = this.#promises[id] = undefined;
    this.#freeIds[this.#free++] = id;
    if (--this.#count === 0) this.#channel?.setRef(false);
    if (ok) {
      resolve(value);
      return;
    }
    // As a local trigger's at close: fire-and-forget triggers (gnet style) must not
    // crash the process when the poller goes away.
    if (value === ErrPollerClosed) promise.catch(noop);
    reject(value);
  }

  #onReplies(n: number): void {
    const hdr = this.#hdr;
    const values = this.#values;
    const chunk = values[REPLY_ENTRIES] as Buffer | undefined;
    values[REPLY_ENTRIES] = undefined;
    for (let i = 0, at = 0; i < n; i++, at += ENTRY) {
      const id = hdr[at]!;
      const kind = hdr[at + 2]!;
      if (kind === NUMBER) {
        this.settle(id, true, hdr[at + 3]);
        continue;
      }
      const value = values[i];
      values[i] = undefined;
      let decoded: unknown;
      try {
        decoded = decode(kind & ~ERROR, hdr[at + 3]!, hdr[at + 4]!, value, chunk, (kind & ERROR) !== 0);
      } catch (e) {
        this.settle(id, false, e);
        continue;
      }
      this.settle(id, (kind & ERROR) === 0, decoded);
    }
  }
}

/**
 * A promise rejected with ErrPollerClosed and marked handled: an owner closing is
 * ordinary shutdown, and a fire-and-forget trigger (gnet style) must not crash its
 * thread through an unhandled rejection, on this path or any other (issue 18 §3.3).
 */
function closedRejection(): Promise<never> {
  const p = Promise.reject(ErrPollerClosed);
  p.catch(noop);
  return p;
}

let thisThread: CallerThread | undefined;
const constructorKey = Symbol('RemotePoller');

/**
 * What this thread sends to one poller: the staging every RemotePoller of that poller
 * in this thread shares, so that their triggers and posts reach it in the order they
 * were made (FIFO per thread, however many RemotePollers of one handle it holds), and
 * the one native link they go through. Lives while any of those RemotePollers is open.
 */
class Outbox {
  readonly batch = new Batch();
  /** undefined once the poller was found gone (or every member closed). */
  link: RemoteLink | undefined;
  members = 0;
  #flushQueued = false;
  readonly #flush = (): void => this.send();

  constructor(
    readonly id: number,
    link: RemoteLink,
    readonly thread: CallerThread,
  ) {
    this.link = link;
  }

  /** Sends at the end of this tick (one native call for the tick's triggers and posts). */
  schedule(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(this.#flush);
  }

  /** Sends what is staged in one native call. */
  send(): void {
    this.#flushQueued = false;
    const batch = this.batch;
    const n = batch.count;
    if (n === 0) return;
    try {
      const queued = this.link === undefined ? 0 : this.link.flush(batch.hdr, n, batch.staging);
      if (queued < 0) {
        this.#rejectFrom(0, systemError(queued, 'malloc'));
      } else if (queued < n) {
        // The poller went away: what was queued is answered by it, the rest here.
        this.release();
        this.#rejectFrom(queued, ErrPollerClosed);
      }
    } catch (e) {
      this.#rejectFrom(0, e);
    } finally {
      batch.reset();
    }
  }

  #rejectFrom(from: number, reason: unknown): void {
    const { hdr, count } = this.batch;
    for (let i = from; i < count; i++) {
      const id = hdr[i * ENTRY]!;
      if (id !== NO_REPLY) this.thread.settle(id, false, reason); // a post has nobody to tell
    }
  }

  /** Lets go of the poller: every member reads as disconnected from now on. */
  release(): void {
    this.link?.close();
    this.link = undefined;
    this.thread.forget(this);
  }
}

/** Where a RemotePoller stands; the transitions are in its constructor and close(). */
const enum LinkState {
  /** Triggers are staged in its Outbox (which may find the poller gone: see `connected`). */
  Connected,
  /** The poller was gone (closed, its thread ended) or never existed at connectPoller. */
  Gone,
  /** close() was called: triggers reject with ErrPollerClosed, posts return false. */
  Closed,
}

/**
 * The arguments after the task name in {@link RemotePoller.trigger}: none for a task that
 * takes none, its one parameter otherwise (optional if the task's is).
 *
 * @example
 * ```ts
 * type A = TaskParams<(fd: number) => void>; // [fd: number]
 * type B = TaskParams<() => Error>;          // []
 * ```
 * @category Threads
 */
export type TaskParams<F> = F extends (...args: infer A) => unknown ? A : never;
/**
 * What a remote trigger's promise resolves with: the task's awaited result.
 *
 * @example
 * ```ts
 * type R = TaskResult<(fd: number) => Promise<boolean>>; // boolean
 * ```
 * @category Threads
 */
export type TaskResult<F> = F extends (...args: never[]) => infer R ? Awaited<R> : never;

/**
 * A poller of another thread (or of this one), reached through its
 * {@link PollerHandle}: gnet's `Trigger` from any goroutine. Make one with
 * {@link connectPoller}.
 *
 * @example
 * ```ts
 * const remote = connectPoller(workerData.handle as PollerHandle<Tasks>);
 * await remote.trigger(Priority.High, 'register', fd);
 * remote.close();
 * ```
 * @category Threads
 */
export class RemotePoller<T extends PollerTasks = AnyTasks> {
  #state: LinkState;
  readonly #outbox: Outbox | undefined;
  readonly #names: ReadonlyMap<string, number>;
  readonly #thread: CallerThread;

  /** @internal Use {@link connectPoller}. */
  constructor(outbox: Outbox | undefined, names: readonly string[], key: symbol) {
    if (key !== constructorKey || thisThread === undefined) {
      const err = new TypeError('RemotePoller cannot be constructed directly: use connectPoller()') as TypeError & { code: string };
      err.code = 'ERR_ILLEGAL_CONSTRUCTOR';
      throw err;
    }
    this.#thread = thisThread;
    this.#outbox = outbox;
    this.#state = outbox === undefined ? LinkState.Gone : LinkState.Connected;
    if (outbox !== undefined) outbox.members++;
    this.#names = new Map(names.map((name, i) => [name, i]));
  }

  /**
   * Whether triggers can still reach the poller: false after {@link RemotePoller.close},
   * or once a trigger or post found the poller closed (or its thread gone).
   */
  get connected(): boolean {
    return this.#live() !== undefined;
  }

  /** The names of the tasks the poller offers (none once disconnected). */
  get tasks(): string[] {
    return [...this.#names.keys()];
  }

  /** The outbox while triggers can reach the poller. */
  #live(): Outbox | undefined {
    const outbox = this.#outbox;
    return this.#state === LinkState.Connected && outbox!.link !== undefined ? outbox : undefined;
  }

  /**
   * Queues the task named `task` on the poller with `param`, as the poller's own
   * {@link Poller.trigger} would: the same urgent and normal queues and gnet's rules.
   * High-priority tasks from one thread run in the order that thread triggered (or
   * posted) them, across every RemotePoller of the same poller in it. `param` is copied
   * (structured clone; numbers, strings, Buffers, typed arrays and ArrayBuffers
   * directly), and so is the result. Triggers of one tick go to the poller together, at
   * the end of the tick. For a hand-off whose result nobody needs, {@link RemotePoller.post}
   * costs less: no promise and no reply.
   *
   * @param priority - `Priority.High` or `Priority.Low`, as for {@link Poller.trigger}.
   * @param task - the name of one of the tasks the poller gave to {@link Poller.handle}.
   * @param param - the task's parameter, when it takes one (copied).
   * @returns a promise of the task's result; it rejects with what the task throws, and
   * with `ErrPollerClosed` when the poller closes (or its thread ends) first, or has.
   * Rejections with `ErrPollerClosed` are marked handled, so a fire-and-forget trigger
   * (`void remote.trigger(...)`) never crashes its thread when the poller closes.
   * @throws (rejects) TypeError/RangeError for a bad priority or task name (code
   * `ERR_UNKNOWN_TASK` for a name the poller does not offer), and the DataCloneError
   * `v8.serialize` gives for a param that cannot be copied (a function, a Proxy, a
   * SharedArrayBuffer or a view of one: code `ERR_DATA_CLONE`).
   * @example
   * ```ts
   * const count = await remote.trigger(Priority.Low, 'countConnections');
   * await remote.trigger(Priority.High, 'register', fd);
   * ```
   */
  trigger<K extends keyof T & string>(priority: Priority, task: K, ...param: TaskParams<T[K]>): Promise<TaskResult<T[K]>>;
  trigger(priority: Priority, task: string, param?: unknown): Promise<unknown> {
    let index: number;
    try {
      index = this.#taskIndex(priority, task);
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.#live() === undefined) return closedRejection();
    const thread = this.#thread;
    const promise = thread.call();
    const id = thread.lastId;
    const outbox = this.#outbox!;
    try {
      outbox.batch.add(id, priority | (index << 1), param);
    } catch (e) {
      thread.settle(id, false, e);
      return promise;
    }
    // Copying the param ran the caller's code (getters), which may have closed this
    // RemotePoller (sending what was staged before this call): this call is not sent.
    if (this.#live() === undefined) {
      outbox.batch.dropLast();
      thread.settle(id, false, ErrPollerClosed);
      return promise;
    }
    outbox.schedule();
    return promise;
  }

  /**
   * Queues the task named `task` on the poller with `param`, and forgets it: gnet's
   * `Trigger` as a hand-off (an accepted fd to the loop that will own it, a tick), with
   * no promise and no reply. What the task returns is dropped; what it throws is
   * reported on the `netpoll:poller` diagnostics channel (`source: 'task'`), as a local
   * task's is. Posts and triggers of one thread reach the poller in the order they were
   * made, and go to it together at the end of the tick.
   *
   * @param priority - `Priority.High` or `Priority.Low`, as for {@link Poller.trigger}.
   * @param task - the name of one of the tasks the poller gave to {@link Poller.handle}.
   * @param param - the task's parameter, when it takes one (copied, as for
   * {@link RemotePoller.trigger}).
   * @returns true when the task was queued (it is sent at the end of this tick); false
   * when this RemotePoller is closed or knows the poller is (a trigger or post of an
   * earlier tick found it closed, or its thread gone). A queued task still does not run
   * if the poller closes before it does; nobody is told then.
   * @throws TypeError/RangeError for a bad priority or task name (code `ERR_UNKNOWN_TASK`
   * for a name the poller does not offer), and the DataCloneError `v8.serialize` gives
   * for a param that cannot be copied (code `ERR_DATA_CLONE`). Never `ErrPollerClosed`.
   * @example
   * ```ts
   * // The acceptor hands each connection to the loop that will own it.
   * if (!remote.post(Priority.High, 'register', fd)) close(fd); // that loop is gone
   * ```
   */
  post<K extends keyof T & string>(priority: Priority, task: K, ...param: TaskParams<T[K]>): boolean;
  post(priority: Priority, task: string, param?: unknown): boolean {
    const index = this.#taskIndex(priority, task);
    const outbox = this.#live();
    if (outbox === undefined) return false;
    outbox.batch.add(NO_REPLY, priority | (index << 1), param);
    if (this.#live() === undefined) {
      outbox.batch.dropLast(); // the param's getters closed this RemotePoller
      return false;
    }
    outbox.schedule();
    return true;
  }

  /** The index of `task` on the poller; throws for a bad priority or an unknown name. */
  #taskIndex(priority: Priority, task: string): number {
    if ((priority !== 0 && priority !== 1) || typeof task !== 'string') {
      validateInteger(priority, 'priority', 0, 1);
      if (typeof task !== 'string') {
        const err = new TypeError(`The "task" argument must be of type string. Received ${typeof task}`) as TypeError & { code: string };
        err.code = 'ERR_INVALID_ARG_TYPE';
        throw err;
      }
    }
    const index = this.#names.get(task);
    if (index === undefined) {
      if (this.#state !== LinkState.Connected) return -1; // disconnected: the caller answers ErrPollerClosed or false
      const err = new TypeError(`The poller offers no task named ${JSON.stringify(task)}; it offers ${[...this.#names.keys()].map((n) => JSON.stringify(n)).join(', ') || 'none'}`) as TypeError & { code: string };
      err.code = 'ERR_UNKNOWN_TASK';
      throw err;
    }
    return index;
  }

  /**
   * Sends what this thread triggered and posted to the poller this tick, then lets go of
   * it: later triggers reject with `ErrPollerClosed`, later posts return false. Calls
   * already sent still settle. Idempotent. A RemotePoller never keeps its thread alive
   * by itself, only while calls are pending, so close() is about releasing the poller
   * early, not about exiting.
   *
   * @throws Never.
   * @example
   * ```ts
   * const remote = connectPoller(handle);
   * await remote.trigger(Priority.High, 'stop');
   * remote.close();
   * ```
   */
  close(): void {
    if (this.#state === LinkState.Closed) return;
    const wasConnected = this.#state === LinkState.Connected;
    this.#state = LinkState.Closed;
    const outbox = this.#outbox;
    if (!wasConnected || outbox === undefined) return;
    outbox.send();
    if (--outbox.members === 0 && outbox.link !== undefined) outbox.release();
  }

  /**
   * `using remote = connectPoller(handle)` closes it at the end of the scope.
   *
   * @throws Never.
   * @example
   * ```ts
   * {
   *   using remote = connectPoller(handle);
   *   await remote.trigger(Priority.High, 'stop');
   * }
   * ```
   */
  [Symbol.dispose](): void {
    this.close();
  }
}

function invalidHandle(why: string, cause?: unknown): TypeError {
  const err = new TypeError(`The "handle" argument must be a handle from poller.handle(): ${why}`, cause === undefined ? undefined : { cause }) as TypeError & { code: string };
  err.code = 'ERR_INVALID_ARG_TYPE';
  return err;
}

/**
 * Connects to the poller a {@link PollerHandle} belongs to, from any thread (the
 * poller's own included). The handle arrives as data: checked here, then looked up in
 * a process-wide registry. A handle of a poller that has closed (or whose thread
 * ended), or a forged one with a well-formed id and token, gives a RemotePoller whose
 * triggers reject with `ErrPollerClosed`.
 *
 * @param handle - what {@link Poller.handle} returned, possibly after crossing threads.
 * @returns a RemotePoller; its `connected` tells whether the poller was found.
 * @throws TypeError when `handle` is not shaped as a handle (an object with a positive
 * integer `id` and a string `token`), or reading it throws.
 * @example
 * ```ts
 * import { workerData } from 'node:worker_threads';
 * const remote = connectPoller(workerData.handle as PollerHandle<Tasks>);
 * const result = await remote.trigger(Priority.High, 'register', fd);
 * ```
 * @category Threads
 */
export function connectPoller<T extends PollerTasks = AnyTasks>(handle: PollerHandle<T>): RemotePoller<T> {
  if (handle === null || typeof handle !== 'object') throw invalidHandle(`received ${handle === null ? 'null' : typeof handle}`);
  let id: unknown;
  let token: unknown;
  try {
    ({ id, token } = handle);
  } catch (e) {
    throw invalidHandle('reading it threw', e);
  }
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) throw invalidHandle('its id is not a positive integer');
  if (typeof token !== 'string' || token.length > 256) throw invalidHandle('its token is not a short string');
  thisThread ??= new CallerThread();
  const link = thisThread.channel.connect(id, token);
  if (typeof link === 'number') return new RemotePoller<T>(undefined, [], constructorKey);
  const names = JSON.parse(link.names) as string[];
  // Every RemotePoller of one poller in this thread shares one Outbox (FIFO per thread):
  // the new link only proved the token, and goes.
  let outbox = thisThread.outbox(id);
  if (outbox === undefined) outbox = thisThread.open(new Outbox(id, link, thisThread));
  else link.close();
  return new RemotePoller<T>(outbox, names, constructorKey);
}
