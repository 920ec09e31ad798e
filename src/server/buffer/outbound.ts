// A connection's output not yet written: a list of chunks, flushed with one writev. Small
// writes are copied into slabs of `slabSize` bytes (one system call for many small replies,
// and the caller may reuse its buffer at once); a write as large as a slab is queued as it
// is, unless the caller says it is a view of memory the loop reuses, then it is copied.
// Slabs come from, and go back to, a pool the loop shares among its connections: a
// connection holds one only while it has output waiting.

/** Free slabs of one size, shared by a loop's connections. */
export class SlabPool {
  #free: Buffer[] = [];
  constructor(readonly size: number, readonly keep = 64) {}

  get(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  put(slab: Buffer): void {
    if (slab.length === this.size && this.#free.length < this.keep) this.#free.push(slab);
  }
}

const EMPTY = Buffer.alloc(0);

/** Strings up to this long are tried as ASCII in JavaScript: short replies ('+OK\r\n') are the usual writes. */
const SHORT_STRING = 64;

/** Queue slots an emptied queue keeps. */
const MAX_KEPT_SLOTS = 64;

/**
 * Writes `s` at `at` if it is all ASCII (then its UTF-8 bytes are its char codes): its length,
 * or -1 (what was stored is garbage past the end, to be overwritten). For short strings this
 * beats Buffer#write, whose call into C++ costs more than the copy.
 */
function writeAscii(buf: Buffer, s: string, at: number): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return -1;
    buf[at + i] = c;
  }
  return n;
}

export class OutboundBuffer {
  // The queue lives in slots [#first, #first + #count) of three parallel arrays. Slots are
  // reused, never removed: an emptied queue starts again at slot 0, so the arrays keep their
  // size and no write or consume changes an array's length (V8 does that in its runtime).
  //
  // The arrays start as one-slot literals, whose backing stores hold exactly one element: a
  // connection whose replies fit one slab (the usual case) never grows them. An empty `[]`
  // grows to 17 slots at its first store, which for 10,000 connections was 4.5 MB of three
  // arrays' mostly unused slots.
  /** The queued chunks, oldest first; the first `#head` bytes of the oldest are already written. */
  #chunks: Buffer[] = [EMPTY];
  /** Per chunk: how many of its bytes are filled. */
  #ends: number[] = [0];
  /** Per chunk: whether it is a slab of the pool (still fillable when last; given back once written). */
  #owned: boolean[] = [false];
  #first = 0;
  #count = 0;
  #head = 0;
  #length = 0;

  constructor(readonly pool: SlabPool) {}

  get length(): number {
    return this.#length;
  }

  /** How many chunks are queued. */
  get chunks(): number {
    return this.#count;
  }

  /** The oldest chunk (there must be one): its unwritten bytes start at {@link firstStart}. */
  get firstChunk(): Buffer {
    const c = this.#chunks[this.#first];
    if (c.length < this.#ends[this.#first]) throw detachedError();
    return c;
  }

  /** Where the unwritten bytes of the oldest chunk start. */
  get firstStart(): number {
    return this.#head;
  }

  /** Queues the bytes of `data`; `copy` forces a copy even when large. */
  push(data: Uint8Array, copy: boolean): void {
    const n = data.length;
    if (n === 0) return;
    const slabSize = this.pool.size;
    this.#length += n;
    let off = 0;
    const last = this.#first + this.#count - 1;
    if (n < slabSize && this.#count > 0 && this.#owned[last]) {
      const tail = this.#chunks[last];
      const used = this.#ends[last];
      const k = Math.min(tail.length - used, n);
      if (k > 0) {
        tail.set(k === n ? data : data.subarray(0, k), used);
        this.#ends[last] = used + k;
        off = k;
        if (off === n) return;
      }
    }
    const rest = n - off;
    if (rest >= slabSize) {
      const view = Buffer.from(data.buffer, data.byteOffset + off, rest);
      this.#add(copy ? Buffer.from(view) : view, rest, false);
      return;
    }
    const slab = this.pool.get();
    slab.set(off === 0 ? data : data.subarray(off), 0);
    this.#add(slab, rest, true);
  }

  /** Queues a string's UTF-8 bytes, written straight into a slab when it fits one. */
  pushString(s: string): void {
    const len = s.length;
    if (len === 0) return;
    const most = len * 3; // UTF-8 bytes per UTF-16 unit, at most
    const short = len <= SHORT_STRING;
    const last = this.#first + this.#count - 1;
    if (this.#count > 0 && this.#owned[last]) {
      const tail = this.#chunks[last];
      const used = this.#ends[last];
      const room = tail.length - used;
      // An ASCII string needs only its length; others may need up to `most`.
      const n = short && room >= len ? writeAscii(tail, s, used) : -1;
      if (n >= 0 || room >= most) return this.#filled(last, n >= 0 ? n : tail.write(s, used));
    }
    if (most > this.pool.size) return this.push(Buffer.from(s), false);
    const slab = this.pool.get();
    const n = short ? writeAscii(slab, s, 0) : -1;
    this.#add(slab, 0, true);
    this.#filled(this.#first + this.#count - 1, n >= 0 ? n : slab.write(s, 0));
  }

  /** `n` more bytes of the chunk in `slot` are filled. */
  #filled(slot: number, n: number): void {
    this.#ends[slot] += n;
    this.#length += n;
  }

