// Pull-based iteration: `for await (const ev of poller)`. The kernel is read only when
// the consumer asks and nothing is buffered; while undelivered events wait, the poller
// is paused, so memory stays bounded by one batch however slow the consumer is. Paused
// stops fd events only: rounds of triggered tasks (local and remote) still come, as
// batches of no events (the binding's OnCheck), so a loop body may await a task.
//
// An Iteration is one run of it. The poller (src/poller.ts) starts it, hands it each
// batch, and gives it what it needs of its private state as an IterationHost.
import { abortError, systemError } from './errors.js';
import type { IOEvent, IOFlags } from './events.js';
import type { PollerStopReason } from './diagnostics.js';

/**
 * One event as iteration yields it: the same three values a `polling()` callback gets.
 *
 * @example
 * ```ts
 * for await (const ev of poller) {
 *   if (isErrorOnlyEvent(ev.event, ev.flags)) { poller.delete(ev.fd); close(ev.fd); }
 *   else if (isReadEvent(ev.event)) read(ev.fd, buf); // 0 at the end: delete and close then
 * }
 * ```
 * @category Iteration
 */
export class PollEvent {
  /** Makes an event; the poller makes them for you (a plain value, no validation). */
  constructor(
    /** The file descriptor the event is for. */
    readonly fd: number,
    /** The epoll events mask, or the kqueue filter. */
    readonly event: IOEvent,
    /** 0 on epoll; the kevent flags on kqueue. */
    readonly flags: IOFlags,
  ) {}
}

/**
 * Options for {@link Poller.events}.
 *
 * @example
 * ```ts
 * const options: EventsOptions = { batch: true, signal: AbortSignal.timeout(5000) };
 * for await (const batch of poller.events(options)) console.log(batch.length);
 * ```
 * @category Iteration
 */
export interface EventsOptions {
  /** Ends the iteration with an AbortError when aborted, as `events.on` does. */
  signal?: AbortSignal | undefined;
  /** Yield one array per kernel wait instead of one event at a time. */
  batch?: boolean | undefined;
}

/** What an iteration needs of its poller, bound to the poller's private state. */
export interface IterationHost {
  /** The shared event list a batch's events are read from (three int32 each). */
  readonly events: Int32Array;
  /**
   * Starts delivering batches to `iteration.onBatch` (the poller's iterating mode); throws
   * when it cannot. The iteration may be finished when this returns (a diagnostics
   * subscriber closed the poller in the start message).
   */
  begin(iteration: Iteration): void;
  /** Stops delivering, for `reason` (the diagnostics channel's stop message); the poller is idle again (or stays closed). */
  end(reason: PollerStopReason, error: unknown): void;
  /** One chores round: the error of a task that asked to stop, if one did. */
  chores(): Error | undefined;
  /** Reads the kernel again after pause(): 0, or a negative errno. */
  resume(): number;
  /** Stops reading the kernel (backpressure). */
  pause(): void;
  /** The syscall named in the error of a failed resume(). */
  readonly resumeSyscall: string;
  /** The syscall named in the error of a failed wait. */
  readonly waitSyscall: string;
}

interface Waiter {
  resolve(result: IteratorResult<unknown, Error | undefined>): void;
  reject(err: unknown): void;
}

/** An iteration runs from its start until finish(): the one transition. */
const enum State {
  Running,
  Finished,
}

/** One run of `for await` over a poller. */
export class Iteration {
  #state = State.Running;
  readonly #host: IterationHost;
  readonly #batch: boolean;
  /** Events (or batches) read from the kernel and not taken yet: from #head on. */
  readonly #buffer: unknown[] = [];
  #head = 0;
  /** next() calls waiting for an event. */
  readonly #waiters: Waiter[] = [];
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort: (() => void) | undefined;
  /** What the poller hands each batch to. */
  readonly onBatch = (n: number, woke: boolean): void => this.#onBatchIn(n, woke);

