// One event loop: one Poller, the connections by fd, I/O in gnet's fixed order, ticks and
// idle timeouts. Everything here runs on the loop's thread.
import {
  Priority,
  isErrorOnlyEvent,
  isReadEvent,
  isWriteEvent,
  openPoller,
  socket,
  type IOEvent,
  type IOFlags,
  type Poller,
  type SocketAddress,
} from '../index.js';
import { SlabPool } from './buffer/outbound.js';
import { Connection, ConnState, type ConnOwner } from './conn.js';
import { publish, serverChannel, type ConnInfo, type LoopStats } from './diagnostics.js';
import { Action, type HandlerMethods, type TickResult } from './handler.js';
import type { ResolvedOptions } from './options.js';
import { TimerWheel } from './timers.js';

// Taken once: tsc's CommonJS output reads a re-exported name through a getter on the index
// module's exports object, which V8 cannot inline; per event, that lookup cost as much as the
// loop's own work.
const { read: readFd, write: writeFd, writev: writevFd, IOV_MAX } = socket;
const isErrorOnly = isErrorOnlyEvent;
const isRead = isReadEvent;
const isWrite = isWriteEvent;

const READ = 1;
const WRITE = 2;
/** Whether `conn` is closed: a call, so that TypeScript does not keep a narrowing across calls that close it. */
function gone(conn: Connection): boolean {
  return conn.state === ConnState.Closed;
}

/** An Error with a code (what onClose gets for timeouts and failures that are not the kernel's). */
export function codedError(message: string, code: string, cause?: unknown): Error & { code: string } {
  const err = new Error(message, cause === undefined ? undefined : { cause }) as Error & { code: string };
  err.code = code;
  return err;
}

function asError(e: unknown): Error {
  if (e instanceof Error) return e;
  return codedError(`a handler threw a value that is not an Error: ${String(e)}`, 'ERR_HANDLER_THREW', e);
}

/** What the loop tells its owner (the engine or the client). */
export interface LoopHost {
  /** A handler asked for Action.Shutdown. */
  requestShutdown(): void;
  /** A connection closed (the engine counts down to the end of a stop). */
  connectionClosed(): void;
  /** A connection opened on `fd`. */
  connectionOpened?(fd: number): void;
  /** The loop is about to close `fd` (a multicore loop thread clears its claim on it first). */
  releasing?(fd: number): void;
}

