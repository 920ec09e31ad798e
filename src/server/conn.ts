// A connection: what the handler sees (Conn), and the record the loop keeps (Connection).
import { socket, type SocketAddress } from '../index.js';
import { InboundBuffer } from './buffer/inbound.js';
import { OutboundBuffer, type SlabPool } from './buffer/outbound.js';
import { invalidType, checkInteger } from './options.js';
import type { TimerEntry } from './timers.js';

/**
 * One connection, as the handler's methods get it (gnet's `Conn`). Its methods are for the
 * engine's loop, inside the handler's calls or in callbacks on the same thread (timers,
 * promise reactions). Buffers that `peek` and `next` return are views of memory the loop
 * reuses: use or copy them before the handler returns. A later call may return the same
 * Buffer object again (for the same range of that memory): the loop makes no new view per
 * message.
 *
 * @example
 * ```ts
 * const handler: EventHandler = {
 *   onTraffic(conn) {
 *     while (conn.inboundBuffered >= 4) {
 *       const len = conn.peek(4).readUInt32BE(0);
 *       if (conn.inboundBuffered < 4 + len) break;  // wait for the rest
 *       conn.discard(4);
 *       conn.write(handle(conn.next(len)));
 *     }
 *   },
 * };
 * ```
 * @category Server
 */
export interface Conn {
  /** The socket's descriptor (the engine owns it: do not close it yourself). */
  readonly fd: number;
  /** The local address, as `net.Socket`'s `address()`; the path for a Unix socket. */
  readonly localAddress: SocketAddress;
  /** The peer's address; for a Unix socket, the peer's path ('' when unnamed). */
  readonly remoteAddress: SocketAddress;
  /** Whatever the handler keeps with the connection (gnet's `Context`). Starts undefined. */
  context: unknown;
  /** Bytes read and not yet consumed. */
  readonly inboundBuffered: number;
  /** Bytes queued and not yet written. */
  readonly outboundBuffered: number;
  /** True once the connection is closing (queued output is still being written) or closed. */
  readonly closed: boolean;
  /**
   * The next `n` unread bytes (all of them when `n` is left out, fewer when fewer are buffered),
   * consumed. A view, not a copy, when the bytes lie contiguous; valid until the handler returns.
   * @param n - how many bytes, at most; default all.
   * @throws RangeError when `n` is not an integer ≥ 0.
   * @example
   * ```ts
   * const line = conn.next().toString();
   * ```
   */
  next(n?: number): Buffer;
  /**
   * As {@link Conn.next}, without consuming the bytes.
   * @param n - how many bytes, at most; default all.
   * @throws RangeError when `n` is not an integer ≥ 0.
   * @example
   * ```ts
   * if (conn.peek(1)[0] === 0x2a) parseArray(conn);
   * ```
   */
  peek(n?: number): Buffer;
  /**
   * Drops the next `n` unread bytes (all when left out).
   * @param n - how many bytes, at most; default all.
   * @returns how many were dropped.
   * @throws RangeError when `n` is not an integer ≥ 0.
   * @example
   * ```ts
   * conn.discard(4); // the length prefix, already read with peek()
   * ```
   */
  discard(n?: number): number;
  /**
   * Queues `data` to be written when the handler returns (at once when called outside the
   * handler). The bytes are copied unless the write is at least `writeBufferCap` long, as
   * node:net does not copy: do not change such a buffer after writing it (transferring or
   * shrinking its ArrayBuffer before it is sent closes the connection with a TypeError). On a closing or
   * closed connection, nothing is queued.
   * @param data - bytes, or a string (written as UTF-8).
   * @returns false once the outbound buffer is above the high-water mark (or the connection
   * is closing): stop writing until `onDrain`.
   * @throws TypeError when `data` is neither a Uint8Array nor a string.
   * @example
   * ```ts
   * if (!conn.write(chunk)) return; // onDrain will call us again
   * ```
   */
  write(data: Uint8Array | string): boolean;
  /**
   * Queues several buffers, as `write` does for each (one `writev` later sends them all).
   * @param list - bytes or strings, in order.
   * @returns what a last `write` would.
   * @throws TypeError when `list` is not an array of Uint8Arrays and strings.
   * @example
   * ```ts
   * conn.writev([`$${value.length}\r\n`, value, '\r\n']);
   * ```
   */
  writev(list: readonly (Uint8Array | string)[]): boolean;
  /**
   * Writes what is queued now, instead of when the handler returns. A write error closes the
   * connection (`onClose` gets it).
   * @throws Never.
   * @example
   * ```ts
   * conn.write(header); conn.flush(); // before a long computation
   * ```
   */
  flush(): void;
  /**
   * Queues `data` from anywhere on the loop's thread (a timer, a promise) and writes it in
   * the loop's next turn (gnet's `AsyncWrite`).
   * @param data - bytes, or a string (written as UTF-8).
   * @returns a promise of true once it was handed to the kernel (or queued behind output
   * that waits for the peer), false when the connection closed first; it never rejects.
   * @throws TypeError when `data` is neither a Uint8Array nor a string.
   * @example
   * ```ts
   * setTimeout(() => void conn.asyncWrite('tick\n'), 1000);
   * ```
   */
  asyncWrite(data: Uint8Array | string): Promise<boolean>;
  /**
   * Closes the connection once what is queued is written (an orderly close: `onClose` gets no
   * error). Nothing more is read. Idempotent.
   * @throws Never.
   * @example
   * ```ts
   * conn.write('bye\n'); conn.close();
   * ```
   */
  close(): void;
  /**
   * Stops reading: no more `onTraffic` until {@link Conn.resume}, and the fd is not watched for
   * input (no busy loop; the peer's bytes wait in the kernel). Queued output is still written.
   * @throws Never.
   * @example
   * ```ts
   * conn.pause();
   * void lookup(key).then((v) => { conn.write(v); conn.resume(); });
   * ```
   */
  pause(): void;
  /**
   * Reads again; when input is already buffered, `onTraffic` comes in the loop's next turn.
   * @throws Never.
   * @example
   * ```ts
   * conn.resume();
   * ```
   */
  resume(): void;
  /**
   * Asks for an `onTraffic` call in the loop's next turn, input or not (gnet's `Wake`).
   * Several calls before it runs make one.
   * @throws Never.
   * @example
   * ```ts
   * queue.push(job); conn.wake(); // onTraffic sends the results
   * ```
   */
  wake(): void;
  /**
   * Sets this connection's idle timeout, counted from now: with no byte read or written for
   * that long, it closes and `onClose` gets an `ETIMEDOUT` error.
   * @param ms - milliseconds; 0 for none.
   * @throws RangeError when `ms` is not an integer in 0..2^31-1.
   * @example
   * ```ts
   * conn.setIdleTimeout(authenticated ? 300_000 : 5_000);
   * ```
   */
  setIdleTimeout(ms: number): void;
}

