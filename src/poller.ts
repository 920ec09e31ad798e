// Poller: registration, the polling loop, dispatch and task rounds; iteration is
// src/iterate.ts (an Iteration per run), triggers from other threads src/remote.ts.
//
// The loop does not own a thread. The native side watches the epoll/kqueue fd
// on this thread's libuv loop and, when it is readable, reads one batch of
// events into a shared Int32Array and calls #onPollBatch (or the running
// Iteration's onBatch) once. Everything else (who gets an event, when polling
// stops, the task queues) is decided here.
import { performance } from 'node:perf_hooks';
import { binding } from './binding.js';
import type { BatchCallback, NativePoller } from '../typings/binding.js';
import { channel, type PollerStats, type PollerStopReason } from './diagnostics.js';
import {
  ErrEngineShutdown,
  ErrPollerClosed,
  abortError,
  ctlError,
  isShutdown,
  isStopError,
  stateError,
  systemError,
  type StopError,
} from './errors.js';
import { validateBoolean, validateFd, validateFunction, validateInteger, validateObject } from './validate.js';
import { MaxAsyncTasksAtOneTime, MaxPollEventsCap, type IOEvent, type IOFlags } from './events.js';
import { Priority, TaskQueue, type TaskFunc } from './queue.js';
import { RemoteOwner, type PollerHandle, type PollerTasks } from './remote-owner.js';
import { Iteration, PollEvent, type EventsOptions, type IterationHost } from './iterate.js';

export { PollEvent, type EventsOptions };
// Priority lives with the queues (as gnet's queue.EventPriority does); re-exported here for
// code that took it from this module.
export { Priority };

/**
 * Handles one event (gnet's `PollEventHandler`). Return `ErrEngineShutdown` or
 * `ErrAcceptSocket` (a {@link StopError}, or an Error whose `cause` chain holds one) to
 * stop polling, or nothing (`undefined`, `null`) to go on. The type allows only these:
 * any other value (`new Error('bad client')`, a number, the Promise of an `async`
 * handler) would not stop the loop, as in gnet; at run time it is reported on the
 * `netpoll:poller` diagnostics channel (an `error` message, `source: 'return'`) and
 * polling goes on. A handler that throws stops polling: the `polling()` promise
 * rejects with what it threw.
 *
 * @example
 * ```ts
 * const onEvent: PollEventHandler = (fd, event, flags) => {
 *   if (isErrorOnlyEvent(event, flags)) return ErrEngineShutdown; // nothing left to read
 *   if (isReadEvent(event) && read(fd, buf) === 0) return ErrEngineShutdown; // data first, then the end
 * };
 * await poller.polling(onEvent);
 * ```
 * @category Poller
 */
export type PollEventHandler = (fd: number, event: IOEvent, flags: IOFlags) => StopError | void | null | undefined;

/**
 * A message on the `netpoll:poller` diagnostics channel ({@link DiagnosticsChannel}): one
 * lifecycle step of one poller, told apart by `type`. Every message carries the `poller`
 * (call its `stats()` for the counters at that moment). Messages are published
 * synchronously, at the step itself: a `stop` arrives before the `polling()` promise settles
 * or the iteration's pending `next()` does, a `close` after everything `close()` ended.
 *
 * - `open`: `openPoller()` opened the poller.
 * - `close`: `close()` closed it (once; a poller garbage-collected without `close()` publishes
 *   nothing).
 * - `start`: `polling()` or an iteration started (`mode`).
 * - `stop`: it ended (`mode`), for `reason` (see {@link PollerStopReason}), with `error`.
 * - `error`: user code threw inside the loop: a `polling()` callback (`source: 'callback'`; a
 *   `stop` with reason `'throw'` follows, unless the callback had closed the poller), or a task
 *   (`source: 'task'`; its `trigger()` promise rejects with `error` and the loop goes on); or a
 *   callback returned a value that is neither nothing (`undefined`, `null`) nor a stop error
 *   (`source: 'return'`, `error` is that value: it does not stop the loop, as in gnet, and
 *   polling goes on).
 * - `resize`: the event list grew (a wait filled it) or shrank (under half was used), `from`
 *   one size `to` another, in gnet's steps between `MinPollEventsCap` and `MaxPollEventsCap`;
 *   the next wait uses the new size.
 *
 * @example
 * ```ts
 * import { subscribe } from 'node:diagnostics_channel';
 * import { DiagnosticsChannel, type PollerDiagnostic } from 'netpoll';
 *
 * subscribe(DiagnosticsChannel, (message) => {
 *   const m = message as PollerDiagnostic;
 *   switch (m.type) {
 *     case 'stop': console.log(`${m.mode} stopped: ${m.reason}`, m.error ?? ''); break;
 *     case 'error': console.log(`a ${m.source} threw`, m.error); break;
 *     case 'resize': console.log(`event list ${m.from} -> ${m.to}`); break;
 *   }
 * });
 * ```
 * @category Diagnostics
 */
export type PollerDiagnostic =
  | {
      /** `openPoller()` opened `poller`. */
      readonly type: 'open';
      /** The poller that was opened. */
      readonly poller: Poller;
    }
  | {
      /** `close()` closed `poller`. */
      readonly type: 'close';
      /** The poller that was closed. */
      readonly poller: Poller;
    }
  | {
      /** `polling()` or an iteration started. */
      readonly type: 'start';
      /** The poller that started. */
      readonly poller: Poller;
      /** `'polling'` for `polling()`, `'iteration'` for `for await` / `events()`. */
      readonly mode: 'polling' | 'iteration';
    }
  | {
      /** `polling()` or an iteration ended. */
      readonly type: 'stop';
      /** The poller that stopped. */
      readonly poller: Poller;
      /** What stopped: `'polling'` or `'iteration'`. */
      readonly mode: 'polling' | 'iteration';
      /** Why (see {@link PollerStopReason}). */
      readonly reason: PollerStopReason;
      /** The stop error, the thrown value, or the failure; undefined for a `break` and for an iteration ended by `close()`. */
      readonly error: unknown;
    }
  | {
      /** A callback or a task threw, or a callback returned something other than nothing or a stop error. */
      readonly type: 'error';
      /** The poller whose callback or task it was. */
      readonly poller: Poller;
      /**
       * `'callback'`: a `polling()` callback threw; `'task'`: a task run by `trigger()` threw;
       * `'return'`: a `polling()` callback returned a value that is neither `undefined`/`null`
       * nor a stop error (ignored by the loop, which goes on).
       */
      readonly source: 'callback' | 'task' | 'return';
      /** What it threw, or what it returned. */
      readonly error: unknown;
    }
  | {
      /** The event list changed size. */
      readonly type: 'resize';
      /** The poller whose event list changed size. */
      readonly poller: Poller;
      /** The size before. */
      readonly from: number;
      /** The size the next kernel wait uses. */
      readonly to: number;
    };