export class EventLoop implements ConnOwner {
  readonly poller: Poller;
  readonly readBuffer: Buffer;
  /** The last view readView made, of the read buffer's bytes [#viewStart, #viewStart + #viewLength). */
  #view: Buffer = Buffer.alloc(0);
  #viewStart = 0;
  #viewLength = 0;
  readonly pool: SlabPool;
  readonly highWaterMark: number;
  readonly lowWaterMark: number;
  readonly #conns: (Connection | undefined)[] = [];
  /** Other fds this loop watches (a listener, dials in progress), with their handlers. */
  readonly #others = new Map<number, (event: IOEvent, flags: IOFlags) => void>();
  readonly #wheel: TimerWheel<Connection>;
  /** Connections to settle once the current handler call returns. */
  readonly #dirty: Connection[] = [];
  /** How deep in handler calls we are: settling waits until the outermost returns. */
  #depth = 0;
  /** Settling the dirty list now (a nested call leaves what it adds to the running loop). */
  #settlingDirty = false;
  /**
   * The connection whose outermost handler call runs now: #call settles it when the call
   * returns, so its writes need no place in the dirty list.
   */
  #current: Connection | undefined = undefined;
  /** The handler's per-connection methods, read once (the hot path calls them per event). */
  readonly #onTraffic: ((conn: Connection) => unknown) | undefined;
  /**
   * The clock for activity stamps: read once per poll batch or per 16 stamps, not per read
   * and write (performance.now() costs about 50 ns). A stamp is stale by at most the time the
   * handler calls since the last read took, within one synchronous run of the loop (a
   * microtask ends it): an idle timeout may come that much early, which matters only for
   * timeouts as short as 16 handler calls are slow.
   */
  #now = 0;
  #clockUses = 0;
  readonly #clockExpires = (): void => {
    this.#clockUses = 0;
  };
  #closed = false;
  #tickTimer: NodeJS.Timeout | undefined;
  readonly polling: Promise<Error>;
  readonly stats: LoopStats = { connections: 0, opened: 0, bytesIn: 0, bytesOut: 0, pausedForBackpressure: 0, paused: 0, timedOut: 0, handlerErrors: 0, events: 0 };

  constructor(
    readonly handler: HandlerMethods,
    readonly options: ResolvedOptions,
    readonly host: LoopHost,
  ) {
    this.readBuffer = Buffer.allocUnsafeSlow(options.readBufferCap);
    this.pool = new SlabPool(options.writeBufferCap);
    this.highWaterMark = options.highWaterMark;
    this.lowWaterMark = options.lowWaterMark;
    this.#onTraffic = handler.onTraffic as ((conn: Connection) => unknown) | undefined;
    this.#wheel = new TimerWheel<Connection>((c) => this.#expire(c));
    this.poller = openPoller();
    this.polling = this.poller.polling(this.#onEvent);
    // Every handler call is guarded, so polling ends only by close; anything else is a bug here.
    this.polling.catch((e: unknown) => publish({ type: 'error', source: 'engine', error: e, conn: undefined }));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Whether `fd` is one of this loop's open connections. */
  serves(fd: number): boolean {
    return this.#conns[fd] !== undefined;
  }

  /** Watches a non-connection fd (a listener, a dial in progress) for reads or writes. */
  watch(fd: number, write: boolean, onEvent: (event: IOEvent, flags: IOFlags) => void): void {
    this.#others.set(fd, onEvent);
    if (write) this.poller.addWrite({ fd });
    else this.poller.addRead({ fd });
  }

  unwatch(fd: number): void {
    if (!this.#others.delete(fd)) return;
    try {
      this.poller.delete(fd);
    } catch {
      // the poller is closed or the fd already gone: nothing is watched either way
    }
  }

  readonly #onEvent = (fd: number, event: IOEvent, flags: IOFlags): void => {
    const conn = this.#conns[fd];
    try {
      if (conn !== undefined) return this.#processIO(conn, event, flags);
      this.#others.get(fd)?.(event, flags);
    } catch (e) {
      // Handler calls are guarded; this is the poller refusing a registration change (the fd
      // was closed behind our back) or a bug here. It costs that connection, never the loop.
      publish({ type: 'error', source: 'engine', error: e, conn });
      if (conn !== undefined) this.closeNow(conn, asError(e));
    }
  };

  // ---- connections ----

  /** Serves a connected socket: options, registration, onOpen. The loop owns `fd` from now on, even when this throws. */
  open(fd: number, remote: SocketAddress | undefined, isTcp: boolean): Connection {
    const o = this.options;
    try {
      if (isTcp) {
        if (o.tcpNoDelay) socket.setNoDelay(fd);
        if (o.tcpKeepAlive > 0) socket.setKeepAlive(fd, true, Math.max(1, Math.ceil(o.tcpKeepAlive / 1000)));
      }
      if (o.socketRecvBuffer > 0) socket.setRecvBuffer(fd, o.socketRecvBuffer);
      if (o.socketSendBuffer > 0) socket.setSendBuffer(fd, o.socketSendBuffer);
    } catch (e) {
      // A peer that already reset the connection fails here: not worth a connection.
      socket.close(fd);
      throw e;
    }
    const stale = this.#conns[fd];
    if (stale !== undefined) {
      // The number came back from accept while a connection still holds it: its fd was closed
      // behind the engine's back. That connection is gone; its fd must not be touched again.
      stale.interest = 0;
      stale.fdLost = true;
      this.closeNow(stale, codedError(`fd ${fd} was closed behind the engine's back`, 'EBADF'));
    }
    const conn = new Connection(this, fd, remote, isTcp);
    this.#conns[fd] = conn;
    this.stats.connections++;
    this.stats.opened++;
    if (o.idleTimeout > 0) {
      conn.timeout = o.idleTimeout;
      conn.deadline = conn.lastActivity + o.idleTimeout;
      this.#wheel.schedule(conn);
    }
    try {
      this.#setInterest(conn, READ);
    } catch (e) {
      // Not registered, so not opened: undo, and the caller hears why.
      this.#wheel.remove(conn);
      conn.state = ConnState.Closed;
      this.#conns[fd] = undefined;
      this.stats.connections--;
      this.stats.opened--;
      socket.close(fd);
      throw e;
    }
    this.host.connectionOpened?.(fd);
    if (serverChannel.hasSubscribers) publish({ type: 'open', conn });
    this.#invoke(conn, 'onOpen');
    return conn;
  }

  /** gnet's processIO: errors without data close at once; then write before read; read, then the end. */
  #processIO(conn: Connection, event: IOEvent, flags: IOFlags): void {
    if (isErrorOnly(event, flags)) {
      // Broken, nothing to read or write: do not bother writing (gnet releases the output).
      let err: Error | undefined;
      try {
        err = socket.socketError(conn.fd);
      } catch (e) {
        err = asError(e);
      }
      return this.closeNow(conn, err);
    }
    // Output first: when the peer is slow or gone, what it was sent leaves (or fails) before
    // more requests are taken in.
    if (isWrite(event)) {
      conn.waitingWritable = false;
      this.#settle(conn);
      if (gone(conn)) return;
    }
    // A wake still queued with input buffered (resume() after a pause): that onTraffic comes
    // first, before more is read, so that an end of stream read now cannot close the
    // connection before the handler saw what the peer sent ahead of it.
    if (isRead(event) && conn.reading && conn.wakeQueued && conn.inboundBuffered > 0) {
      conn.wakeQueued = false;
      this.#invoke(conn, 'onTraffic');
      if (gone(conn)) return;
    }
    if (isRead(event) && conn.reading) this.#read(conn);
  }

  #read(conn: Connection): void {
    const buf = this.readBuffer;
    const et = this.options.edgeTriggered;
    let budget = et ? this.options.edgeTriggeredIOChunk : 0;
    for (;;) {
      let n: number;
      try {
        n = readFd(conn.fd, buf);
      } catch (e) {
        return this.closeNow(conn, asError(e)); // ECONNRESET and the like
      }
      if (n < 0) return; // drained
      if (n === 0) {
        // The peer's end of stream: what it was sent still goes out, then the close.
        conn.state = ConnState.Closing;
        return this.#settle(conn);
      }
      this.stats.bytesIn += n;
      this.#active(conn);
      conn.curStart = 0;
      conn.curEnd = n;
      this.#traffic(conn);
      // What the handler left unread moves to the connection's own buffer (the read buffer is the loop's).
      if (conn.curEnd > conn.curStart) {
        if (conn.state !== ConnState.Closed) conn.inbound.append(buf.subarray(conn.curStart, conn.curEnd));
        conn.curStart = conn.curEnd = 0;
      }
      // Level-triggered: one read per event, and the poller reports the rest (fair to the others).
      if (!et || !conn.reading) return;
      budget -= n;
      if (budget <= 0) {
        // Edge-triggered and still more: continue in a later turn, as gnet does.
        void this.poller.trigger(Priority.Low, () => {
          if (conn.reading && this.#conns[conn.fd] === conn) this.#read(conn);
        });
        return;
      }
    }
  }

  /** One writev of the queued output (or as much as the edge-triggered chunk allows). */
  #write(conn: Connection): void {
    const out = conn.outbound;
    let budget = this.options.edgeTriggered ? this.options.edgeTriggeredIOChunk : Infinity;
    while (out.length > 0 && budget > 0) {
      const want = out.length;
      let n: number;
      try {
        // One chunk (the usual case: the replies of one onTraffic share a slab) goes out with
        // write() and an offset, without the array and the view that writev would take.
        n = out.chunks === 1 ? writeFd(conn.fd, out.firstChunk, out.firstStart, want) : writevFd(conn.fd, out.iovecs(IOV_MAX));
      } catch (e) {
        out.clear();
        return this.closeNow(conn, asError(e)); // EPIPE, ECONNRESET
      }
      if (n < 0) {
        conn.waitingWritable = true;
        return;
      }
      out.consume(n);
      this.stats.bytesOut += n;
      this.#active(conn);
      budget -= n;
      if (n < want && out.length > 0) {
        // A short write: the socket's buffer is full; the next write event says when to go on.
        conn.waitingWritable = true;
        return;
      }
    }
    if (out.length > 0 && !conn.waitingWritable) {
      // Edge-triggered, out of budget but not of room: no edge will come, so go on in a later turn.
      void this.poller.trigger(Priority.Low, () => {
        if (!gone(conn)) this.#settle(conn);
      });
    }
  }

  #active(conn: Connection): void {
    const now = this.#clock();
    conn.lastActivity = now;
    if (conn.timeout > 0) conn.deadline = now + conn.timeout;
  }

  /** performance.now(), read again after a microtask checkpoint (each poll batch ends in one) or 16 uses. */
  #clock(): number {
    if (this.#clockUses === 0) {
      this.#now = performance.now();
      queueMicrotask(this.#clockExpires);
    } else if (this.#clockUses >= 16) {
      this.#now = performance.now();
      this.#clockUses = 1;
    }
    this.#clockUses++;
    return this.#now;
  }

  /**
   * Brings a connection in line with what it needs: queued output written, a close finished,
   * backpressure held or released (with onDrain), the poller's interest updated.
   */
  #settle(conn: Connection): void {
    for (let round = 0; round < 8; round++) {
      if (gone(conn)) return;
      if (conn.outbound.length > 0 && !conn.waitingWritable) {
        this.#write(conn);
        if (gone(conn)) return;
      }
      if (conn.state === ConnState.Closing && conn.outbound.length === 0) return this.closeNow(conn, conn.closeError);
      const out = conn.outbound.length;
      if (!conn.held && out > this.highWaterMark) {
        conn.held = true;
        this.stats.pausedForBackpressure++;
      } else if (conn.held && out <= this.lowWaterMark) {
        conn.held = false;
        this.stats.pausedForBackpressure--;
      }
      try {
        this.#setInterest(conn, (conn.reading ? READ : 0) | (out > 0 ? WRITE : 0));
      } catch (e) {
        // EBADF or ENOENT: the fd is not what we registered any more (closed behind our back).
        publish({ type: 'error', source: 'engine', error: e, conn });
        return this.closeNow(conn, asError(e));
      }
      if (conn.drainOwed && out <= this.lowWaterMark && conn.state === ConnState.Open) {
        conn.drainOwed = false;
        this.#invoke(conn, 'onDrain'); // may queue more: settle again
        continue;
      }
      return;
    }
  }

  #setInterest(conn: Connection, want: number): void {
    const have = conn.interest;
    if (want === have || this.#closed) return;
    const pa = { fd: conn.fd };
    const et = this.options.edgeTriggered;
    const p = this.poller;
    if (want === 0) p.delete(conn.fd);
    else if (have === 0) {
      if (want === READ) p.addRead(pa, et);
      else if (want === WRITE) p.addWrite(pa, et);
      else p.addReadWrite(pa, et);
    } else if (want === READ) p.modRead(pa, et);
    else if (want === WRITE) p.modWrite(pa, et);
    else p.modReadWrite(pa, et);
    conn.interest = want;
  }

  /** Closes now: no more writing. onClose gets `err`. */
  closeNow(conn: Connection, err: Error | undefined): void {
    if (gone(conn)) return;
    conn.state = ConnState.Closed;
    if (conn.held) this.stats.pausedForBackpressure--;
    if (conn.paused) this.stats.paused--;
    this.#wheel.remove(conn);
    if (conn.interest !== 0 && !this.#closed) {
      try {
        this.poller.delete(conn.fd);
      } catch {
        // already gone from the poller: nothing to undo
      }
    }
    conn.interest = 0;
    if (!conn.fdLost) {
      this.host.releasing?.(conn.fd);
      try {
        socket.close(conn.fd);
      } catch {
        // EBADF: the handler closed our fd behind our back; the number is no longer ours either way
      }
    }
    if (this.#conns[conn.fd] === conn) this.#conns[conn.fd] = undefined;
    conn.outbound.clear();
    conn.inbound.clear();
    conn.curStart = conn.curEnd = 0;
    this.stats.connections--;
    if (serverChannel.hasSubscribers) publish({ type: 'close', conn, error: err });
    const method = this.handler.onClose;
    if (typeof method === 'function') {
      this.#depth++;
      let result: unknown;
      try {
        result = method(conn, err);
      } catch (e) {
        this.stats.handlerErrors++;
        publish({ type: 'error', source: 'onClose', error: e, conn });
      } finally {
        this.#depth--;
      }
      this.#act(conn, result, 'onClose');
    }
    this.host.connectionClosed();
    if (this.#depth === 0) this.#settleDirty();
  }

  // ---- handler calls ----

  #invoke(conn: Connection, name: 'onOpen' | 'onTraffic' | 'onDrain'): void {
    this.#call(conn, this.handler[name] as ((conn: Connection) => unknown) | undefined, name);
  }

  /** onTraffic: the per-event call, with the method read once. */
  #traffic(conn: Connection): void {
    this.#call(conn, this.#onTraffic, 'onTraffic');
  }

  #call(conn: Connection, method: ((conn: Connection) => unknown) | undefined, name: string): void {
    if (typeof method !== 'function') {
      if (this.#depth === 0) this.#settle(conn);
      return;
    }
    const outer = this.#depth === 0;
    if (outer) this.#current = conn;
    this.#depth++;
    let result: unknown;
    try {
      result = method(conn);
    } catch (e) {
      this.#depth--;
      if (outer) this.#current = undefined;
      this.#fail(conn, e, name);
      if (this.#depth === 0) this.#settleDirty();
      return;
    }
    this.#depth--;
    if (outer) this.#current = undefined;
    if (result !== undefined) this.#act(conn, result, name);
    if (this.#depth === 0) {
      this.#settle(conn);
      this.#settleDirty();
    } else if (!conn.dirty) {
      // A nested call (an onDrain from a write inside another handler call): the outermost
      // call settles its own connection only, so this one waits in the dirty list.
      conn.dirty = true;
      this.#dirty.push(conn);
    }
  }

  /**
   * Does what a handler method returned. Never throws: what a returned value's getters or
   * traps throw (`then`, a revoked Proxy) counts as the method's error.
   */
  #act(conn: Connection | undefined, result: unknown, name: string): void {
    if (result === Action.Close) {
      if (conn !== undefined) conn.close();
    } else if (result === Action.Shutdown) {
      this.host.requestShutdown();
    } else if (result !== null && (typeof result === 'object' || typeof result === 'function')) {
      let settled: Promise<unknown>;
      try {
        if (typeof (result as PromiseLike<unknown>).then !== 'function') return;
        settled = Promise.resolve(result as PromiseLike<unknown>);
      } catch (e) {
        if (conn !== undefined && conn.state !== ConnState.Closed) this.#fail(conn, e, name);
        else {
          this.stats.handlerErrors++;
          publish({ type: 'error', source: name, error: e, conn });
        }
        return;
      }
      // An async method: its rejection is this connection's error, not an unhandled rejection.
      settled.then(
        (value) => {
          if (value === Action.Close || value === Action.Shutdown) this.#act(conn, value, name);
        },
        (e: unknown) => {
          if (conn !== undefined) this.#fail(conn, e, name);
          else {
            this.stats.handlerErrors++;
            publish({ type: 'error', source: name, error: e, conn: undefined });
          }
        },
      );
    }
  }

  /** A handler method failed for `conn`: the error goes to the channel and onClose, the connection closes. */
  #fail(conn: Connection, e: unknown, source: string): void {
    this.stats.handlerErrors++;
    publish({ type: 'error', source, error: e, conn });
    this.closeNow(conn, asError(e));
  }

  // ---- ConnOwner ----

  readView(start: number, n: number): Buffer {
    // A view is an object of about 100 bytes; one per message was the loop's only garbage per
    // message, and at tens of thousands of messages a second that rate keeps V8's young
    // generation at its largest once a burst of connections has grown it (V8 shrinks it only
    // when allocation is slow). Requests of one size at one offset (each read's message
    // starts at 0) get the same view; it is valid only until the handler returns anyway.
    // The range is kept here, not read back from the view: a handler may shadow its `length`.
    if (this.#viewStart === start && this.#viewLength === n) return this.#view;
    this.#viewStart = start;
    this.#viewLength = n;
    return (this.#view = this.readBuffer.subarray(start, start + n));
  }

  touch(conn: Connection): void {
    if (this.#depth > 0) {
      // The connection of the outermost handler call is settled when that call returns.
      if (conn === this.#current && this.#depth === 1) return;
      if (!conn.dirty) {
        conn.dirty = true;
        this.#dirty.push(conn);
      }
      return;
    }
    this.#settle(conn);
  }

  #settleDirty(): void {
    // Settling may call handlers that dirty more connections: they join this list, and this
    // loop (not a nested one) reaches them.
    if (this.#settlingDirty) return;
    const list = this.#dirty;
    if (list.length === 0) return;
    this.#settlingDirty = true;
    let i = 0;
    try {
      for (; i < list.length; i++) {
        const c = list[i];
        c.dirty = false;
        this.#settle(c);
      }
    } finally {
      // Only a bug here ends the loop early: what is left may be dirtied (and listed) again.
      for (; i < list.length; i++) list[i].dirty = false;
      list.length = 0;
      this.#settlingDirty = false;
    }
  }

  flush(conn: Connection): void {
    if (conn.outbound.length === 0 || conn.waitingWritable) return;
    this.#write(conn);
    if (this.#depth === 0) this.#settle(conn);
    else this.touch(conn);
  }

  wake(conn: Connection): void {
    if (conn.wakeQueued || this.#closed) return;
    conn.wakeQueued = true;
    void this.poller.trigger(Priority.Low, () => {
      if (!conn.wakeQueued) return; // delivered already, ahead of a read (#processIO)
      conn.wakeQueued = false;
      if (conn.state === ConnState.Open && !conn.paused) this.#invoke(conn, 'onTraffic');
    });
  }

  asyncFlush(conn: Connection): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    return this.poller.trigger(Priority.High, () => {
      if (gone(conn)) return false;
      this.#settle(conn);
      return !gone(conn);
    }).catch(() => false);
  }

  retime(conn: Connection): void {
    this.#wheel.schedule(conn);
  }

  #expire(conn: Connection): void {
    if (gone(conn)) return;
    this.stats.timedOut++;
    const err = codedError(`connection idle for ${conn.timeout} ms`, 'ETIMEDOUT');
    this.closeNow(conn, err);
  }

  // ---- the rest of the handler ----

  startTicking(): void {
    if (typeof this.handler.onTick !== 'function') return;
    this.#tick();
  }

  #tick = (): void => {
    this.#tickTimer = undefined;
    if (this.#closed) return;
    let result: unknown;
    this.#depth++;
    try {
      result = this.handler.onTick!();
    } catch (e) {
      this.stats.handlerErrors++;
      publish({ type: 'error', source: 'onTick', error: e, conn: undefined });
      result = undefined;
    } finally {
      this.#depth--;
    }
    if (this.#depth === 0) this.#settleDirty();
    let delay: unknown = result;
    if (result !== null && typeof result === 'object') {
      // Its getters and traps may throw: that ends ticking, as a throwing onTick does.
      let action: unknown;
      try {
        const r = result as TickResult;
        delay = r.delay;
        action = r.action;
      } catch (e) {
        this.stats.handlerErrors++;
        publish({ type: 'error', source: 'onTick', error: e, conn: undefined });
        return;
      }
      this.#act(undefined, action, 'onTick');
    }
    if (typeof delay === 'number' && Number.isFinite(delay) && delay >= 0 && !this.#closed) {
      this.#tickTimer = setTimeout(this.#tick, Math.min(delay, 0x7fffffff));
      this.#tickTimer.unref();
    }
  };

  /** Every connection starts closing (stop): output is flushed, then each closes. */
  closeAll(): void {
    for (const c of this.#conns) {
      if (c === undefined || c.state !== ConnState.Open) continue;
      c.state = ConnState.Closing;
      this.#settle(c);
    }
  }

  /** Closes the connections still open with `err`. */
  abortAll(err: Error): void {
    for (const c of this.#conns) if (c !== undefined) this.closeNow(c, err);
  }

  /** Closes the poller and forgets the timers (after the connections are gone). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#tickTimer);
    this.#wheel.clear();
    for (const fd of [...this.#others.keys()]) this.unwatch(fd);
    this.poller.close();
  }

  connections(): ConnInfo[] {
    const out: ConnInfo[] = [];
    const offset = Date.now() - performance.now();
    for (const c of this.#conns) {
      if (c === undefined) continue;
      out.push({
        fd: c.fd,
        remoteAddress: c.remoteAddress,
        state: c.state === ConnState.Open ? 'open' : 'closing',
        inboundBuffered: c.inboundBuffered,
        outboundBuffered: c.outboundBuffered,
        paused: c.paused,
        pausedForBackpressure: c.held,
        lastActivity: Math.round(c.lastActivity + offset),
        openedAt: c.openedAt,
      });
    }
    return out;
  }

  /** The counters, with the poller's event count as of now. */
  snapshot(): LoopStats {
    if (!this.#closed) this.stats.events = this.poller.stats().events;
    return { ...this.stats };
  }

  countPause(delta: number): void {
    this.stats.paused += delta;
  }
}