/** Where a connection is in its life. */
export const enum ConnState {
  /** Reading and writing. */
  Open,
  /** No more reading: queued output is being written, then the fd closes. */
  Closing,
  /** The fd is closed and the handler had its onClose. */
  Closed,
}

/** What the loop does for a connection's methods. */
export interface ConnOwner {
  readonly readBuffer: Buffer;
  /** A view of the read buffer's bytes [start, start + n): the last one made, when it is the same range. */
  readView(start: number, n: number): Buffer;
  readonly pool: SlabPool;
  readonly highWaterMark: number;
  /** The connection changed what it needs (output, interest, a close): act now, or after the handler returns. */
  touch(conn: Connection): void;
  /** Writes what is queued now. */
  flush(conn: Connection): void;
  /** Schedules an onTraffic call. */
  wake(conn: Connection): void;
  /** Schedules a flush in the next turn; settles the promise. */
  asyncFlush(conn: Connection): Promise<boolean>;
  /** Puts the connection on (or off) the timer wheel after its timeout changed. */
  retime(conn: Connection): void;
  /** Counts connections paused by pause() (+1) and resumed (-1). */
  countPause(delta: number): void;
}

const EMPTY = Buffer.alloc(0);

export class Connection implements Conn, TimerEntry {
  context: unknown = undefined;
  state = ConnState.Open;
  /** Reading stopped by pause(). */
  paused = false;
  /** Reading stopped because output passed the high-water mark. */
  held = false;
  /** write() returned false: onDrain is owed once output falls to the low-water mark. */
  drainOwed = false;
  /** The last write came back short: wait for a write event before writing again. */
  waitingWritable = false;
  /** The interest registered with the poller now: 0, or READ | WRITE bits. */
  interest = 0;
  /** In the loop's list of connections to settle after the current handler call. */
  dirty = false;
  /** The fd number was found reused by another socket: never close or deregister it. */
  fdLost = false;
  /** An onTraffic is queued (wake, resume). */
  wakeQueued = false;
  /** The error onClose will get when the close is finished. */
  closeError: Error | undefined = undefined;
  readonly inbound = new InboundBuffer();
  readonly outbound: OutboundBuffer;
  /** The part of the loop's read buffer that onTraffic is reading now: [curStart, curEnd). */
  curStart = 0;
  curEnd = 0;
  // TimerEntry
  deadline = Infinity;
  timeout = 0;
  bucket = -1;
  lastActivity = performance.now();
  readonly openedAt = Date.now();
  #local: SocketAddress | undefined;
  #remote: SocketAddress | undefined;

  constructor(
    readonly owner: ConnOwner,
    readonly fd: number,
    remote: SocketAddress | undefined,
    readonly isTcp: boolean,
  ) {
    this.#remote = remote;
    this.outbound = new OutboundBuffer(owner.pool);
  }

