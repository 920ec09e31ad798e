// Trigger from any thread, the caller's half: connectPoller() turns a poller's handle
// into a RemotePoller, whose triggers and posts of one tick cross in one native call,
// and whose answers come back on this thread's reply channel (csrc/binding_remote.cc).
// The wire codec is src/remote-codec.ts; the poller's half, src/remote-owner.ts.
import { binding } from './binding.js';
import type { RemoteChannel, RemoteLink } from '../typings/binding.js';
import { ErrPollerClosed, systemError } from './errors.js';
import { validateInteger } from './validate.js';
import type { Priority } from './queue.js';
import { Batch, ENTRY, ERROR, NO_REPLY, NUMBER, decode, noop, ownSlots } from './remote-codec.js';
import type { AnyTasks, PollerHandle, PollerTasks } from './remote-owner.js';

export type { AnyTasks, PollerHandle, PollerTasks } from './remote-owner.js';

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
