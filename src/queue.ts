// The task queues behind trigger(): FIFO ring buffers that store each task's
// parts in consecutive slots of one array, so queuing a task allocates nothing
// beyond the promise the caller gets.

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

const SLOTS = 5; // fn, param, resolve, reject, promise

export class TaskQueue {
  private slots: unknown[] = new Array(64 * SLOTS);
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

  push(fn: TaskFunc, param: unknown, resolve: (v: unknown) => void, reject: (e: unknown) => void, promise: Promise<unknown>): void {
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
    const resolve = s[i + 2] as (v: unknown) => void;
    const reject = s[i + 3] as (e: unknown) => void;
    s[i] = s[i + 1] = s[i + 2] = s[i + 3] = s[i + 4] = undefined;
    this.advance(i);
    this.count--;
    let result: unknown;
    try {
      result = fn(param);
    } catch (e) {
      this.onError(e);
      reject(e);
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
      const reject = s[i + 3] as (e: unknown) => void;
      const promise = s[i + 4] as Promise<unknown>;
      s[i] = s[i + 1] = s[i + 2] = s[i + 3] = s[i + 4] = undefined;
      this.advance(i);
      this.count--;
      this.rejected++;
      // Fire-and-forget triggers (gnet style) must not crash the process at close.
      promise.catch(noop);
      reject(reason);
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
    const next = new Array(old.length * 2);
    const firstPart = old.length - this.head;
    for (let k = 0; k < old.length; k++) next[k] = old[k < firstPart ? this.head + k : k - firstPart];
    this.slots = next;
    this.taken += this.head / SLOTS; // the lap so far: the copy starts a new one at 0
    this.head = 0;
  }
}

function noop(): void {}