/**
 * An fd and the callback for its events (gnet's `PollAttachment`). The poller
 * remembers the attachment per fd until `delete(fd)`; `polling()` without a
 * callback dispatches each event to its fd's attachment.
 *
 * @example
 * ```ts
 * const pa: PollAttachment = { fd: r, callback: (fd) => { read(fd, buf); } };
 * poller.addRead(pa);
 * poller.attachment(r) === pa; // true
 * ```
 * @category Poller
 */
export interface PollAttachment {
  /** The descriptor to watch: any fd epoll/kqueue accepts (not a regular file on epoll). */
  fd: number;
  /** Called for this fd's events by `polling()` without a callback; optional otherwise. */
  callback?: PollEventHandler | undefined;
}


const { CTL_ADD, CTL_MOD, CTL_DEL, INTEREST_READ, INTEREST_WRITE, INTEREST_EDGE } = binding;
const syscalls = binding.backend.syscalls;

/**
 * What this side knows of a run. The binding's RunState (csrc/binding.cc) is the truth for
 * what it watches; Mode adds what only this side knows (polling or iterating) and must
 * agree with it: Idle with Idle, Polling with Watching, Iterating with Watching or Paused
 * (backpressure), Closed with Closed. #checkMode asserts that at each transition (start,
 * stop, close: per run, never per batch), as libuv asserts its handle flags.
 */
const enum Mode {
  Idle,
  Polling,
  Iterating,
  Closed,
}

/** RunState's numbers, as the binding's runState getter gives them. */
const enum NativeRun {
  Idle = 0,
  Watching = 1,
  Paused = 2,
  Closed = 3,
}

