// The owner's half of remote triggers: the tasks a poller offers other threads
// (handle()), taken into its queues each chores round and answered, in one native
// call per round, to every caller thread (csrc/binding_remote.cc). Imports run one way:
// src/remote.ts (the caller's half) -> this file -> src/remote-codec.ts.
import { randomBytes } from 'node:crypto';
import type { NativePoller } from '../typings/binding.js';
import { ErrPollerClosed, stateError } from './errors.js';
import { validateObject } from './validate.js';
import { MaxPollEventsCap } from './events.js';
import type { RemoteSink, TaskQueue } from './queue.js';
import { Batch, ENTRY, NUMBER, addError, codes, decode, ownSlots, rangeError } from './remote-codec.js';

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
    try {
      if (result !== null && (typeof result === 'object' || typeof result === 'function')) {
        if (typeof (result as { then?: unknown }).then === 'function') {
          // Settles the caller's promise when it does, as a local trigger's. Adopted even
          // when nobody will hear the answer (a post, or the task closed the poller): a
          // promise it returned must not reject unhandled on this thread.
          new Promise((resolve) => resolve(result)).then(
            (v) => this.done(slot, v),
            (e: unknown) => this.fail(slot, e),
          );
          return;
        }
      }
      if (this.#closed || slot < 0) return; // closed: the binding answered; post(): nobody waits
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
