// The part of the echo and HTTP examples that is about netpoll rather than about a
// protocol: one poller, one listening socket, many connections, and write
// backpressure. A protocol subclasses TcpServer and implements onData().
//
// How one connection moves:
//   reading   registered for read events; each event reads until the socket is
//             drained (or 1 MiB, for fairness) and hands every chunk to onData().
//   blocked   a write came back short: the rest waits in `pending`, the fd is
//             registered for write events only (so unread input stays in the
//             kernel and the peer is slowed down), and nothing is read.
//   lingering the protocol ended the connection: our side is shut down for
//             writing and input is discarded until the peer closes, so that a
//             close with unread input does not reset the connection and destroy
//             replies still in flight.
import {
  ErrEngineShutdown,
  errorIs,
  isErrorOnlyEvent,
  isSystemError,
  isWriteEvent,
  openPoller,
  socket,
  type IOEvent,
  type IOFlags,
  type PollAttachment,
  type Poller,
  type StopError,
} from '../src/index.js';

const { accept, close, listenTCP, localAddress, read, setNoDelay, shutdown, write } = socket;

/** Where and how a server listens. */
export interface ServerOptions {
  /** A numeric address; default 127.0.0.1 (loopback only). */
  host?: string | undefined;
  /** Default 0: the kernel picks a free port (see `server.port`). */
  port?: number | undefined;
  /** SO_REUSEPORT, for one server per worker thread on one port. */
  reusePort?: boolean | undefined;
  backlog?: number | undefined;
  /**
   * Default true. False: no listening socket of its own; connections come through
   * {@link TcpServer.adopt} (examples/reactor.ts hands them over from an acceptor thread).
   */
  listen?: boolean | undefined;
}

/** A connection as a poller attachment, with what the server keeps for it. */
export class Connection implements PollAttachment {
  /** Bytes a short write left behind, and how many of them went out since. */
  pending: Buffer | null = null;
  pendingOffset = 0;
  /** Unparsed input a protocol keeps between reads (a request split across packets). */
  leftover: Buffer | null = null;
  closeAfterFlush = false;
  lingering = false;
  closed = false;

  constructor(
    readonly fd: number,
    readonly callback: (fd: number, event: IOEvent, flags: IOFlags) => StopError | void,
  ) {}
}

const READ_BUFFER_SIZE = 64 * 1024;
const MAX_READS_PER_EVENT = 16;
const MAX_ACCEPTS_PER_EVENT = 64;

export abstract class TcpServer {
  readonly poller: Poller;
  readonly listenFd: number;
  readonly host: string;
  readonly port: number;
  /** Open connections. */
  connections = 0;
  /** Connections accepted (or adopted) since start. */
  accepted = 0;
  /** Settles when the server stops: resolves on close(), rejects on a bug in a callback. */
  readonly done: Promise<Error>;
  /** Called whenever `connections` changes (the Electron example's window listens). */
  onConnectionsChange: ((server: TcpServer) => void) | undefined;