  get localAddress(): SocketAddress {
    if (this.#local === undefined) this.#local = this.#address(socket.localAddress);
    return this.#local;
  }

  get remoteAddress(): SocketAddress {
    if (this.#remote === undefined) this.#remote = this.#address(socket.remoteAddress);
    return this.#remote;
  }

  #address(get: (fd: number) => SocketAddress): SocketAddress {
    if (this.state === ConnState.Closed) return { address: '', family: this.isTcp ? 'IPv4' : 'Unix', port: 0 };
    try {
      return get(this.fd);
    } catch {
      return { address: '', family: this.isTcp ? 'IPv4' : 'Unix', port: 0 };
    }
  }

  get closed(): boolean {
    return this.state !== ConnState.Open;
  }

  get inboundBuffered(): number {
    return this.inbound.length + (this.curEnd - this.curStart);
  }

  get outboundBuffered(): number {
    return this.outbound.length;
  }

  /** Whether reading is wanted now. */
  get reading(): boolean {
    return this.state === ConnState.Open && !this.paused && !this.held;
  }

  #count(n: unknown, name: string): number {
    const have = this.inboundBuffered;
    if (n === undefined) return have;
    return Math.min(checkInteger(n, name, 0, Number.MAX_SAFE_INTEGER), have);
  }

  peek(n?: number): Buffer {
    const want = this.#count(n, 'n');
    const inb = this.inbound;
    if (want === 0) return EMPTY;
    if (inb.length === 0) return this.owner.readView(this.curStart, want);
    if (want <= inb.length) return inb.view(want);
    // Spans the buffered input and the bytes just read: move the latter in (they would be
    // moved when the handler returns anyway), and the whole is contiguous.
    inb.append(this.owner.readBuffer.subarray(this.curStart, this.curEnd));
    this.curStart = this.curEnd = 0;
    return inb.view(want);
  }

  next(n?: number): Buffer {
    const b = this.peek(n);
    this.#skip(b.length);
    return b;
  }

  discard(n?: number): number {
    const k = this.#count(n, 'n');
    this.#skip(k);
    return k;
  }

  #skip(k: number): void {
    const inb = this.inbound;
    const fromInbound = Math.min(k, inb.length);
    if (fromInbound > 0) inb.skip(fromInbound);
    this.curStart += k - fromInbound;
  }

  write(data: Uint8Array | string): boolean {
    if (this.state !== ConnState.Open) return false;
    this.#queue(data, 'data');
    this.owner.touch(this);
    return this.#room();
  }

  writev(list: readonly (Uint8Array | string)[]): boolean {
    if (!Array.isArray(list)) throw invalidType('list', 'an array of Buffers, Uint8Arrays or strings', list);
    if (this.state !== ConnState.Open) return false;
    for (let i = 0; i < list.length; i++) this.#queue(list[i], `list[${i}]`);
    this.owner.touch(this);
    return this.#room();
  }

  #room(): boolean {
    if (this.outbound.length <= this.owner.highWaterMark) return true;
    this.drainOwed = true;
    return false;
  }

  #queue(data: unknown, name: string): void {
    if (typeof data === 'string') return this.outbound.pushString(data);
    if (!(data instanceof Uint8Array)) throw invalidType(name, 'a Buffer, Uint8Array or string', data);
    // Writes shorter than a slab are copied anyway; a longer view of memory the loop reuses
    // is copied too.
    const out = this.outbound;
    out.push(data, data.length >= out.pool.size && this.#aliasesLoopMemory(data));
  }

  #aliasesLoopMemory(data: Uint8Array): boolean {
    const b = data.buffer;
    return b === this.owner.readBuffer.buffer || b === this.inbound.storage;
  }

  flush(): void {
    if (this.state === ConnState.Closed) return;
    this.owner.flush(this);
  }

  asyncWrite(data: Uint8Array | string): Promise<boolean> {
    if (this.state !== ConnState.Open) return Promise.resolve(false);
    this.#queue(data, 'data');
    return this.owner.asyncFlush(this);
  }

  close(): void {
    if (this.state !== ConnState.Open) return;
    this.state = ConnState.Closing;
    this.owner.touch(this);
  }

  pause(): void {
    if (this.paused || this.state === ConnState.Closed) return;
    this.paused = true;
    this.owner.countPause(1);
    if (this.state === ConnState.Open) this.owner.touch(this);
  }

  resume(): void {
    if (!this.paused || this.state === ConnState.Closed) return;
    this.paused = false;
    this.owner.countPause(-1);
    if (this.state !== ConnState.Open) return;
    this.owner.touch(this);
    if (this.inboundBuffered > 0) this.owner.wake(this);
  }

  wake(): void {
    if (this.state === ConnState.Open) this.owner.wake(this);
  }

  setIdleTimeout(ms: number): void {
    checkInteger(ms, 'ms', 0, 0x7fffffff);
    if (this.state === ConnState.Closed) return;
    this.timeout = ms;
    this.deadline = ms === 0 ? Infinity : performance.now() + ms;
    this.owner.retime(this);
  }
}
