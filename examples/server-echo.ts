// An echo server on netpoll/server: every byte a client sends comes back. The engine does
// the rest: accepting, buffering, writing with backpressure (a client that does not read is
// not read from either, until it catches up), and closing.
//
//   npm run example:server-echo        # port 7000 (or $PORT, or the first argument)
//   nc 127.0.0.1 7000
import { serve, type Engine, type ServerOptions } from 'netpoll/server';

/** Serves echo on `addr` ('tcp://127.0.0.1:0', 'unix:///tmp/echo.sock', …). */
export function startEcho(addr: string, options?: ServerOptions): Promise<Engine> {
  return serve({ onTraffic: (conn) => void conn.write(conn.next()) }, addr, options);
}

if (require.main === module) {
  const arg = process.argv[2] ?? process.env.PORT ?? '7000';
  const where = arg.includes('://') ? arg : `tcp://${process.env.HOST || '127.0.0.1'}:${arg}`;
  void startEcho(where, { idleTimeout: 60_000 }).then((engine) => {
    const a = engine.address();
    console.log(`echo server listening on ${typeof a === 'string' ? a : `${a.address}:${a.port}`}`);
    const stop = (): void =>
      void engine.stop().then(() => console.log(`echo server stopped after ${engine.stats().opened} connections`));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
