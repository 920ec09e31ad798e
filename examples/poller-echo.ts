// An echo server on netpoll's raw API, without netpoll/server: one poller on this thread,
// the socket toolkit (listenTCP, accept, read, write, close), and what netpoll/server does
// for you done by hand: write backpressure (a short write keeps the rest and switches the
// fd to write interest with modWrite, so nothing more is read from that peer until it is
// written; modRead then reads again) and delete-then-close. It is the benchmarks' baseline
// for netpoll/server's echo (bench/netpoll_echo.ts), and the place to start for a protocol
// that needs the poller itself.
//
//   node dist/examples/poller-echo.js            # port 7000 (or $PORT, or the first argument)
//   nc 127.0.0.1 7000
import { ErrEngineShutdown, isErrorOnlyEvent, isReadEvent, isWriteEvent, openPoller, socket, type IOEvent, type IOFlags, type PollAttachment } from 'netpoll';

interface Peer extends PollAttachment {
  /** Bytes a short write left; while set, the fd waits for write events only. */
  pending: Buffer | null;
}

export interface PollerEcho {
  readonly port: number;
  /** Connections accepted since start. */
  readonly accepted: number;
  /** Closes every connection, the listener and the poller. */
  close(): void;
  /** Resolves once closed; rejects with what stopped the poller otherwise. */
  readonly done: Promise<void>;
}

/** Serves echo on host:port (port 0: any) with one poller on this thread. */
export function startPollerEcho(host = '127.0.0.1', port = 0, backlog = 1024): PollerEcho {
  const listenFd = socket.listenTCP(host, port, { backlog });
  const poller = openPoller();
  const peers = new Map<number, Peer>();
  const buf = Buffer.allocUnsafe(64 * 1024);
  let accepted = 0;

  const drop = (peer: Peer): void => {
    peers.delete(peer.fd);
    poller.delete(peer.fd); // first: the number is free again once closed
    socket.close(peer.fd);
  };

  const onPeer = (fd: number, event: IOEvent, flags: IOFlags): void => {
    const peer = peers.get(fd);
    if (peer === undefined) return;
    try {
      if (isErrorOnlyEvent(event, flags)) return drop(peer); // failed or hung up, nothing to read
      if (peer.pending !== null) {
        if (!isWriteEvent(event)) return;
        const n = socket.write(fd, peer.pending);
        if (n > 0) peer.pending = n === peer.pending.length ? null : peer.pending.subarray(n);
        if (peer.pending === null) poller.modRead(peer); // written: read from the peer again
        return;
      }
      if (!isReadEvent(event)) return;
      const n = socket.read(fd, buf); // bytes, 0 at the end of stream, -1 for nothing yet
      if (n < 0) return;
      if (n === 0) return drop(peer);
      const w = socket.write(fd, buf.subarray(0, n));
      if (w < n) {
        // The peer reads slower than it sends: keep the rest, stop reading until it is written.
        peer.pending = Buffer.from(buf.subarray(Math.max(w, 0), n));
        poller.modWrite(peer);
      }
    } catch {
      drop(peer); // ECONNRESET, EPIPE: the peer is gone
    }
  };

  poller.addRead({
    fd: listenFd,
    callback: () => {
      for (;;) {
        let c: socket.Accepted | null;
        try {
          c = socket.accept(listenFd);
        } catch {
          return; // ECONNABORTED, EMFILE: the listener stays readable, the next event tries again
        }
        if (c === null) return;
        const peer: Peer = { fd: c.fd, callback: onPeer, pending: null };
        socket.setNoDelay(c.fd, true);
        peers.set(c.fd, peer);
        poller.addRead(peer);
        accepted++;
      }
    },
  });

  const done = poller.polling().then((err) => {
    if (err !== ErrEngineShutdown) throw err;
  });
  let closed = false;
  return {
    port: socket.localAddress(listenFd).port,
    get accepted() {
      return accepted;
    },
    close() {
      if (closed) return;
      closed = true;
      for (const peer of [...peers.values()]) drop(peer);
      poller.delete(listenFd);
      socket.close(listenFd);
      poller.close();
    },
    done,
  };
}

if (require.main === module) {
  const host = process.env.HOST || '127.0.0.1';
  const server = startPollerEcho(host, Number(process.argv[2] ?? process.env.PORT ?? 7000));
  console.log(`poller echo server listening on ${host}:${server.port}`);
  process.once('SIGINT', server.close);
  process.once('SIGTERM', server.close);
  void server.done.then(() => console.log(`poller echo server stopped after ${server.accepted} connections`));
}
