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
import type { Priority } from './queue.js';
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
const { UNDEFINED, NULL, FALSE, TRUE, NUMBER, STRING, SERIALIZED, SENTINEL, ARRAYBUFFER, BUFFER, FAILURE, TYPED, ERROR, ENTRY } = codes;

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
/** The most payload bytes one value may carry (a task's entry stores the length in 32 bits). */
const MAX_PAYLOAD = 0xffffffff;

/** Entries and payload bytes on their way to another thread: one flush's worth. */
class Batch {
  hdr = new Float64Array(ENTRY * 64);
  count = 0;
  staging = Buffer.allocUnsafe(4096);
  used = 0;

  /** Appends an entry for `value`; throws (appending nothing) when it cannot be cloned. */
  add(id: number, meta: number, value: unknown, kindFlag = 0): void {
    // What runs the caller's code (the getters v8.serialize calls) runs first, before the
    // batch is touched: that code may trigger, send or close in turn, re-entering it.
    const cloned = takesFastPath(value) ? undefined : serialize(value);
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

  /** Forgets what was sent; gives back buffers a large batch grew. */
  reset(): void {
    this.count = 0;
    this.used = 0;
    if (this.staging.length > KEEP_STAGING) this.staging = Buffer.allocUnsafe(4096);
    if (this.hdr.length > KEEP_ENTRIES * ENTRY) this.hdr = new Float64Array(ENTRY * 64);
  }
}

function noop(): void {}

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
  readonly #values: unknown[] = [];
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
      if (n === 0) return false;
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