  /** Starts iterating `host`; throws (leaving the poller idle) when it cannot start. */
  constructor(host: IterationHost, batch: boolean, signal: AbortSignal | undefined) {
    this.#host = host;
    this.#batch = batch;
    this.#signal = signal;
    if (signal !== undefined) {
      this.#onAbort = () => this.finish('abort', abortError(signal.reason));
      signal.addEventListener('abort', this.#onAbort, { once: true });
    }
    try {
      host.begin(this);
    } catch (e) {
      this.#state = State.Finished; // not started: nothing to end
      if (signal !== undefined && this.#onAbort !== undefined) signal.removeEventListener('abort', this.#onAbort);
      throw e;
    }
  }

  get running(): boolean {
    return this.#state === State.Running;
  }

  /** Events (or batches) buffered and not taken yet. */
  get buffered(): number {
    return this.#buffer.length - this.#head;
  }

  /** The next event (or batch): at once if one is buffered, else once the kernel has one. */
  next(): Promise<IteratorResult<unknown, Error | undefined>> {
    if (this.#head < this.#buffer.length) return Promise.resolve({ done: false, value: this.#take() });
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      // Nothing buffered and someone waits: read the kernel again.
      const err = this.#host.resume();
      if (err < 0) this.finish('error', systemError(err, this.#host.resumeSyscall));
    });
  }

  #take(): unknown {
    const buffer = this.#buffer;
    const value = buffer[this.#head];
    buffer[this.#head++] = undefined;
    if (this.#head === buffer.length) {
      buffer.length = 0;
      this.#head = 0;
    }
    return value;
  }

  #onBatchIn(n: number, woke: boolean): void {
    if (this.#state !== State.Running) return;
    if (n < 0) return this.finish('error', systemError(n, this.#host.waitSyscall));
    const ev = this.#host.events;
    const buffer = this.#buffer;
    if (this.#batch) {
      if (n > 0) {
        const list = new Array<PollEvent>(n);
        for (let i = 0, j = 0; i < n; i++, j += 3) list[i] = new PollEvent(ev[j]!, ev[j + 1] as IOEvent, ev[j + 2] as IOFlags);
        buffer.push(list);
      }
    } else {
      for (let j = 0, end = n * 3; j < end; j += 3) buffer.push(new PollEvent(ev[j]!, ev[j + 1] as IOEvent, ev[j + 2] as IOFlags));
    }
    while (this.#waiters.length > 0 && this.#head < buffer.length) this.#waiters.shift()!.resolve({ done: false, value: this.#take() });
    if (woke) {
      let stop: Error | undefined;
      try {
        stop = this.#host.chores();
      } catch (e) {
        // As while polling: once the iteration ended nothing else would report it.
        if (this.#state !== State.Running) throw e;
        this.finish('error', e);
        return;
      }
      if (this.#state !== State.Running) return;
      if (stop !== undefined) return this.finish('stop', undefined, stop);
    }
    // Backpressure: stop reading the kernel while undelivered events wait.
    if (this.#head < buffer.length || this.#waiters.length === 0) this.#host.pause();
  }

  /**
   * Ends the iteration: the poller stops delivering; waiting next() calls reject with
   * `error`, or resolve `done` with `value`. Idempotent.
   */
  finish(reason: PollerStopReason, error: unknown, value?: Error): void {
    if (this.#state !== State.Running) return;
    this.#state = State.Finished;
    this.#host.end(reason, error ?? value);
    if (this.#signal !== undefined && this.#onAbort !== undefined) this.#signal.removeEventListener('abort', this.#onAbort);
    this.#buffer.length = 0;
    this.#head = 0;
    for (const w of this.#waiters.splice(0)) {
      if (error !== undefined) w.reject(error);
      else w.resolve({ done: true, value });
    }
  }

  /** Drops the buffered events for `fd` (it was deleted: they are stale). */
  forget(fd: number): void {
    const buffer = this.#buffer;
    let kept = this.#head;
    for (let i = this.#head; i < buffer.length; i++) {
      let item = buffer[i];
      if (this.#batch) {
        item = (item as PollEvent[]).filter((e) => e.fd !== fd);
        if ((item as PollEvent[]).length === 0) continue;
      } else if ((item as PollEvent).fd === fd) {
        continue;
      }
      buffer[kept++] = item;
    }
    buffer.length = kept;
  }
}