  readonly #conns: (Connection | undefined)[] = [];
  readonly #readBuffer = Buffer.allocUnsafe(READ_BUFFER_SIZE);
  readonly #onConnEvent = (fd: number, event: IOEvent, flags: IOFlags): void => this.#connEvent(fd, event, flags);
  #acceptTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: ServerOptions = {}) {
    this.host = options.host ?? '127.0.0.1';
    if (options.listen === false) {
      this.listenFd = -1;
      this.port = options.port ?? 0;
      this.poller = openPoller();
    } else {
      this.listenFd = listenTCP(this.host, options.port ?? 0, { reusePort: options.reusePort, backlog: options.backlog });
      this.port = localAddress(this.listenFd).port;
      this.poller = openPoller();
      this.poller.addRead({ fd: this.listenFd, callback: () => this.#acceptAll() });
    }
    // Without a callback, polling() hands each event to its fd's attachment.
    this.done = this.poller.polling();
  }

  /** `host:port`, with brackets around an IPv6 host. */
  get address(): string {
    return this.host.includes(':') ? `[${this.host}]:${this.port}` : `${this.host}:${this.port}`;
  }

  /**
   * Handles a chunk of input: bytes [0, length) of `buf`. The buffer is the server's one
   * read buffer, reused for every read (no allocation per read): it is only valid during
   * the call, so copy what must outlive it.
   */
  protected abstract onData(conn: Connection, buf: Buffer, length: number): void;

  /** Called when a blocked connection has written everything and reads again. */
  protected onDrained(_conn: Connection): void {}

  /**
   * Called when the peer has sent all it will (read() returned 0): closes the connection.
   * A protocol whose replies can still be on their way (examples/sharded-counter.ts)
   * answers them first.
   */
  protected onEnd(conn: Connection): void {
    this.closeConnection(conn);
  }

  /**
   * Writes `len` bytes of `buf`: true when all went out, false when the rest was queued
   * (the connection is then blocked until the peer reads; the bytes were copied).
   */
  protected send(conn: Connection, buf: Buffer, len = buf.length): boolean {
    if (conn.closed) return false;
    if (conn.pending !== null) {
      conn.pending = Buffer.concat([conn.pending.subarray(conn.pendingOffset), buf.subarray(0, len)]);
      conn.pendingOffset = 0;
      return false;
    }
    // offset and length instead of a subarray: nothing is allocated when all goes out.
    const n = write(conn.fd, buf, 0, len);
    if (n === len) return true;
    conn.pending = Buffer.from(buf.subarray(n < 0 ? 0 : n, len));
    conn.pendingOffset = 0;
    this.#reregister(conn, 'write');
    return false;
  }

  /** Ends the connection once everything queued is written. */
  protected end(conn: Connection): void {
    if (conn.closed || conn.lingering) return;
    if (conn.pending !== null) {
      conn.closeAfterFlush = true;
      return;
    }
    conn.lingering = true;
    conn.leftover = null;
    try {
      shutdown(conn.fd, 'write');
    } catch {
      this.closeConnection(conn);
    }
  }

  /** Closes one connection now. */
  closeConnection(conn: Connection): void {
    if (conn.closed) return;
    conn.closed = true;
    conn.pending = null;
    conn.leftover = null;
    if (!this.poller.closed) {
      try {
        this.poller.delete(conn.fd);
      } catch {
        // the poller no longer has it: nothing to undo
      }
    }
    close(conn.fd);
    this.#conns[conn.fd] = undefined;
    this.connections--;
    this.onConnectionsChange?.(this);
  }

  /** Stops the server: closes every connection, the listener and the poller. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#acceptTimer);
    for (const conn of this.#conns) if (conn !== undefined) this.closeConnection(conn);
    this.poller.close(); // a running polling() resolves with ErrEngineShutdown
    if (this.listenFd >= 0) close(this.listenFd);
  }

  /** Serves a connected socket accepted elsewhere: the server owns (and closes) it from now on. */
  adopt(fd: number): Connection {
    const conn = new Connection(fd, this.#onConnEvent);
    this.#conns[fd] = conn;
    this.connections++;
    this.accepted++;
    try {
      setNoDelay(fd); // replies leave at once, as gnet's connections do by default
      this.poller.addRead(conn);
    } catch (e) {
      this.closeConnection(conn);
      throw e;
    }
    this.onConnectionsChange?.(this);
    return conn;
  }

  #acceptAll(): void {
    for (let i = 0; i < MAX_ACCEPTS_PER_EVENT; i++) {
      let c: socket.Accepted | null;
      try {
        c = accept(this.listenFd);
      } catch (e) {
        if (isSystemError(e) && (e.code === 'EMFILE' || e.code === 'ENFILE')) return this.#pauseAccepting();
        throw e;
      }
      if (c === null) return;
      this.adopt(c.fd);
    }
  }

  /**
   * Out of descriptors: the listener stays readable, and a level-triggered poller would
   * report it again at once, forever. Stop watching it for a while instead.
   */
  #pauseAccepting(): void {
    this.poller.delete(this.listenFd);
    this.#acceptTimer = setTimeout(() => {
      if (!this.#closed) this.poller.addRead({ fd: this.listenFd, callback: () => this.#acceptAll() });
    }, 100);
    this.#acceptTimer.unref();
  }

  #connEvent(fd: number, event: IOEvent, flags: IOFlags): void {
    const conn = this.#conns[fd];
    if (conn === undefined) return;
    try {
      // Failed or hung up with nothing to read: close. Any other event is read (or
      // flushed) first: an end of stream reported with data (kqueue's EV_EOF, a pipe's
      // EPOLLHUP) shows as read() returning 0 once that data is taken.
      if (isErrorOnlyEvent(event, flags)) return this.closeConnection(conn);
      if (conn.pending !== null) {
        if (isWriteEvent(event)) this.#flush(conn);
        return;
      }
      const buf = this.#readBuffer;
      for (let i = 0; i < MAX_READS_PER_EVENT; i++) {
        const n = read(fd, buf);
        if (n < 0) return; // drained; the next event brings more
        if (n === 0) return this.onEnd(conn);
        if (!conn.lingering) this.onData(conn, buf, n);
        if (conn.closed || conn.pending !== null) return;
        if (n < buf.length) return;
      }
    } catch (e) {
      // A peer that reset the connection, or a write to one that left: drop it. A bug
      // (anything else) propagates and stops polling, so that it is seen.
      if (!isSystemError(e)) throw e;
      this.closeConnection(conn);
    }
  }

  #flush(conn: Connection): void {
    const pending = conn.pending!;
    while (conn.pendingOffset < pending.length) {
      const n = write(conn.fd, pending.subarray(conn.pendingOffset));
      if (n < 0) return; // still no room: wait for the next write event
      conn.pendingOffset += n;
    }
    conn.pending = null;
    conn.pendingOffset = 0;
    this.#reregister(conn, 'read');
    if (conn.closeAfterFlush) return this.end(conn);
    this.onDrained(conn);
  }

  /** Switches a connection between read-only and write-only interest. */
  #reregister(conn: Connection, interest: 'read' | 'write'): void {
    if (interest === 'write') this.poller.modWrite(conn);
    else this.poller.modRead(conn);
  }
}

/** Port and host from argv[2] / $PORT and $HOST: the examples' command lines. */
export function serverOptionsFromCli(defaultPort: number): ServerOptions {
  const portText = process.argv[2] ?? process.env.PORT;
  const port = portText === undefined || portText === '' ? defaultPort : Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`bad port ${JSON.stringify(portText)}: give an integer in 0..65535 (0 picks a free one)`);
    process.exit(2);
  }
  return { host: process.env.HOST || '127.0.0.1', port };
}

/**
 * Runs a server as a program: prints the line the tests wait for, stops cleanly on
 * SIGINT/SIGTERM, and exits 1 if the loop fails.
 */
export function runUntilSignalled(server: TcpServer, name: string): void {
  console.log(`${name} listening on ${server.address}`);
  const stop = (): void => server.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  server.done.then(
    (err) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      if (!errorIs(err, ErrEngineShutdown)) console.error(`${name} stopped: ${err.message}`);
      console.log(`${name} stopped after ${server.accepted} connections`);
    },
    (err: unknown) => {
      console.error(`${name} failed:`, err);
      server.close();
      process.exitCode = 1;
    },
  );
}