  done(slot: number, result: unknown): void {
    if (this.#closed) return;
    if (result !== null && (typeof result === 'object' || typeof result === 'function')) {
      // A thenable settles the caller's promise when it does, as a local trigger's.
      let then: unknown;
      try {
        then = (result as { then?: unknown }).then;
      } catch (e) {
        this.fail(slot, e);
        return;
      }
      if (typeof then === 'function') {
        Promise.resolve(result).then(
          (v) => this.done(slot, v),
          (e: unknown) => this.fail(slot, e),
        );
        return;
      }
    }
    try {
      this.#replies.add(slot, 0, result);
    } catch (e) {
      this.fail(slot, e); // the result cannot be cloned
      return;
    }
    this.#scheduleFlush();
  }

  fail(slot: number, error: unknown): void {
    if (this.#closed) return;
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
interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  promise: Promise<unknown>;
}

/**
 * This thread's side of every RemotePoller in it: one reply channel, the promises
 * waiting on it, and whether it holds the thread open (only while calls are pending).
 */
class CallerThread {
  readonly #hdr = new Float64Array(ENTRY * REPLY_ENTRIES);
  readonly #values: unknown[] = [];
  readonly #pending: (Pending | undefined)[] = [];
  readonly #freeIds: number[] = [];
  #count = 0;
  #channel: RemoteChannel | undefined;

  get channel(): RemoteChannel {
    this.#channel ??= new binding.RemoteChannel((n) => this.#onReplies(n), this.#hdr, this.#values);
    return this.#channel;
  }

  /** A call id for a promise; the channel holds the thread open while any is pending. */
  add(p: Pending): number {
    const id = this.#freeIds.length > 0 ? this.#freeIds.pop()! : this.#pending.length;
    this.#pending[id] = p;
    if (this.#count++ === 0) this.channel.setRef(true);
    return id;
  }

  settle(id: number, ok: boolean, value: unknown): void {
    const p = this.#pending[id];
    if (p === undefined) return;
    this.#pending[id] = undefined;
    this.#freeIds.push(id);
    if (--this.#count === 0) this.#channel?.setRef(false);
    if (ok) {
      p.resolve(value);
      return;
    }
    // As a local trigger's at close: fire-and-forget triggers (gnet style) must not
    // crash the process when the poller goes away.
    if (value === ErrPollerClosed) p.promise.catch(noop);
    p.reject(value);
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

let thisThread: CallerThread | undefined;
const constructorKey = Symbol('RemotePoller');

/** Where a RemotePoller stands; the transitions are in connectPoller, #flush and close. */
const enum LinkState {
  /** Triggers are queued on the poller. */
  Connected,
  /** The poller is gone (closed, its thread ended) or never existed: triggers reject with ErrPollerClosed. */
  Gone,
  /** close() was called: triggers reject with ErrPollerClosed. */
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
  #link: RemoteLink | undefined;
  readonly #names: ReadonlyMap<string, number>;
  readonly #batch = new Batch();
  readonly #thread: CallerThread;
  #flushQueued = false;
  readonly #flush = (): void => this.#send();

  /** @internal Use {@link connectPoller}. */
  constructor(link: RemoteLink | undefined, key: symbol) {
    if (key !== constructorKey || thisThread === undefined) {
      const err = new TypeError('RemotePoller cannot be constructed directly: use connectPoller()') as TypeError & { code: string };
      err.code = 'ERR_ILLEGAL_CONSTRUCTOR';
      throw err;
    }
    this.#thread = thisThread;
    this.#link = link;
    this.#state = link === undefined ? LinkState.Gone : LinkState.Connected;
    const names = link === undefined ? [] : (JSON.parse(link.names) as string[]);
    this.#names = new Map(names.map((name, i) => [name, i]));
  }

  /**
   * Whether triggers can still reach the poller: false after {@link RemotePoller.close},
   * or once a trigger found the poller closed (or its thread gone).
   */
  get connected(): boolean {
    return this.#state === LinkState.Connected;
  }

  /** The names of the tasks the poller offers (none once disconnected). */
  get tasks(): string[] {
    return [...this.#names.keys()];
  }

  /**
   * Queues the task named `task` on the poller with `param`, as the poller's own
   * {@link Poller.trigger} would: the same urgent and normal queues and gnet's rules,
   * and high-priority tasks from this thread run in the order they were triggered.
   * `param` is copied (structured clone; numbers, strings, Buffers, typed arrays and
   * ArrayBuffers directly), and so is the result. Triggers of one tick go to the
   * poller together, at the end of the tick.
   *
   * @param priority - `Priority.High` or `Priority.Low`, as for {@link Poller.trigger}.
   * @param task - the name of one of the tasks the poller gave to {@link Poller.handle}.
   * @param param - the task's parameter, when it takes one (copied).
   * @returns a promise of the task's result; it rejects with what the task throws, and
   * with `ErrPollerClosed` when the poller closes (or its thread ends) first, or has.
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
    if ((priority !== 0 && priority !== 1) || typeof task !== 'string') {
      try {
        validateInteger(priority, 'priority', 0, 1);
        if (typeof task !== 'string') {
          const err = new TypeError(`The "task" argument must be of type string. Received ${typeof task}`) as TypeError & { code: string };
          err.code = 'ERR_INVALID_ARG_TYPE';
          throw err;
        }
      } catch (e) {
        return Promise.reject(e);
      }
    }
    if (this.#state !== LinkState.Connected) return Promise.reject(ErrPollerClosed);
    const index = this.#names.get(task);
    if (index === undefined) {
      const err = new TypeError(`The poller offers no task named ${JSON.stringify(task)}; it offers ${[...this.#names.keys()].map((n) => JSON.stringify(n)).join(', ') || 'none'}`) as TypeError & { code: string };
      err.code = 'ERR_UNKNOWN_TASK';
      return Promise.reject(err);
    }
    let resolve!: (value: unknown) => void;
    let reject!: (error: unknown) => void;
    const promise = new Promise<unknown>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const pending: Pending = { resolve, reject, promise };
    const thread = this.#thread;
    const id = thread.add(pending);
    try {
      this.#batch.add(id, priority | (index << 1), param);
    } catch (e) {
      thread.settle(id, false, e);
      return promise;
    }
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flush);
    }
    return promise;
  }

  /** Sends this tick's triggers in one native call. */
  #send(): void {
    this.#flushQueued = false;
    const batch = this.#batch;
    const n = batch.count;
    if (n === 0) return;
    try {
      const queued = this.#link === undefined ? 0 : this.#link.flush(batch.hdr, n, batch.staging);
      if (queued < 0) {
        this.#rejectBatch(0, systemError(queued, 'malloc'));
      } else if (queued < n) {
        // The poller went away: what was queued is answered by it, the rest here.
        this.#disconnect(LinkState.Gone);
        this.#rejectBatch(queued, ErrPollerClosed);
      }
    } catch (e) {
      this.#rejectBatch(0, e);
    } finally {
      batch.reset();
    }
  }

  #rejectBatch(from: number, reason: unknown): void {
    const { hdr, count } = this.#batch;
    for (let i = from; i < count; i++) this.#thread.settle(hdr[i * ENTRY]!, false, reason);
  }

  #disconnect(state: LinkState): void {
    this.#state = state;
    this.#link?.close();
    this.#link = undefined;
  }

  /**
   * Sends what this tick triggered, then lets go of the poller: later triggers reject
   * with `ErrPollerClosed`. Calls already sent still settle. Idempotent. A RemotePoller
   * never keeps its thread alive by itself, only while calls are pending, so close()
   * is about releasing the poller early, not about exiting.
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
    this.#send();
    this.#disconnect(LinkState.Closed);
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
  return new RemotePoller<T>(typeof link === 'number' ? undefined : link, constructorKey);
}