/** What one `polling()` call needs until it settles. */
interface PollRun {
  readonly callback: PollEventHandler | undefined;
  readonly resolve: (err: Error) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * An event-notification poller over epoll (Linux) or kqueue (BSD, macOS): gnet's
 * `netpoll.Poller`, living in this thread's event loop. Create one with
 * {@link openPoller}.
 *
 * @example
 * ```ts
 * const poller = openPoller();
 * const [r, w] = pipe();
 * poller.addRead({ fd: r });
 * write(w, Buffer.from('ping'));
 * const err = await poller.polling((fd, event) => {
 *   if (isReadEvent(event)) return ErrEngineShutdown;
 * });
 * poller.close();
 * ```
 * @category Poller
 */
export class Poller implements AsyncIterable<PollEvent> {
  #native: NativePoller;
  #events: Int32Array;
  /** Shared with the binding: element 0 is 1 while this poller's batch runs; element 1 asks for a wake when it returns. */
  readonly #signals: Int32Array;
  /** Whether a wake asked for during a batch may wait for its end (the loop path). */
  readonly #deferWake: boolean;
  #mode: Mode = Mode.Idle;
  #attachments: (PollAttachment | undefined)[] = [];
  readonly #onTaskError = (error: unknown): void => {
    if (channel.hasSubscribers) publish({ type: 'error', poller: this, source: 'task', error });
  };
  #urgent = new TaskQueue(this.#onTaskError);
  #normal = new TaskQueue(this.#onTaskError);
  /**
   * Whether a wake this side armed has not had its round yet (gnet's wakeupCall), kept
   * here so that a trigger() while one is pending costs no call into the binding. Without
   * a handle this is the flag itself; with one the binding's flag is shared with other
   * threads and this copy is taken from endRound() after every round. Not asserted
   * against the binding (#checkMode is): during a round it is rightly still set though
   * the binding's wake was consumed, and a wake armed while paused or idle waits there.
   */
  #wakePending = false;
  #remote: RemoteOwner | undefined;
  #run: PollRun | undefined;
  #iter: Iteration | undefined;
  #refd = true;
  /** Entries in the shared event list of the batch being dispatched (0 between batches). */
  #batchLength = 0;
  // stats(): counted per batch and per registration, never per event.
  #batches = 0;
  #eventCount = 0;
  #wakes = 0;
  /** The binding's lastBatchTime, kept at close(), when the binding forgets it. */
  #lastBatchTime = -1;
  #registered = 0;
  #capacity: number;
  readonly #onPollBatch = (n: number, woke: boolean, capacity: number): void => {
    this.#countBatch(n, woke, capacity);
    this.#pollBatch(n, woke);
  };
  /** What an iteration (src/iterate.ts) needs of this poller's private state. */
  readonly #iterationHost: IterationHost;

  /** @internal Use {@link openPoller}. */
  constructor(native: NativePoller) {
    if (!(native instanceof binding.NativePoller)) {
      const err = new TypeError('Poller cannot be constructed directly: use openPoller()') as TypeError & { code: string };
      err.code = 'ERR_ILLEGAL_CONSTRUCTOR';
      throw err;
    }
    this.#native = native;
    this.#events = native.events;
    this.#capacity = native.capacity;
    // The two int32 after the event list (see eventList()).
    this.#signals = this.#events.subarray(3 * MaxPollEventsCap, 3 * MaxPollEventsCap + 2);
    this.#deferWake = !native.waiterThread;
    const poller = this;
    this.#iterationHost = {
      events: this.#events,
      begin: (iter) => {
        // Known before the start message goes out: a subscriber that closes the poller
        // there ends this iteration, as it resolves a polling() run.
        this.#iter = iter;
        try {
          this.#begin(Mode.Iterating, (n, woke, capacity) => {
            this.#countBatch(n, woke, capacity);
            iter.onBatch(n, woke);
          });
        } catch (e) {
          if (this.#iter === iter) this.#iter = undefined;
          throw e;
        }
      },
      end: (reason, error) => this.#end(reason, error, 'iteration'),
      chores: () => this.#doChores(),
      resume: () => this.#native.resume(),
      pause: () => this.#native.pause(),
      get resumeSyscall() {
        return poller.#watchSyscall();
      },
      waitSyscall: syscalls.wait,
    };
  }

  /** `'epoll'` or `'kqueue'`: the backend this poller runs on. */
  get backend(): 'epoll' | 'kqueue' {
    return binding.backend.name;
  }

  /**
   * Whether events reach this poller through a waiter thread instead of the event
   * loop watching its descriptor: true when `openPoller({ waiterThread: true })` (or
   * `NETPOLL_WAITER_THREAD=1`) asked for it, and under libkqueue, whose descriptor
   * cannot be watched. Either way events arrive the same: one batch per loop turn.
   *
   * @example
   * ```ts
   * if (poller.waiterThread) console.log('events come through a waiter thread');
   * ```
   */
  get waiterThread(): boolean {
    return this.#native.waiterThread;
  }

  /**
   * The epoll or kqueue descriptor, or -1 once closed (or once the poller found it closed behind
   * its back, e.g. by `fs.closeSync`). The poller itself works on a private duplicate, so closing
   * this number cannot break the event loop: `polling()` then rejects with `EBADF`.
   */
  get fd(): number {
    return this.#native.fd;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#mode === Mode.Closed;
  }

  /** Whether `polling()` or an iteration is running. */
  get running(): boolean {
    return this.#mode === Mode.Polling || this.#mode === Mode.Iterating;
  }

  /** The current size of the event list: how many events one kernel wait may return. */
  get eventListSize(): number {
    return this.#native.capacity;
  }

  /**
   * How many events (or batches, with `batch: true`) the running iteration holds that
   * its consumer has not taken yet: at most one kernel wait's worth.
   */
  get bufferedEvents(): number {
    return this.#iter?.buffered ?? 0;
  }

  /**
   * What this poller has done since it was opened: events, batches, wakes and tasks run,
   * plus the tasks waiting, the registered fds, the event list's size and when the last
   * batch came (see {@link PollerStats} for exactly what each counts). Cheap enough to
   * leave on: the counters move per batch, never per event, and this call only copies them.
   * Works after `close()` too. The guide's troubleshooting section shows how two snapshots
   * tell a never-ready fd, an undrained level-triggered fd and a growing task queue apart.
   *
   * @returns a fresh plain object.
   * @throws Never.
   * @example
   * ```ts
   * const { events, batches, pendingTasks, lastBatchAt } = poller.stats();
   * console.log(`${events} events in ${batches} batches, ${pendingTasks.normal} tasks waiting`);
   * if (lastBatchAt !== null) console.log(`last batch ${performance.now() - lastBatchAt} ms ago`);
   * ```
   */
  stats(): PollerStats {
    const urgent = this.#urgent;
    const normal = this.#normal;
    return {
      events: this.#eventCount,
      batches: this.#batches,
      tasks: { urgent: urgent.ran, normal: normal.ran },
      pendingTasks: { urgent: urgent.length, normal: normal.length, remote: this.#native.remoteQueued },
      wakes: this.#wakes,
      eventListSize: this.#capacity,
      registered: this.#registered,
      lastBatchAt: this.#lastBatchAt(),
    };
  }

  /**
   * The attachment registered for `fd`, if any: the last one given to `add*` or `mod*`,
   * until `delete(fd)` or `close()`.
   *
   * @param fd - any number; only registered fds have an attachment.
   * @throws Never: any argument that is not a registered fd gives undefined.
   * @example
   * ```ts
   * poller.addRead({ fd, callback: onReadable });
   * poller.attachment(fd)?.callback === onReadable; // true
   * ```
   */
  attachment(fd: number): PollAttachment | undefined {
    return this.#attachments[fd];
  }

  // ---- registration (gnet's Add*/Mod*/Delete) ----

  /**
   * Registers `pa.fd` for readable events (EPOLLIN|EPOLLPRI; EVFILT_READ).
   * Edge-triggered adds EPOLLET|EPOLLRDHUP (EV_CLEAR on kqueue).
   *
   * @param pa - the fd and, optionally, the callback for its events (see {@link PollAttachment}).
   * @param edgeTriggered - `true` for edge-triggered (EPOLLET and EPOLLRDHUP on epoll, EV_CLEAR on kqueue): reported once per change, so read or write until -1; default `false`, level-triggered.
   * @throws ErrPollerClosed after close; TypeError/RangeError for a malformed attachment;
   * a SystemError (`EEXIST` when already registered, `EBADF`, `EPERM` for a regular file).
   * @example
   * ```ts
   * poller.addRead({ fd, callback: (fd, event) => { read(fd, buf); } });
   * ```
   */
  addRead(pa: PollAttachment, edgeTriggered = false): void {
    this.#ctl(CTL_ADD, pa, INTEREST_READ, edgeTriggered, syscalls.add);
  }

  /**
   * Registers `pa.fd` for writable events (EPOLLOUT; EVFILT_WRITE).
   *
   * @param pa - the fd and, optionally, the callback for its events (see {@link PollAttachment}).
   * @param edgeTriggered - as for {@link Poller.addRead}.
   * @throws as {@link Poller.addRead}.
   * @example
   * ```ts
   * poller.addWrite({ fd: socketFd }); // tells when a nonblocking connect finished
   * ```
   */
  addWrite(pa: PollAttachment, edgeTriggered = false): void {
    this.#ctl(CTL_ADD, pa, INTEREST_WRITE, edgeTriggered, syscalls.add);
  }

  /**
   * Registers `pa.fd` for readable and writable events. On epoll one event carries
   * both bits; on kqueue they arrive as two events.
   *
   * @param pa - the fd and, optionally, the callback for its events (see {@link PollAttachment}).
   * @param edgeTriggered - as for {@link Poller.addRead}.
   * @throws as {@link Poller.addRead}.
   * @example
   * ```ts
   * poller.addReadWrite({ fd: dialTCP('127.0.0.1', port) });
   * ```
   */
  addReadWrite(pa: PollAttachment, edgeTriggered = false): void {
    this.#ctl(CTL_ADD, pa, INTEREST_READ | INTEREST_WRITE, edgeTriggered, syscalls.add);
  }

  /**
   * Changes a registered fd to readable events only, and replaces its attachment.
   *
   * @param pa - a registered fd and its new attachment, which replaces the old one.
   * @param edgeTriggered - as for {@link Poller.addRead}; the new registration replaces the old one, edge or level.
   * @throws as {@link Poller.addRead}; `ENOENT` when `pa.fd` is not registered.
   * @example
   * ```ts
   * poller.modRead(pa); // everything written: stop asking for EPOLLOUT
   * ```
   */
  modRead(pa: PollAttachment, edgeTriggered = false): void {
    this.#ctl(CTL_MOD, pa, INTEREST_READ, edgeTriggered, syscalls.modRead);
  }

  /**
   * Changes a registered fd to readable and writable events, and replaces its attachment.
   * Reading on while waiting for room suits input that makes no output of its own (a
   * client streaming an upload, which still reads the server's early answer). Where what
   * you read is answered (an echo, request/response), reading on would pile the answers
   * up in memory: use {@link Poller.modWrite} until the pending bytes are out (the guide's
   * backpressure section).
   *
   * @param pa - a registered fd and its new attachment, which replaces the old one.
   * @param edgeTriggered - as for {@link Poller.addRead}; the new registration replaces the old one, edge or level.
   * @throws as {@link Poller.modRead}.
   * @example
   * ```ts
   * // An upload: wait for room to send the rest, and meanwhile still read what the server
   * // says (an early error reply), which adds nothing to what this side has to send.
   * const n = write(fd, upload);
   * if (n < upload.length) {
   *   rest = upload.subarray(Math.max(n, 0));
   *   poller.modReadWrite(pa);
   * }
   * ```
   */
  modReadWrite(pa: PollAttachment, edgeTriggered = false): void {
    this.#ctl(CTL_MOD, pa, INTEREST_READ | INTEREST_WRITE, edgeTriggered, syscalls.modReadWrite);
  }

  /**
   * Changes a registered fd to writable events only, and replaces its attachment: the
   * backpressure step "stop reading from this peer until what it was sent has drained".
   * gnet has no ModWrite; this one behaves the same on both backends (EPOLLOUT alone on
   * epoll, the write filter alone on kqueue).
   *
   * @param pa - a registered fd and its new attachment, which replaces the old one.
   * @param edgeTriggered - as for {@link Poller.addRead}; the new registration replaces the old one, edge or level.
   * @throws as {@link Poller.modRead}.
   * @example
   * ```ts
   * const n = write(fd, reply);
   * if (n < reply.length) {
   *   pending = reply.subarray(Math.max(n, 0));
   *   poller.modWrite(pa); // no more reads from this peer until `pending` is written
   * }
   * ```
   */
  modWrite(pa: PollAttachment, edgeTriggered = false): void {
    // kqueue: like ModRead, a filter is deleted (the read one), so the error names that call.
    this.#ctl(CTL_MOD, pa, INTEREST_WRITE, edgeTriggered, syscalls.modRead);
  }

  /**
   * Removes `fd` from the poller and forgets its attachment. The attachment is
   * forgotten even when the kernel reports an error (the fd was already closed).
   * Events for `fd` already read from the kernel but not delivered yet (later in the
   * batch being dispatched, or buffered by an iteration) are dropped, so no callback
   * sees an event for an fd deleted before it, even if the number is reused.
   *
   * @param fd - a registered descriptor.
   * @throws ErrPollerClosed after close; RangeError/TypeError for a bad fd;
   * a SystemError `ENOENT` when `fd` is not registered, `EBADF` when it is not open.
   * @example
   * ```ts
   * poller.delete(fd);
   * close(fd);
   * ```
   */
  delete(fd: number): void {
    this.#checkOpen();
    validateFd(fd);
    const err = this.#native.ctl(CTL_DEL, fd, 0);
    if (this.#attachments[fd] !== undefined) {
      this.#attachments[fd] = undefined;
      this.#registered--;
    }
    this.#forgetPendingEvents(fd);
    if (err < 0) throw ctlError(err, syscalls.del, fd);
  }

  /**
   * Drops the events for `fd` that were read from the kernel but not delivered yet, as
   * libuv and mio do: after delete(fd) (and a close, and maybe the number's reuse) a
   * stale event must not reach a callback.
   */
  #forgetPendingEvents(fd: number): void {
    const ev = this.#events;
    for (let j = 0, end = this.#batchLength * 3; j < end; j += 3) if (ev[j] === fd) ev[j] = -1;
    this.#iter?.forget(fd);
  }

  #ctl(op: number, pa: PollAttachment, interest: number, edgeTriggered: unknown, syscall: string): void {
    this.#checkOpen();
    validateObject(pa, 'pa');
    const { fd, callback } = pa;
    validateFd(fd, 'pa.fd');
    if (callback !== undefined) validateFunction(callback, 'pa.callback');
    validateBoolean(edgeTriggered, 'edgeTriggered');
    // Reading pa ran the caller's getters (or Proxy traps), which may have closed the poller.
    this.#checkOpen();
    const err = this.#native.ctl(op, fd, edgeTriggered ? interest | INTEREST_EDGE : interest);
    if (err < 0) throw ctlError(err, syscall, fd);
    if (this.#attachments[fd] === undefined) this.#registered++;
    this.#attachments[fd] = pa;
  }

  #checkOpen(): void {
    if (this.#mode === Mode.Closed) throw ErrPollerClosed;
  }

  // ---- the loop (gnet's Polling) ----

  /**
   * Runs the event loop until a callback or task stops it, without blocking: events
   * are delivered from this thread's own event loop, one batch per loop turn, and
   * promise reactions and `process.nextTick` callbacks run after each batch.
   *
   * With `callback`, every event goes to it; without, to the attachment registered for
   * the event's fd (gnet's `poll_opt` mode). Resolves with the `ErrEngineShutdown` /
   * `ErrAcceptSocket` (or the Error wrapping one) that a callback returned, or with
   * `ErrEngineShutdown` when the poller is closed. Rejects with what a callback threw.
   * Either way the poller stays open and can poll again. A callback that closes the
   * poller and then throws has no promise left to reject: its error is reported as an
   * `uncaughtException`, as Node reports an error thrown after a callback's promise settled.
   *
   * While polling, the poller keeps the process alive (see {@link Poller.unref}).
   *
   * @param callback - receives every event; omit it to dispatch each event to its fd's attachment callback.
   * @returns the error that stopped the loop.
   * @throws (rejects) ErrPollerClosed after close; an Error with code `ERR_POLLER_BUSY`
   * when polling or iterating already; TypeError when `callback` is not a function;
   * an Error with code `ERR_NO_CALLBACK` for an event on an fd without a callback;
   * a SystemError `EBADF` when `poller.fd` was closed behind the poller's back.
   * @example
   * ```ts
   * const err = await poller.polling((fd, event, flags) => {
   *   if (isErrorOnlyEvent(event, flags)) return ErrEngineShutdown; // failed, nothing to read
   *   if (isReadEvent(event)) handleRead(fd); // reads until -1; 0 is the end
   * });
   * ```
   */
  polling(callback?: PollEventHandler): Promise<Error> {
    try {
      this.#checkOpen();
      if (callback !== undefined) validateFunction(callback, 'callback');
      this.#checkIdle();
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<Error>((resolve, reject) => {
      this.#run = { callback, resolve, reject };
      try {
        this.#begin(Mode.Polling, this.#onPollBatch);
      } catch (e) {
        this.#run = undefined; // not started: the poller stays idle and usable
        throw e;
      }
    });
  }

  #checkIdle(): void {
    if (this.#mode === Mode.Polling) throw stateError('polling() is already running on this poller', 'ERR_POLLER_BUSY');
    if (this.#mode === Mode.Iterating) throw stateError('this poller is being iterated; polling() and iteration cannot run together', 'ERR_POLLER_BUSY');
  }

  #begin(mode: Mode, onBatch: BatchCallback): void {
    // A fresh resource per run: it carries the caller's async context (AsyncLocalStorage).
    const err = this.#native.start(onBatch, { poller: this });
    if (err < 0) throw systemError(err, this.#watchSyscall());
    this.#mode = mode;
    // A run that stopped mid-round leaves the wake flag set though its wake was
    // consumed; tasks queued meanwhile would then never run. Start from a clean flag
    // and wake for whatever is queued, so it runs in the first turn.
    this.#wakePending = false;
    if (this.#urgent.length > 0 || this.#normal.length > 0) {
      try {
        this.#wake();
      } catch (e) {
        this.#end(); // the waker is broken (its fd closed behind our back): do not start half-way
        throw e;
      }
    }
    this.#checkMode();
    if (channel.hasSubscribers) publish({ type: 'start', poller: this, mode: mode === Mode.Polling ? 'polling' : 'iteration' });
  }

  /**
   * Asserts that Mode agrees with the binding's RunState. A disagreement is a bug in
   * netpoll (a transition made on one side only), never a user error: it throws
   * ERR_INTERNAL_ASSERTION, as Node's own internal asserts do, rather than let a
   * poller that thinks it is idle keep a watched fd, or the reverse.
   */
  #checkMode(): void {
    const run = this.#native.runState;
    let agrees: boolean;
    switch (this.#mode) {
      case Mode.Idle: agrees = run === NativeRun.Idle; break;
      case Mode.Polling: agrees = run === NativeRun.Watching; break;
      case Mode.Iterating: agrees = run === NativeRun.Watching || run === NativeRun.Paused; break;
      case Mode.Closed: agrees = run === NativeRun.Closed; break;
    }
    if (!agrees) {
      const err = new Error(`netpoll internal assertion failed: poller mode ${this.#mode} with native run state ${run}. This is a bug in netpoll; please report it`) as Error & { code: string };
      err.code = 'ERR_INTERNAL_ASSERTION';
      throw err;
    }
  }

  /** What failed when the native side could not start delivering batches. */
  #watchSyscall(): string {
    return this.#native.waiterThread ? 'uv_thread_create' : 'uv_poll_start';
  }

  /** Ends the run; `reason` is undefined only for a run that never started (no `stop` message). */
  #end(reason?: PollerStopReason, error?: unknown, mode: 'polling' | 'iteration' = 'polling'): void {
    this.#batchLength = 0;
    this.#native.stop();
    if (this.#mode !== Mode.Closed) this.#mode = Mode.Idle;
    this.#run = undefined;
    this.#iter = undefined;
    this.#checkMode();
    if (reason !== undefined && channel.hasSubscribers) publish({ type: 'stop', poller: this, mode, reason, error });
  }

  /**
   * The last batch's time on the performance.now() clock: the binding notes it in
   * process.hrtime()'s nanoseconds (a clock read per batch that costs a third of
   * performance.now() here), moved onto performance.now()'s clock by a fixed offset, so
   * that every call reports the same time for the same batch.
   */
  #lastBatchAt(): number | null {
    const ns = this.#mode === Mode.Closed ? this.#lastBatchTime : this.#native.lastBatchTime;
    if (ns < 0) return null;
    return ns / 1e6 + hrtimeToPerformance();
  }

  /** The bookkeeping of every batch behind stats(), and the list's resize messages. */
  #countBatch(n: number, woke: boolean, capacity: number): void {
    if (n >= 0) {
      this.#batches++;
      this.#eventCount += n;
    }
    if (woke) this.#wakes++;
    if (capacity !== this.#capacity) {
      const from = this.#capacity;
      this.#capacity = capacity;
      if (channel.hasSubscribers) publish({ type: 'resize', poller: this, from, to: capacity });
    }
  }

  #pollBatch(n: number, woke: boolean): void {
    const run = this.#run;
    if (run === undefined) return;
    // Whether what is thrown comes from a user callback (else from the poller itself).
    let inCallback = true;
    try {
      if (n < 0) {
        const err = systemError(n, syscalls.wait);
        this.#end('error', err);
        run.reject(err);
        return;
      }
      const ev = this.#events;
      const callback = run.callback;
      this.#batchLength = n;
      if (callback !== undefined) {
        for (let j = 0, end = n * 3; j < end; j += 3) {
          const fd = ev[j];
          if (fd < 0) continue; // deleted earlier in this batch
          const result = callback(fd, ev[j + 1] as IOEvent, ev[j + 2] as IOFlags);
          if (result != null) {
            if (isStopError(result)) return this.#stopPolling(run, result);
            if (channel.hasSubscribers) this.#reportReturned(result);
          }
          if (this.#run !== run) return; // closed (or stopped) by the callback
        }
      } else {
        const attachments = this.#attachments;
        for (let j = 0, end = n * 3; j < end; j += 3) {
          const fd = ev[j];
          if (fd < 0) continue;
          const cb = attachments[fd]?.callback;
          if (cb === undefined) {
            inCallback = false;
            throw stateError(`an event arrived for fd ${fd}, which has no callback: give its attachment a callback or pass one to polling()`, 'ERR_NO_CALLBACK');
          }
          const result = cb(fd, ev[j + 1] as IOEvent, ev[j + 2] as IOFlags);
          if (result != null) {
            if (isStopError(result)) return this.#stopPolling(run, result);
            if (channel.hasSubscribers) this.#reportReturned(result);
          }
          if (this.#run !== run) return;
        }
      }
      this.#batchLength = 0;
      if (woke) {
        inCallback = false;
        const stop = this.#doChores();
        if (stop !== undefined && this.#run === run) this.#stopPolling(run, stop);
      }
    } catch (e) {
      // Thrown after the run ended (the callback closed the poller, which resolved
      // polling(), then threw): no promise is left to carry it. Rethrown, the native
      // side reports it as Node reports an error thrown after a callback's promise
      // settled: 'uncaughtException'.
      if (inCallback && channel.hasSubscribers) publish({ type: 'error', poller: this, source: 'callback', error: e });
      if (this.#run !== run) throw e;
      this.#end(inCallback ? 'throw' : 'error', e);
      run.reject(e);
    }
  }

  /**
   * A callback returned something that is neither nothing nor a stop error: gnet's loop
   * ignores it, and so does this one, but a returned `new Error('bad client')` (or an
   * async handler's Promise) is almost always a mistake, so it is told to the channel.
   */
  #reportReturned(result: unknown): void {
    publish({ type: 'error', poller: this, source: 'return', error: result });
  }

  #stopPolling(run: PollRun, result: Error): void {
    this.#end('stop', result);
    run.resolve(result);
  }

  /**
   * One round of gnet's chores: every urgent task (including those they queue), then at
   * most MaxAsyncTasksAtOneTime normal ones; re-wake when work is left. Returns the
   * result of a task that asked to shut down, if one did.
   */
  #doChores(): Error | undefined {
    const urgent = this.#urgent;
    const normal = this.#normal;
    // Tasks from other threads join the queues first, as if triggered here just now.
    const remoteLeft = this.#remote?.drain(urgent, normal) === true;
    while (urgent.length > 0) {
      const result = urgent.runFirst();
      if (result != null && isShutdown(result)) return result as Error;
      if (this.#mode === Mode.Closed) return undefined;
    }
    for (let i = 0; i < MaxAsyncTasksAtOneTime && normal.length > 0; i++) {
      const result = normal.runFirst();
      if (result != null && isShutdown(result)) return result as Error;
      if (this.#mode === Mode.Closed) return undefined;
    }
    // gnet: clear the flag, then wake again if tasks are left (here, or queued by other
    // threads: the flag is then shared with them, and lives in the binding).
    const more = urgent.length > 0 || normal.length > 0 || remoteLeft;
    if (this.#remote === undefined) {
      this.#wakePending = false;
      if (more) this.#wake();
      return undefined;
    }
    const pending = this.#native.endRound(more);
    this.#wakePending = pending > 0;
    if (pending < 0) throw systemError(pending, 'write');
    return undefined;
  }

  /**
   * Sets the wake flag and, if no wake was pending, arms one: on the loop's own thread
   * that needs no syscall (the binding runs the round after this turn's I/O); the waker
   * is written only on the waiter-thread path.
   */
  #wake(): void {
    this.#wakePending = true;
    if (this.#signals[0] === 1 && this.#deferWake) {
      // Inside this poller's batch: the binding arms the round when the batch returns.
      this.#signals[1] = 1;
      return;
    }
    const err = this.#native.wake();
    if (err < 0) {
      this.#wakePending = false;
      throw systemError(err, 'write');
    }
  }

  // ---- tasks (gnet's Trigger) ----

  /**
   * Queues `fn()` to run inside the loop (gnet's `Trigger`). The task goes to the
   * urgent queue unless `priority` is `Priority.Low` and the urgent queue already holds
   * `MaxPollEventsCap` tasks; each loop round runs every urgent task, then at most
   * `MaxAsyncTasksAtOneTime` normal ones. A wake is armed only when none is pending
   * (from the poller's own thread it costs no syscall; other threads write the waker).
   * Tasks queued while not polling run when polling (or iteration) starts. Tasks
   * triggered inside a callback or a task run in the next loop turn, after that turn's
   * I/O (the guide's "trigger() and the two queues" has the ordering rules).
   *
   * A task returning `ErrEngineShutdown` stops polling.
   *
   * @param priority - `Priority.High` or `Priority.Low`: which queue the task joins (see above).
   * @param fn - the task; runs once, inside the loop. A task that takes a parameter
   * needs the three-argument form.
   * @returns a promise of what `fn` returns; it rejects with what `fn` throws (the loop
   * goes on; handle it), and with `ErrPollerClosed` if the poller closes first (those
   * rejections are marked handled, so fire-and-forget triggers never crash the process
   * at close).
   * @throws (rejects) ErrPollerClosed after close; TypeError/RangeError for bad arguments.
   * @example
   * ```ts
   * await poller.trigger(Priority.High, () => flushAll());
   * ```
   */
  trigger<R>(priority: Priority, fn: () => R): Promise<Awaited<R>>;
  /**
   * Queues `fn(param)` to run inside the loop (gnet's `Trigger`), as the two-argument
   * form does with `fn()`.
   *
   * @param priority - `Priority.High` or `Priority.Low`: which queue the task joins.
   * @param fn - the task; runs once, inside the loop, with `param`.
   * @param param - passed to `fn` as is (not copied: the task runs on this thread).
   * @returns a promise of what `fn(param)` returns, as the two-argument form's.
   * @throws (rejects) ErrPollerClosed after close; TypeError/RangeError for bad arguments.
   * @example
   * ```ts
   * const n = await poller.trigger(Priority.High, (conns: Set<number>) => conns.size, connections);
   * ```
   */
  trigger<P, R>(priority: Priority, fn: (param: P) => R, param: P): Promise<Awaited<R>>;
  trigger<P, R>(priority: Priority, fn: TaskFunc<P, R>, param?: P): Promise<Awaited<R>> {
    if (this.#mode === Mode.Closed) return Promise.reject(ErrPollerClosed);
    if (typeof fn !== 'function' || typeof priority !== 'number' || (priority !== 0 && priority !== 1)) {
      try {
        validateInteger(priority, 'priority', Priority.High, Priority.Low);
        validateFunction(fn, 'fn');
      } catch (e) {
        return Promise.reject(e);
      }
    }
    let resolve!: (v: unknown) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<Awaited<R>>((res, rej) => {
      resolve = res as (v: unknown) => void;
      reject = rej;
    });
    const urgent = this.#urgent;
    if (priority !== Priority.High && urgent.length >= MaxPollEventsCap) {
      this.#normal.push(fn as TaskFunc, param, resolve, reject, promise);
    } else {
      // Low-priority tasks may overflow into the urgent queue for a moment: tolerable, as gnet says.
      urgent.push(fn as TaskFunc, param, resolve, reject, promise);
    }
    if (!this.#wakePending) {
      try {
        this.#wake();
      } catch (e) {
        reject(e);
      }
    }
    return promise;
  }

  /**
   * Offers tasks to other threads (gnet's `Trigger` from any goroutine): returns a
   * {@link PollerHandle}, plain data to pass to a worker (`workerData`, `postMessage`),
   * where {@link connectPoller} turns it into a {@link RemotePoller}. A remote trigger
   * names one of `tasks` and joins this poller's urgent and normal queues under the same
   * rules as a local one; its param and result are copied across (structured clone).
   * The handle lives until the poller closes: then every pending remote trigger, and
   * every later one, rejects with `ErrPollerClosed` in its own thread. Call it once per
   * poller.
   *
   * @param tasks - the tasks other threads may run, by name: each takes at most one
   * parameter. The object is read now; later changes to it do not count.
   * @returns the handle. Its type carries the task names and parameter types to
   * `connectPoller`.
   * @throws ErrPollerClosed after close; TypeError when `tasks` is not an object of
   * functions; RangeError past 65,535 tasks; an Error with code
   * `ERR_POLLER_HANDLE_EXISTS` on a second call.
   * @example
   * ```ts
   * const handle = poller.handle({
   *   register: (fd: number) => { poller.addRead({ fd, callback: onData }); },
   *   stop: () => ErrEngineShutdown,
   * });
   * new Worker(file, { workerData: { handle } });
   * ```
   */
  handle<T extends PollerTasks>(tasks: T): PollerHandle<T> {
    this.#checkOpen();
    if (this.#remote !== undefined) {
      throw stateError('this poller has a handle already: handle() can be called once per poller', 'ERR_POLLER_HANDLE_EXISTS');
    }
    this.#remote = new RemoteOwner(this.#native, tasks);
    return this.#remote.handle as unknown as PollerHandle<T>;
  }

  // ---- iteration ----

  /**
   * Iterates events: `for await (const ev of poller.events())`. The kernel is read only
   * when the consumer asks and nothing is buffered, so memory stays bounded by one batch
   * however slow the consumer is; level-triggered readiness is reported again later.
   * Triggered tasks run as while polling, also while the loop body awaits (only fd events wait for the next `next()`). `break` stops polling (the poller stays open);
   * `close()` ends the iteration normally; an aborted `signal` ends it with an AbortError.
   * A task returning `ErrEngineShutdown` ends it (`done`, with that error as the value).
   *
   * @param options - `signal` to end the iteration, `batch: true` for one array per kernel wait (see {@link EventsOptions}).
   * @throws AbortError when `signal` is already aborted; (rejects, at the first `next()`)
   * ErrPollerClosed after close, `ERR_POLLER_BUSY` when polling or iterating already.
   * @example
   * ```ts
   * for await (const batch of poller.events({ batch: true, signal })) {
   *   for (const { fd, event } of batch) if (isReadEvent(event)) read(fd, buf);
   * }
   * ```
   */
  events(options?: EventsOptions & { batch?: false | undefined }): AsyncIterableIterator<PollEvent>;
  events(options: EventsOptions & { batch: true }): AsyncIterableIterator<PollEvent[]>;
  events(options?: EventsOptions): AsyncIterableIterator<PollEvent | PollEvent[]>;
  events(options: EventsOptions = {}): AsyncIterableIterator<PollEvent | PollEvent[]> {
    validateObject(options, 'options');
    const { signal, batch = false } = options;
    validateBoolean(batch, 'options.batch');
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      validateObject(undefined, 'options.signal'); // throws the TypeError
    }
    if (signal?.aborted) throw abortError(signal.reason);
    let claimed: Iteration | undefined;
    let finished = false;
    const iterator: AsyncIterableIterator<PollEvent | PollEvent[]> = {
      next: (): Promise<IteratorResult<PollEvent | PollEvent[]>> => {
        if (finished) return Promise.resolve({ done: true, value: undefined });
        if (claimed === undefined) {
          try {
            this.#checkOpen();
            this.#checkIdle();
            if (signal?.aborted) throw abortError(signal.reason);
          } catch (e) {
            finished = true;
            return Promise.reject(e);
          }
          try {
            claimed = this.#startIteration(batch, signal);
          } catch (e) {
            finished = true;
            return Promise.reject(e);
          }
        }
        if (!claimed.running) {
          finished = true;
          return Promise.resolve({ done: true, value: undefined });
        }
        return claimed.next() as Promise<IteratorResult<PollEvent | PollEvent[]>>;
      },
      return: (value?: unknown): Promise<IteratorResult<PollEvent | PollEvent[]>> => {
        finished = true;
        claimed?.finish('break', undefined);
        return Promise.resolve({ done: true, value: value as undefined });
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  /**
   * `for await (const ev of poller)`: the same as {@link Poller.events} with no options.
   *
   * @throws Never itself; the first `next()` rejects as {@link Poller.events} says.
   * @example
   * ```ts
   * for await (const { fd, event } of poller) {
   *   if (isReadEvent(event)) read(fd, buf);
   * }
   * ```
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<PollEvent> {
    return this.events();
  }

  #startIteration(batch: boolean, signal: AbortSignal | undefined): Iteration {
    return new Iteration(this.#iterationHost, batch, signal); // starts it (begin sets #iter), or throws
  }

  // ---- lifetime ----

  /**
   * Keeps the process alive while polling (the default), like `net.Server#ref`.
   * @returns this poller.
   * @throws Never; after `close()` it only records the setting.
   * @example
   * ```ts
   * poller.unref(); // a background poller
   * poller.ref();   // the process waits for it again
   * ```
   */
  ref(): this {
    this.#refd = true;
    this.#native.setRef(true);
    return this;
  }

  /**
   * Lets the process exit while this poller is polling, like `net.Server#unref`.
   * @returns this poller.
   * @throws Never; after `close()` it only records the setting.
   * @example
   * ```ts
   * poller.unref();
   * void poller.polling(onEvent); // does not hold the process open
   * ```
   */
  unref(): this {
    this.#refd = false;
    this.#native.setRef(false);
    return this;
  }

  /**
   * Whether a polling poller keeps the process alive (see {@link Poller.ref}).
   *
   * @throws Never.
   * @example
   * ```ts
   * poller.unref().hasRef(); // false
   * ```
   */
  hasRef(): boolean {
    return this.#refd;
  }

  /**
   * Closes the poller: its epoll/kqueue fd and waker (registered fds stay open: they
   * are yours; `poller.fd` only while it still refers to this poller, never a number
   * another file took after it was closed behind the poller's back). A running `polling()` resolves with `ErrEngineShutdown`, a running
   * iteration ends (`done`), pending `trigger()` promises reject with `ErrPollerClosed`,
   * and later calls throw (or reject with) `ErrPollerClosed`. Idempotent; safe inside a
   * callback or a task.
   *
   * @throws Never.
   * @example
   * ```ts
   * poller.close();
   * poller.close(); // no-op
   * ```
   */
  close(): void {
    if (this.#mode === Mode.Closed) return;
    const run = this.#run;
    const iter = this.#iter;
    this.#mode = Mode.Closed;
    this.#run = undefined;
    this.#iter = undefined;
    this.#lastBatchTime = this.#native.lastBatchTime;
    // Answers already given go out first; the binding answers the rest with ErrPollerClosed.
    this.#remote?.close();
    this.#native.close();
    this.#checkMode();
    this.#attachments = [];
    this.#registered = 0;
    if (run !== undefined) {
      if (channel.hasSubscribers) publish({ type: 'stop', poller: this, mode: 'polling', reason: 'close', error: ErrEngineShutdown });
      run.resolve(ErrEngineShutdown);
    }
    iter?.finish('close', undefined);
    this.#urgent.rejectAll(ErrPollerClosed);
    this.#normal.rejectAll(ErrPollerClosed);
    if (channel.hasSubscribers) publish({ type: 'close', poller: this });
  }

  /**
   * `using poller = openPoller()` closes it at the end of the scope: the same as
   * {@link Poller.close}.
   *
   * @throws Never.
   * @example
   * ```ts
   * {
   *   using poller = openPoller();
   *   poller.addRead({ fd });
   * } // poller.close() ran here
   * ```
   */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * `await using poller = openPoller()` closes it at the end of the scope: the same as
   * {@link Poller.close}.
   *
   * @returns a promise that resolves once closed (it never rejects).
   * @throws Never.
   * @example
   * ```ts
   * async function serve() {
   *   await using poller = openPoller();
   *   await poller.polling(onEvent);
   * } // closed when serve() returns or throws
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}

/**
 * Options for {@link openPoller}.
 *
 * @example
 * ```ts
 * const poller = openPoller({ waiterThread: true });
 * console.log(poller.waiterThread); // true: a thread waits, the loop dispatches
 * ```
 * @category Poller
 */
export interface OpenPollerOptions {
  /**
   * Wait for events on a thread of the poller's own, which hands each batch to the
   * event loop, instead of having the loop watch the poller's descriptor. Events,
   * callbacks and ordering are the same; it costs a thread and a handoff per batch.
   * Needed (and chosen automatically) under libkqueue; elsewhere it exists to test
   * that path. Default: `process.env.NETPOLL_WAITER_THREAD === '1'`.
   */
  waiterThread?: boolean | undefined;
}

/**
 * Opens a poller (gnet's `OpenPoller`): `epoll_create1(EPOLL_CLOEXEC)` plus an eventfd
 * waker registered edge-triggered on Linux; `kqueue()` plus an `EVFILT_USER` waker on
 * BSD and macOS (a pipe where there is no `EVFILT_USER`). The poller works on a private
 * duplicate of that descriptor (`poller.fd` is the original), see docs/backends.md.
 *
 * @param options - `waiterThread`: wait for events on a thread of the poller's own
 * (see {@link OpenPollerOptions}).
 * @throws a SystemError (`EMFILE`, `ENFILE`, `ENOMEM`) when the kernel refuses;
 * TypeError for malformed options.
 * @example
 * ```ts
 * using poller = openPoller();
 * poller.addRead({ fd, callback: onReadable });
 * await poller.polling();
 * ```
 * @category Poller
 */
export function openPoller(options: OpenPollerOptions = {}): Poller {
  validateObject(options, 'options');
  const { waiterThread = process.env.NETPOLL_WAITER_THREAD === '1' } = options;
  validateBoolean(waiterThread, 'options.waiterThread');
  const native = new binding.NativePoller();
  const err = native.open(waiterThread, eventList());
  if (err < 0) throw systemError(err, native.failedSyscall);
  const poller = new Poller(native);
  if (channel.hasSubscribers) publish({ type: 'open', poller });
  return poller;
}

let hrtimeOffset: number | undefined;

/**
 * What to add to a process.hrtime() time in ms to put it on performance.now()'s clock. Both
 * read the same monotonic clock, so the offset is fixed; it is measured once, from the read
 * pair least spread apart of a few (a thread preempted between two reads would skew it).
 */
function hrtimeToPerformance(): number {
  if (hrtimeOffset === undefined) {
    let spread = Infinity;
    for (let i = 0; i < 5; i++) {
      const t0 = Number(process.hrtime.bigint()) / 1e6;
      const p = performance.now();
      const t1 = Number(process.hrtime.bigint()) / 1e6;
      if (t1 - t0 < spread) {
        spread = t1 - t0;
        hrtimeOffset = p - (t0 + t1) / 2;
      }
    }
  }
  return hrtimeOffset!;
}

/** Publishes on the `netpoll:poller` channel; callers check `channel.hasSubscribers` first, so no message is built for nobody. */
function publish(message: PollerDiagnostic): void {
  channel.publish(message);
}

/** Bytes of the shared event list: MaxPollEventsCap entries of (fd, event, flags). */
// The events (three int32 each), then the two signals shared with the binding: whether
// this poller's batch is running, and a wake asked for during it (see #wake).
const EVENT_LIST_BYTES = (MaxPollEventsCap * 3 + 2) * Int32Array.BYTES_PER_ELEMENT;

/**
 * The shared event list the native side writes each batch into, on memory that
 * cannot be detached: code that got hold of it (through the binding) cannot transfer
 * it away under the native side. A SharedArrayBuffer refuses transfer and has no
 * detach; where it is missing (an Electron renderer without cross-origin isolation)
 * a WebAssembly memory's buffer, which only its Memory object could detach, and no
 * one else has that; where WebAssembly is missing too (--jitless), a plain buffer.
 * The native side checks the list before every batch anyway and fails the batch
 * with EFAULT rather than write into a detached one.
 */
function eventList(): Int32Array {
  if (typeof SharedArrayBuffer === 'function') return new Int32Array(new SharedArrayBuffer(EVENT_LIST_BYTES));
  const wasm = (globalThis as { WebAssembly?: { Memory?: new (d: { initial: number }) => { buffer: ArrayBuffer } } }).WebAssembly;
  if (typeof wasm?.Memory === 'function') {
    try {
      const pages = Math.ceil(EVENT_LIST_BYTES / 65536);
      return new Int32Array(new wasm.Memory({ initial: pages }).buffer, 0, EVENT_LIST_BYTES / Int32Array.BYTES_PER_ELEMENT);
    } catch {
      // refused (a content security policy): the plain buffer below
    }
  }
  return new Int32Array(EVENT_LIST_BYTES / Int32Array.BYTES_PER_ELEMENT);
}
