// The node:net baseline of the Redis benchmark: examples/redis.ts's handler (the same parser,
// commands and replies) as a node:net program would write it: a 'data' listener appending to
// an input buffer, the replies of one chunk gathered and written with one socket.write().
//
//   node dist/bench/net_redis.js <max_seconds>
// listens on 127.0.0.1 (any port), prints "PORT <n>", exits on SIGTERM or after max_seconds.
import * as net from 'node:net';
import { intArg } from './util.js';

const maxSeconds = intArg(2, 60);
const CRLF = 0x0d;

/** One request from `buf` at `from`: its arguments and where the next begins, or null until all of it arrived. */
function parse(buf: Buffer, from: number): { args: Buffer[]; next: number } | null {
  let pos = from;
  const line = (): number => {
    const end = buf.indexOf(CRLF, pos);
    return end < 0 || end + 1 >= buf.length ? -1 : end;
  };
  let end = line();
  if (end < 0) return null;
  if (buf[from] !== 0x2a /* '*' */) {
    const words = buf.toString('latin1', from, end).trim().split(/\s+/).filter(Boolean);
    return { args: words.map((w) => Buffer.from(w, 'latin1')), next: end + 2 };
  }
  const count = Number(buf.toString('latin1', from + 1, end));
  const args: Buffer[] = [];
  pos = end + 2;
  for (let i = 0; i < count; i++) {
    if ((end = line()) < 0) return null;
    const len = Number(buf.toString('latin1', pos + 1, end));
    if (buf.length < end + 2 + len + 2) return null;
    args.push(Buffer.from(buf.subarray(end + 2, end + 2 + len)));
    pos = end + 2 + len + 2;
  }
  return { args, next: pos };
}

const bulk = (v: Buffer | undefined): (Buffer | string)[] => (v === undefined ? ['$-1\r\n'] : [`$${v.length}\r\n`, v, '\r\n']);
const db = new Map<string, Buffer>();

const server = net.createServer({ noDelay: true }, (socket) => {
  let input: Buffer = Buffer.alloc(0);
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: Buffer) => {
    input = input.length === 0 ? chunk : Buffer.concat([input, chunk]);
    const out: (Buffer | string)[] = [];
    let from = 0;
    let quit = false;
    for (let r = parse(input, from); r !== null && !quit; r = parse(input, from)) {
      from = r.next;
      const args = r.args;
      if (args.length === 0) continue;
      const cmd = args[0].toString('latin1').toUpperCase();
      const key = args[1]?.toString('latin1') ?? '';
      if (cmd === 'PING') out.push(...(args.length > 1 ? bulk(args[1]) : ['+PONG\r\n']));
      else if (cmd === 'ECHO' && args.length === 2) out.push(...bulk(args[1]));
      else if (cmd === 'SET' && args.length >= 3) (db.set(key, args[2]), out.push('+OK\r\n'));
      else if (cmd === 'GET' && args.length === 2) out.push(...bulk(db.get(key)));
      else if (cmd === 'DEL' || cmd === 'EXISTS') {
        const n = args.slice(1).filter((k) => (cmd === 'DEL' ? db.delete(k.toString('latin1')) : db.has(k.toString('latin1')))).length;
        out.push(`:${n}\r\n`);
      } else if (cmd === 'INCR' && args.length === 2) {
        const n = Number(db.get(key)?.toString() ?? '0');
        if (!Number.isSafeInteger(n + 1)) out.push('-ERR value is not an integer or out of range\r\n');
        else (db.set(key, Buffer.from(String(n + 1))), out.push(`:${n + 1}\r\n`));
      } else if (cmd === 'DBSIZE') out.push(`:${db.size}\r\n`);
      else if (cmd === 'FLUSHALL') (db.clear(), out.push('+OK\r\n'));
      else if (cmd === 'CONFIG') out.push('*4\r\n$4\r\nsave\r\n$0\r\n\r\n$10\r\nappendonly\r\n$2\r\nno\r\n');
      else if (cmd === 'QUIT') (out.push('+OK\r\n'), (quit = true));
      else out.push(`-ERR unknown command '${cmd}' or wrong number of arguments\r\n`);
    }
    input = input.subarray(from);
    if (out.length) socket.write(Buffer.concat(out.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p))));
    if (quit) socket.end();
  });
});
server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
  process.stdout.write(`PORT ${(server.address() as net.AddressInfo).port}\n`);
});
setTimeout(() => process.exit(0), maxSeconds * 1000).unref();
