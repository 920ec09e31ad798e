// A Redis-protocol server on netpoll/server: PING, ECHO, SET, GET, DEL, INCR, EXISTS, DBSIZE,
// FLUSHALL, QUIT and CONFIG (enough for redis-cli and redis-benchmark), pipelining included.
// The protocol itself (requests, commands, replies) is examples/redis-commands.ts, which the
// node:net version of the benchmark (bench/net_redis.ts) shares: this file is the transport.
// Every command's reply goes into the connection's outbound buffer; the engine writes them
// all with one writev when onTraffic returns.
//
//   npm run example:redis           # port 6380 (or $PORT, or the first argument)
//   redis-cli -p 6380 set greeting hello
//   redis-benchmark -p 6380 -q -P 16 -t ping,set,get,incr
import { serve, Action, type Engine } from 'netpoll/server';
import { RedisSession, CLOSE, type RedisDb } from './redis-commands.js';

/** Serves the Redis protocol on `addr` from one in-memory map; resolves once listening. */
export function startRedisServer(addr: string): Promise<Engine> {
  const db: RedisDb = new Map();
  return serve({
    onOpen(conn) {
      conn.context = new RedisSession(db, conn); // its replies are written to the connection
    },
    onTraffic(conn) {
      const used = (conn.context as RedisSession).serve(conn.peek());
      if (used === CLOSE) return Action.Close; // QUIT or a protocol error: the rest goes with the connection
      conn.discard(used); // a request not all there yet stays in front, for the session to go on with
      return Action.None;
    },
  }, addr);
}

if (require.main === module) {
  const port = process.argv[2] ?? process.env.PORT ?? '6380';
  const where = port.includes('://') ? port : `tcp://${process.env.HOST || '127.0.0.1'}:${port}`;
  void startRedisServer(where).then((engine) => {
    const a = engine.address();
    console.log(`redis server listening on ${typeof a === 'string' ? a : `${a.address}:${a.port}`}`);
    const stop = (): void => void engine.stop().then(() => console.log('redis server stopped'));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
