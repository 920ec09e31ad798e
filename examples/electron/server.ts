// The Electron example's netpoll part, kept free of Electron so that plain Node can
// run it (the test suite does): an echo server on one poller in the main process,
// counting connections and bytes for the window to show.
//
// In the app, `netpoll` is this repository installed as a dependency; when the
// repository's own build compiles this file, the package refers to itself.
import { ErrEngineShutdown, isErrorOnlyEvent, isReadEvent, isWriteEvent, openPoller, socket, type IOEvent, type IOFlags, type PollAttachment } from 'netpoll';

const { accept, close, listenTCP, localAddress, read, write } = socket;

/** What the window shows. */
export interface Counts {
  /** Where the server listens, as host:port. */
  address: string;
  /** Connections open now. */
  open: number;
  /** Connections accepted since start. */
  total: number;
  /** Bytes echoed since start. */
  bytes: number;
}

export interface CounterServer {
  readonly port: number;
  counts(): Counts;
  /** Closes every connection, the listener and the poller. */
  close(): void;
  /** Resolves (with ErrEngineShutdown) once closed; rejects if a callback failed. */
  readonly done: Promise<Error>;
}

export interface CounterServerOptions {
  /** A numeric address; default 127.0.0.1. */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  /** Called after counts change, at most every `intervalMs` (default 100). */
  onCounts?: (counts: Counts) => void;
  intervalMs?: number;
}

interface Conn extends PollAttachment {
  /** Bytes a short write left; while set, the fd waits for write events only. */
  pending: Buffer | null;
}

export function startCounterServer(options: CounterServerOptions = {}): CounterServer {
  const host = options.host ?? '127.0.0.1';
  const listenFd = listenTCP(host, options.port ?? 0);
  const { port } = localAddress(listenFd);
  const poller = openPoller();
  const conns = new Map<number, Conn>();
  const buf = Buffer.allocUnsafe(64 * 1024);
  let total = 0;
  let bytes = 0;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;

  const counts = (): Counts => ({ address: `${host}:${port}`, open: conns.size, total, bytes });
  // Coalesce updates: a burst of connections becomes one message to the window.
  const changed = (): void => {
    if (options.onCounts === undefined || timer !== undefined || closed) return;
    timer = setTimeout(() => {
      timer = undefined;
      options.onCounts?.(counts());
    }, options.intervalMs ?? 100);
  };

  const drop = (conn: Conn): void => {
    conns.delete(conn.fd);
    poller.delete(conn.fd);
    close(conn.fd);
    changed();
  };

  const onConn = (fd: number, event: IOEvent, flags: IOFlags): void => {
    const conn = conns.get(fd);
    if (conn === undefined) return;
    try {
      if (isErrorOnlyEvent(event, flags)) return drop(conn); // failed or hung up, nothing to read
      if (conn.pending !== null) {
        if (!isWriteEvent(event)) return;
        const n = write(fd, conn.pending);
        if (n > 0) conn.pending = n === conn.pending.length ? null : conn.pending.subarray(n);
        if (conn.pending === null) poller.modRead(conn); // drained: read from the peer again
        return;
      }
      if (!isReadEvent(event)) return;
      const n = read(fd, buf); // bytes, 0 at the end (after every byte sent before it), -1 nothing yet
      if (n < 0) return;
      if (n === 0) return drop(conn);
      bytes += n;
      const w = write(fd, buf.subarray(0, n));
      if (w < n) {
        // The peer reads slower than it sends: keep the rest and stop reading from it.
        conn.pending = Buffer.from(buf.subarray(w < 0 ? 0 : w, n));
        poller.modWrite(conn);
      }
      changed();
    } catch {
      drop(conn); // ECONNRESET, EPIPE: the peer is gone
    }
  };

  poller.addRead({
    fd: listenFd,
    callback: () => {
      for (let c = accept(listenFd); c !== null; c = accept(listenFd)) {
        const conn: Conn = { fd: c.fd, callback: onConn, pending: null };
        conns.set(c.fd, conn);
        poller.addRead(conn);
        total++;
      }
      changed();
    },
  });

  // Events arrive on the main process's own event loop: the window stays responsive.
  const done = poller.polling();

  return {
    port,
    counts,
    close(): void {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      for (const conn of conns.values()) close(conn.fd);
      conns.clear();
      poller.close();
      close(listenFd);
    },
    done: done.then((err) => (err === ErrEngineShutdown ? err : Promise.reject(err))),
  };
}
