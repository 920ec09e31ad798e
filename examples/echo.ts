// An echo server on netpoll/server: every byte a client sends comes back. The engine does
// the rest: accepting, buffering, writing with backpressure (a client that does not read is
// not read from either, until it catches up), and closing.
//
//   npm run example:echo               # port 7000 (or $PORT, or the first argument)
//   PORT=0 npm run example:echo        # any free port; the first line tells which
//   node dist/examples/echo.js unix:///tmp/echo.sock
//   nc 127.0.0.1 7000
//
// Its default export is the handler, so that examples/reactor.ts and examples/multicore.ts
// can serve it on several loop threads.
import { serve, type Engine, type EventHandler, type ServerOptions } from 'netpoll/server';
import { addressFromCli, reportLoop, runUntilSignalled } from './cli.js';

const echo: EventHandler = {
  onTraffic: (conn) => void conn.write(conn.next()),
  onShutdown: (engine) => reportLoop(engine),
};
export default echo;

/** Serves echo on `addr` ('tcp://127.0.0.1:0', 'unix:///tmp/echo.sock', …). */
export function startEcho(addr: string, options?: ServerOptions): Promise<Engine> {
  return serve(echo, addr, options);
}

if (require.main === module) {
  runUntilSignalled(startEcho(addressFromCli(7000, process.argv[2]), { idleTimeout: 60_000 }), 'echo server', '', (e) => ` after ${e.stats().opened} connections`);
}
