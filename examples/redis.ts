// A Redis-protocol server on netpoll/server: PING, ECHO, SET, GET, DEL, INCR, EXISTS, DBSIZE,
// FLUSHALL, QUIT and CONFIG (enough for redis-cli and redis-benchmark), pipelining included.
// Every command's reply goes into the connection's outbound buffer; the engine writes them
// all with one writev when onTraffic returns.
//
//   npm run example:redis           # port 6380 (or $PORT, or the first argument)
//   redis-cli -p 6380 set greeting hello
//   redis-benchmark -p 6380 -q -P 16 -t ping,set,get,incr
import { serve, Action, type Conn, type Engine } from 'netpoll/server';

const CRLF = 0x0d;

/** One request from the connection's input: its arguments, or null until all of it arrived. */
function parse(conn: Conn): Buffer[] | null {
  const buf = conn.peek();
  let pos = 0;
  const line = (): number => {
    const end = buf.indexOf(CRLF, pos);
    return end < 0 || end + 1 >= buf.length ? -1 : end;
  };
  let end = line();
  if (end < 0) return null;
  if (buf[0] !== 0x2a /* '*' */) {
    // An inline command (what `nc` sends): words on one line.
    conn.discard(end + 2);
    return buf.toString('latin1', 0, end).trim().split(/\s+/).filter(Boolean).map((w) => Buffer.from(w, 'latin1'));
  }
  const count = Number(buf.toString('latin1', 1, end));
  const args: Buffer[] = [];
  pos = end + 2;
  for (let i = 0; i < count; i++) {
    if ((end = line()) < 0) return null;
    const len = Number(buf.toString('latin1', pos + 1, end));
    if (buf.length < end + 2 + len + 2) return null;
    args.push(Buffer.from(buf.subarray(end + 2, end + 2 + len))); // a copy: the input buffer is reused
    pos = end + 2 + len + 2;
  }
  conn.discard(pos);
  return args;
}

const bulk = (v: Buffer | undefined): (Buffer | string)[] => (v === undefined ? ['$-1\r\n'] : [`$${v.length}\r\n`, v, '\r\n']);

/** Serves the Redis protocol on `addr` from one in-memory map; resolves once listening. */
export function startRedisServer(addr: string): Promise<Engine> {
  const db = new Map<string, Buffer>();
  return serve({
    onTraffic(conn) {
      for (let args = parse(conn); args !== null; args = parse(conn)) {
        if (args.length === 0) continue;
        const cmd = args[0].toString('latin1').toUpperCase();
        const key = args[1]?.toString('latin1') ?? '';
        if (cmd === 'PING') conn.writev(args.length > 1 ? bulk(args[1]) : ['+PONG\r\n']);
        else if (cmd === 'ECHO' && args.length === 2) conn.writev(bulk(args[1]));
        else if (cmd === 'SET' && args.length >= 3) (db.set(key, args[2]), conn.write('+OK\r\n'));
        else if (cmd === 'GET' && args.length === 2) conn.writev(bulk(db.get(key)));
        else if (cmd === 'DEL' || cmd === 'EXISTS') {
          const n = args.slice(1).filter((k) => (cmd === 'DEL' ? db.delete(k.toString('latin1')) : db.has(k.toString('latin1')))).length;
          conn.write(`:${n}\r\n`);
        } else if (cmd === 'INCR' && args.length === 2) {
          const n = Number(db.get(key)?.toString() ?? '0');
          if (!Number.isSafeInteger(n + 1)) conn.write('-ERR value is not an integer or out of range\r\n');
          else (db.set(key, Buffer.from(String(n + 1))), conn.write(`:${n + 1}\r\n`));
        } else if (cmd === 'DBSIZE') conn.write(`:${db.size}\r\n`);
        else if (cmd === 'FLUSHALL') (db.clear(), conn.write('+OK\r\n'));
        else if (cmd === 'CONFIG') conn.write('*4\r\n$4\r\nsave\r\n$0\r\n\r\n$10\r\nappendonly\r\n$2\r\nno\r\n'); // redis-benchmark asks
        else if (cmd === 'QUIT') return (conn.write('+OK\r\n'), Action.Close);
        else conn.write(`-ERR unknown command '${cmd}' or wrong number of arguments\r\n`);
      }
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
