// Idle timeouts for many connections on one node timer (gnet has none; its users ask for them).
//
// Each entry has a deadline that activity moves forward by a plain assignment: nothing is
// rescheduled per read or write. Entries sit in buckets, one per stretch of time (a bucket's
// width is an eighth of the entry's timeout, 10 ms to 1 s, so expiry comes at most that late),
// and the one timer is armed for the earliest bucket. When a bucket comes due, each entry in
// it either expired or, having seen activity, moves to the bucket of its new deadline. So a
// busy connection costs one move per timeout period, and while nothing is due the wheel
// costs nothing: no tick runs.

export interface TimerEntry {
  /** When it expires (ms, performance.now() clock); Infinity for never. */
  deadline: number;
  /** The timeout it was given, for the bucket width. */
  timeout: number;
  /** The bucket it sits in, or -1. */
  bucket: number;
}

export class TimerWheel<T extends TimerEntry> {
  readonly #buckets = new Map<number, Set<T>>();
  /** Bucket keys (their end times), a binary min-heap. */
  readonly #heap: number[] = [];
  #timer: NodeJS.Timeout | undefined;
  #armedFor = Infinity;

  constructor(readonly onExpire: (entry: T) => void) {}

  /** Puts `entry` on the wheel for its current deadline (or takes it off for Infinity). */
  schedule(entry: T): void {
    if (entry.deadline === Infinity) return this.remove(entry);
    const width = Math.min(1000, Math.max(10, Math.floor(entry.timeout / 8)));
    // Already in a bucket that comes due in time: it moves on from there if it must.
    if (entry.bucket >= 0 && entry.bucket <= entry.deadline + width) return;
    this.remove(entry);
    const key = Math.ceil(entry.deadline / width) * width;
    let set = this.#buckets.get(key);
    if (set === undefined) {
      set = new Set();
      this.#buckets.set(key, set);
      this.#push(key);
    }
    set.add(entry);
    entry.bucket = key;
    if (key < this.#armedFor) this.#arm(key);
  }

  remove(entry: T): void {
    if (entry.bucket < 0) return;
    this.#buckets.get(entry.bucket)?.delete(entry);
    entry.bucket = -1;
  }

  /** Stops the timer and forgets every entry. */
  clear(): void {
    for (const set of this.#buckets.values()) for (const e of set) e.bucket = -1;
    this.#buckets.clear();
    this.#heap.length = 0;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = Infinity;
  }

  /** How many entries wait. */
  get size(): number {
    let n = 0;
    for (const set of this.#buckets.values()) n += set.size;
    return n;
  }

  #arm(key: number): void {
    clearTimeout(this.#timer);
    this.#armedFor = key;
    this.#timer = setTimeout(this.#fire, Math.max(0, key - performance.now()));
    this.#timer.unref(); // the loop's poller keeps the process alive, not its timeouts
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    this.#armedFor = Infinity;
    const now = performance.now();
    const heap = this.#heap;
    while (heap.length > 0 && heap[0] <= now) {
      const key = this.#pop();
      const set = this.#buckets.get(key);
      this.#buckets.delete(key);
      if (set === undefined) continue;
      for (const e of set) {
        e.bucket = -1;
        if (e.deadline <= now) this.onExpire(e);
        else this.schedule(e);
      }
    }
    while (heap.length > 0 && (this.#buckets.get(heap[0])?.size ?? 0) === 0) {
      this.#buckets.delete(this.#pop());
    }
    if (heap.length > 0 && heap[0] < this.#armedFor) this.#arm(heap[0]);
  };

  #push(key: number): void {
    const h = this.#heap;
    let i = h.push(key) - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p] <= key) break;
      h[i] = h[p];
      i = p;
    }
    h[i] = key;
  }

  #pop(): number {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= h.length) break;
        const c = l + 1 < h.length && h[l + 1] < h[l] ? l + 1 : l;
        if (h[c] >= last) break;
        h[i] = h[c];
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}
