// The wire codec of remote triggers: how a value crosses threads, mirroring the value
// kinds of csrc/binding_remote.cc (binding.remoteCodes). Both halves use it: the
// caller's (src/remote.ts) for params, the owner's (src/remote-owner.ts) for answers.
//
// A value travels as one entry of a batch: five doubles (id, priority | task << 1,
// kind, num, len) in a Float64Array, plus its bytes in a staging Buffer when it has
// any. Numbers, strings, Buffers, typed arrays and ArrayBuffers are copied as they are
// (the fast paths); anything else goes through v8.serialize (structured clone).
import { types } from 'node:util';
import { binding } from './binding.js';
import { ErrAcceptSocket, ErrEngineShutdown, ErrPollerClosed, stateError, systemError } from './errors.js';

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
export const codes = binding.remoteCodes ?? ({} as typeof binding.remoteCodes);
const { UNDEFINED, NULL, FALSE, TRUE, STRING, SERIALIZED, SENTINEL, ARRAYBUFFER, BUFFER, FAILURE, TYPED } = codes;
/** The kinds and constants both halves read: doubles per entry, a number, the rejection flag, a post's id. */
export const { NUMBER, ERROR, ENTRY, NO_REPLY } = codes;

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
export class Batch {
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

export function noop(): void {}

/**
 * An array of `n` own slots (undefined) and no prototype, for the binding to store
 * values into: storing into an own data property finds no setter, so no user code (an
 * index setter on Array.prototype) runs while the binding delivers tasks or replies.
 * Array.from defines its elements (CreateDataProperty), which runs no setter either.
 */
export function ownSlots(n: number): unknown[] {
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

export function rangeError(message: string): RangeError {
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
export function addError(batch: Batch, id: number, error: unknown): void {
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
export function decode(kind: number, num: number, len: number, value: unknown, chunk: Buffer | undefined, rejected = false): unknown {
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
