// An echo server: every byte a client sends comes back, for any number of
// connections, all served by one poller on this thread. Node's own event loop
// carries the poller; no net.Server is involved.
//
//   npm run example:echo            # port 7000 (or $PORT, or the first argument)
//   PORT=0 npm run example:echo     # any free port; the first line tells which
//   nc 127.0.0.1 7000
import { TcpServer, runUntilSignalled, serverOptionsFromCli, type Connection, type ServerOptions } from './tcp-server.js';

export class EchoServer extends TcpServer {
  protected onData(conn: Connection, buf: Buffer, length: number): void {
    // When the peer reads slower than it writes, send() queues the rest and the
    // server stops reading from it until it has caught up.
    this.send(conn, buf, length);
  }
}

/** Starts an echo server on this thread; `server.port` tells where. */
export function startEchoServer(options: ServerOptions = {}): EchoServer {
  return new EchoServer(options);
}

if (require.main === module) {
  runUntilSignalled(startEchoServer(serverOptionsFromCli(7000)), 'echo server');
}
