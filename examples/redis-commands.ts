// The Redis protocol's requests and commands, apart from any transport: examples/redis.ts
// serves them on netpoll/server, bench/net_redis.ts on node:net (so the benchmark compares
// transports and nothing else). PING, ECHO, SET, GET, DEL, INCR, EXISTS, DBSIZE, FLUSHALL,
// QUIT and CONFIG: enough for redis-cli and redis-benchmark.

const CR = 0x0d;

/** One request in `buf` from `from`: its arguments (copies) and where the next begins, or null until all of it arrived. */
export function parseRequest(buf: Buffer, from: number): { args: Buffer[]; next: number } | null {
  let pos = from;
  const line = (): number => {
    const end = buf.indexOf(CR, pos);
    return end < 0 || end + 1 >= buf.length ? -1 : end;
  };
  let end = line();
  if (end < 0) return null;
  if (buf[from] !== 0x2a /* '*' */) {
    // An inline command (what `nc` sends): words on one line.
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
    args.push(Buffer.from(buf.subarray(end + 2, end + 2 + len))); // a copy: the input buffer is reused
    pos = end + 2 + len + 2;
  }
  return { args, next: pos };
}

/** Where replies go: a netpoll/server Conn is one. */
export interface ReplySink {
  write(data: Uint8Array | string): unknown;
  writev(list: readonly (Uint8Array | string)[]): unknown;
}

const bulk = (v: Buffer | undefined): (Buffer | string)[] => (v === undefined ? ['$-1\r\n'] : [`$${v.length}\r\n`, v, '\r\n']);

/** Runs one command on `db`, its reply written to `out`; false for QUIT (close after the reply). */
export function runCommand(db: Map<string, Buffer>, args: Buffer[], out: ReplySink): boolean {
  if (args.length === 0) return true;
  const cmd = args[0].toString('latin1').toUpperCase();
  const key = args[1]?.toString('latin1') ?? '';
  if (cmd === 'PING') out.writev(args.length > 1 ? bulk(args[1]) : ['+PONG\r\n']);
  else if (cmd === 'ECHO' && args.length === 2) out.writev(bulk(args[1]));
  else if (cmd === 'SET' && args.length >= 3) (db.set(key, args[2]), out.write('+OK\r\n'));
  else if (cmd === 'GET' && args.length === 2) out.writev(bulk(db.get(key)));
  else if (cmd === 'DEL' || cmd === 'EXISTS') {
    const n = args.slice(1).filter((k) => (cmd === 'DEL' ? db.delete(k.toString('latin1')) : db.has(k.toString('latin1')))).length;
    out.write(`:${n}\r\n`);
  } else if (cmd === 'INCR' && args.length === 2) {
    const n = Number(db.get(key)?.toString() ?? '0');
    if (!Number.isSafeInteger(n + 1)) out.write('-ERR value is not an integer or out of range\r\n');
    else (db.set(key, Buffer.from(String(n + 1))), out.write(`:${n + 1}\r\n`));
  } else if (cmd === 'DBSIZE') out.write(`:${db.size}\r\n`);
  else if (cmd === 'FLUSHALL') (db.clear(), out.write('+OK\r\n'));
  else if (cmd === 'CONFIG') out.write('*4\r\n$4\r\nsave\r\n$0\r\n\r\n$10\r\nappendonly\r\n$2\r\nno\r\n'); // redis-benchmark asks
  else if (cmd === 'QUIT') return (out.write('+OK\r\n'), false);
  else out.write(`-ERR unknown command '${cmd}' or wrong number of arguments\r\n`);
  return true;
}
