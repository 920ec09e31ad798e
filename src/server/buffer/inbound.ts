// A connection's unread input. gnet keeps it in a ring; this one slides instead (the unread
// bytes move to the front when room runs out at the end), so the bytes it holds are always
// contiguous and peek/next hand out views, never copies. Each byte moves at most once per
// time the buffer fills, so the copying is amortised like a ring's wrap-around.

const EMPTY = Buffer.alloc(0);

export class InboundBuffer {
  /** The storage: its own ArrayBuffer (never Node's shared pool), so a view of it is recognisable. */
  #buf: Buffer = EMPTY;
  #start = 0;
  #end = 0;

  get length(): number {
    return this.#end - this.#start;
  }

  /** The bytes of the storage (the outbound side copies writes that alias it). */
  get storage(): ArrayBufferLike {
    return this.#buf.buffer;
  }

  /** The capacity in use (what this connection's input costs). */
  get capacity(): number {
    return this.#buf.length;
  }

  /** A view of the first `n` unread bytes (n ≤ length). */
  view(n: number): Buffer {
    return this.#buf.subarray(this.#start, this.#start + n);
  }

  /** Drops the first `n` unread bytes (n ≤ length). */
  skip(n: number): void {
    this.#start += n;
    if (this.#start === this.#end) this.clear();
  }

  /** Appends a copy of `src`. */
  append(src: Uint8Array): void {
    const n = src.length;
    if (n === 0) return;
    if (this.#buf.length - this.#end < n) this.#makeRoom(n);
    this.#buf.set(src, this.#end);
    this.#end += n;
  }

  /** Forgets everything, and gives the storage back when it is large (a burst should not be kept forever). */
  clear(): void {
    this.#start = this.#end = 0;
    if (this.#buf.length > 64 * 1024) this.#buf = EMPTY;
  }

  #makeRoom(n: number): void {
    const used = this.#end - this.#start;
    if (used + n <= this.#buf.length && this.#start >= used) {
      // Slide: the unread bytes to the front (non-overlapping, since start ≥ used).
      this.#buf.copy(this.#buf, 0, this.#start, this.#end);
    } else {
      let cap = Math.max(this.#buf.length * 2, 4096);
      while (cap < used + n) cap *= 2;
      const next = Buffer.allocUnsafeSlow(cap);
      this.#buf.copy(next, 0, this.#start, this.#end);
      this.#buf = next;
    }
    this.#start = 0;
    this.#end = used;
  }
}
