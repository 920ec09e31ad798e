// The task queues behind trigger(): FIFO ring buffers that store each task's
// parts in consecutive slots of one array, so queuing a task allocates nothing
// beyond the promise the caller gets. A task triggered from another thread sits in
// the same queues; its answer goes to a RemoteSink (src/remote.ts) instead of a
// promise: its resolve slot holds the sink's number for it, its reject slot the sink.

/**
 * A task's function, as gnet's `queue.Func`: called with the `param` given to
 * {@link Poller.trigger}, inside the loop. What it returns (awaited) resolves the
 * trigger's promise; returning `ErrEngineShutdown` also stops polling.
 *
 * @example
 * ```ts
 * const closeConn: TaskFunc<number, void> = (fd) => { poller.delete(fd); close(fd); };
 * await poller.trigger(Priority.Low, closeConn, fd);
 * ```
 * @category Tasks
 */
export type TaskFunc<P = unknown, R = unknown> = (param: P) => R;

/**
 * Task priorities for `trigger()` (gnet's `queue.EventPriority`): `Priority.High` (0,
 * gnet's `HighPriority`) always goes to the urgent queue; `Priority.Low` (1, gnet's
 * `LowPriority`) too, until the urgent queue holds `MaxPollEventsCap` tasks.
 *
 * @example
 * ```ts
 * poller.trigger(Priority.High, () => flushAll());
 * poller.trigger(Priority.Low, (fd) => closeIdle(fd), fd);
 * ```
 * @category Tasks
 */
export const Priority = Object.freeze({
  /** 0, gnet's `HighPriority`: the urgent queue, which each round runs in full. */
  High: 0,
  /** 1, gnet's `LowPriority`: the normal queue once the urgent one is full; at most `MaxAsyncTasksAtOneTime` run per round. */
  Low: 1,
} as const);
/**
 * `Priority.High` (0) or `Priority.Low` (1).
 *
 * @example
 * ```ts
 * const p: Priority = urgent ? Priority.High : Priority.Low;
 * ```
 * @category Tasks
 */
export type Priority = (typeof Priority)[keyof typeof Priority];

const SLOTS = 5; // fn, param, resolve, reject, promise (remote: fn, param, slot, sink, undefined)

/** Where the answer of a task triggered from another thread goes. */
export interface RemoteSink {
  /** The task returned `result` (maybe a promise). */
  done(slot: number, result: unknown): void;
  /** The task threw `error`, or will never run (the poller closed). */
  fail(slot: number, error: unknown): void;
}

export class TaskQueue {
  // Own slots from the start (Array.from defines them): storing a task into a hole would
  // look up Array.prototype, where an index setter could run user code mid-queue.
  private slots: unknown[] = Array.from({ length: 64 * SLOTS });
  private head = 0; // index of the first task's first slot
  private count = 0;
  // What `ran` is made of: tasks taken in the ring's earlier laps, and those rejected.
  private taken = 0;
  private rejected = 0;

  /** `onError` hears what a task throws, before its promise rejects with it (the diagnostics channel). */
  constructor(private readonly onError: (error: unknown) => void = noop) {}

  get length(): number {
    return this.count;
  }

  /**
   * Tasks run from this queue so far, thrown or not (Poller#stats): how far the head has
   * moved, less the tasks rejectAll() took, so running a task costs no count of its own.
   */
  get ran(): number {
    return this.taken + this.head / SLOTS - this.rejected;
  }

  push(fn: TaskFunc, param: unknown, resolve: ((v: unknown) => void) | number, reject: ((e: unknown) => void) | RemoteSink, promise: Promise<unknown> | undefined): void {
    let capacity = this.slots.length / SLOTS;
    if (this.count === capacity) {
      this.grow();
      capacity *= 2;
    }
    let i = this.head + this.count * SLOTS;
    if (i >= this.slots.length) i -= this.slots.length;
    const s = this.slots;
    s[i] = fn;
    s[i + 1] = param;
    s[i + 2] = resolve;
    s[i + 3] = reject;
    s[i + 4] = promise;
    this.count++;
  }

  /**
   * Runs the first task (the queue must not be empty): resolves its promise with what
   * it returns or rejects it with what it throws. Returns the task's result, or
   * undefined when it threw.
   */
  runFirst(): unknown {
    const s = this.slots;
    const i = this.head;
    const fn = s[i] as TaskFunc;
    const param = s[i + 1];
    const resolve = s[i + 2] as ((v: unknown) => void) | number;
    const reject = s[i + 3] as ((e: unknown) => void) | RemoteSink;
    s[i] = s[i + 1] = s[i + 2] = s[i + 3] = s[i + 4] = undefined;
    this.advance(i);
    this.count--;
    let result: unknown;
    if (typeof resolve === 'number') {
      const sink = reject as RemoteSink;
      try {
        result = fn(param);
      } catch (e) {
        this.onError(e);
        sink.fail(resolve, e);
        return undefined;
      }
      sink.done(resolve, result);
      return result;
    }
    try {
      result = fn(param);
    } catch (e) {
      this.onError(e);
      (reject as (e: unknown) => void)(e);
      return undefined;
    }
    resolve(result);
    return result;
  }

  /** Rejects every queued task with `reason`, marking the rejections handled. */
  rejectAll(reason: unknown): void {
    const s = this.slots;
    while (this.count > 0) {
      const i = this.head;
      const slot = s[i + 2];
      const reject = s[i + 3] as ((e: unknown) => void) | RemoteSink;
      const promise = s[i + 4] as Promise<unknown> | undefined;
      s[i] = s[i + 1] = s[i + 2] = s[i + 3] = s[i + 4] = undefined;
      this.advance(i);
      this.count--;
      this.rejected++;
      if (typeof slot === 'number') {
        (reject as RemoteSink).fail(slot, reason);
        continue;
      }
      // Fire-and-forget triggers (gnet style) must not crash the process at close.
      promise!.catch(noop);
      (reject as (e: unknown) => void)(reason);
    }
  }

  /** Moves the head past the task at `i`; a lap of the ring completed adds its tasks to `taken`. */
  private advance(i: number): void {
    if (i + SLOTS === this.slots.length) {
      this.head = 0;
      this.taken += this.slots.length / SLOTS;
    } else {
      this.head = i + SLOTS;
    }
  }

  private grow(): void {
    const old = this.slots;
    const next = Array.from<unknown>({ length: old.length * 2 });
    const firstPart = old.length - this.head;
    for (let k = 0; k < old.length; k++) next[k] = old[k < firstPart ? this.head + k : k - firstPart];
    this.slots = next;
    this.taken += this.head / SLOTS; // the lap so far: the copy starts a new one at 0
    this.head = 0;
  }
}

function noop(): void {}
