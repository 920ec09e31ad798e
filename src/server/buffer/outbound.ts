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

export class OutboundBuffer {
  /** The queued chunks, oldest first; the first `#head` bytes of chunk 0 are already written. */
  #chunks: Buffer[] = [];
  /** Per chunk: how many of its bytes are filled. */
  #ends: number[] = [];
  /** Per chunk: whether it is a slab of the pool (still fillable when last; given back once written). */
  #owned: boolean[] = [];
  #head = 0;
  #length = 0;

  constructor(readonly pool: SlabPool) {}

  get length(): number {
    return this.#length;
  }

  /** Queues the bytes of `data`; `copy` forces a copy even when large. */
  push(data: Uint8Array, copy: boolean): void {
    const n = data.length;
    if (n === 0) return;
    const slabSize = this.pool.size;
    this.#length += n;
    let off = 0;
    const last = this.#chunks.length - 1;
    if (n < slabSize && last >= 0 && this.#owned[last]) {
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

  /** Queues a string's UTF-8 bytes. */
  pushString(s: string): void {
    const last = this.#chunks.length - 1;
    if (last >= 0 && this.#owned[last]) {
      const tail = this.#chunks[last];
      const used = this.#ends[last];
      if (s.length * 3 <= tail.length - used) {
        const n = tail.write(s, used);
        this.#ends[last] = used + n;
        this.#length += n;
        return;
      }
    }
    this.push(Buffer.from(s), false);
  }

  /**
   * The queued bytes as views for writev, at most `max` of them.
   * @throws TypeError when a chunk queued without a copy was detached (transferred) or its
   * resizable ArrayBuffer shrunk since: its bytes are gone, and a writev of what is left
   * would write nothing, again and again.
   */
  iovecs(max: number): Buffer[] {
    const chunks = this.#chunks;
    const n = Math.min(chunks.length, max);
    const out = new Array<Buffer>(n);
    for (let i = 0; i < n; i++) {
      const c = chunks[i];
      const start = i === 0 ? this.#head : 0;
      const end = this.#ends[i];
      if (c.length < end) {
        throw Object.assign(new TypeError('A buffer given to write() was detached or shrunk before it was sent'), { code: 'ERR_INVALID_STATE' });
      }
      out[i] = start === 0 && end === c.length ? c : c.subarray(start, end);
    }
    return out;
  }

  /** Drops the first `n` bytes (they were written). */
  consume(n: number): void {
    this.#length -= n;
    while (n > 0 && this.#chunks.length > 0) {
      const left = this.#ends[0] - this.#head;
      if (n < left) {
        this.#head += n;
        return;
      }
      n -= left;
      this.#dropFirst();
    }
  }

  /** Drops everything (the connection is gone). */
  clear(): void {
    while (this.#chunks.length > 0) this.#dropFirst();
    this.#length = 0;
  }

  #add(chunk: Buffer, end: number, owned: boolean): void {
    this.#chunks.push(chunk);
    this.#ends.push(end);
    this.#owned.push(owned);
  }

  #dropFirst(): void {
    const c = this.#chunks.shift()!;
    this.#ends.shift();
    if (this.#owned.shift() === true) this.pool.put(c);
    this.#head = 0;
  }
}