  /**
   * The queued bytes as views for writev, at most `max` of them.
   * @throws TypeError when a chunk queued without a copy was detached (transferred) or its
   * resizable ArrayBuffer shrunk since: its bytes are gone, and a writev of what is left
   * would write nothing, again and again.
   */
  iovecs(max: number): Buffer[] {
    const chunks = this.#chunks;
    const n = Math.min(this.#count, max);
    const out = new Array<Buffer>(n);
    for (let i = 0; i < n; i++) {
      const slot = this.#first + i;
      const c = chunks[slot];
      const start = i === 0 ? this.#head : 0;
      const end = this.#ends[slot];
      if (c.length < end) throw detachedError();
      out[i] = start === 0 && end === c.length ? c : c.subarray(start, end);
    }
    return out;
  }

  /** Drops the first `n` bytes (they were written). */
  consume(n: number): void {
    this.#length -= n;
    if (this.#length === 0) return this.clear(); // all written: the usual case
    while (n > 0 && this.#count > 0) {
      const left = this.#ends[this.#first] - this.#head;
      if (n < left) {
        this.#head += n;
        return;
      }
      n -= left;
      this.#dropFirst();
    }
  }

  /** Drops everything (the connection is gone, or all was written). */
  clear(): void {
    while (this.#count > 0) this.#dropFirst();
    if (this.#chunks.length > MAX_KEPT_SLOTS) {
      // A burst of many chunks (large writes past the high-water mark) made the arrays long:
      // they are not kept for the connection's lifetime.
      this.#chunks = [EMPTY];
      this.#ends = [0];
      this.#owned = [false];
    }
    this.#first = 0;
    this.#head = 0;
    this.#length = 0;
  }

  #add(chunk: Buffer, end: number, owned: boolean): void {
    let slot = this.#first + this.#count;
    if (slot === this.#chunks.length && this.#first > 0 && this.#first >= this.#count) {
      // Out of slots at the end while the front ones are free: move the queue to the front.
      for (let i = 0; i < this.#count; i++) {
        const from = this.#first + i;
        this.#chunks[i] = this.#chunks[from];
        this.#ends[i] = this.#ends[from];
        this.#owned[i] = this.#owned[from];
        this.#chunks[from] = EMPTY;
      }
      this.#first = 0;
      slot = this.#count;
    }
    this.#chunks[slot] = chunk;
    this.#ends[slot] = end;
    this.#owned[slot] = owned;
    this.#count++;
  }

  #dropFirst(): void {
    const slot = this.#first;
    const c = this.#chunks[slot];
    this.#chunks[slot] = EMPTY; // a caller's large buffer is not kept alive by a free slot
    if (this.#owned[slot]) this.pool.put(c);
    this.#count--;
    this.#first = this.#count === 0 ? 0 : slot + 1;
    this.#head = 0;
  }
}

/** A chunk queued without a copy lost its bytes (transferred, or its resizable buffer shrunk). */
function detachedError(): TypeError {
  return Object.assign(new TypeError('A buffer given to write() was detached or shrunk before it was sent'), { code: 'ERR_INVALID_STATE' });
}
