// The Redis protocol's requests and commands, apart from any transport: examples/redis.ts
// serves them on netpoll/server, bench/net_redis.ts on node:net (so the benchmark compares
// transports and nothing else). PING, ECHO, SET, GET, DEL, INCR, EXISTS, DBSIZE, FLUSHALL,
// QUIT and CONFIG: enough for redis-cli and redis-benchmark.
//
// The parser reads bytes where they lie, in JavaScript: lengths are parsed digit by digit and
// lines end where a byte compare finds CR, so a request costs no call into C++ per line and no
// copy of its arguments. Arguments are offsets into the input; a key becomes a string once per
// command, and a value is copied only when SET stores it.

const CR = 0x0d;
const LF = 0x0a;
const STAR = 0x2a;
const DOLLAR = 0x24;
const MINUS = 0x2d;
const ZERO = 0x30;
const CRLF = Buffer.from('\r\n');

/** Redis's limits: a request's count (before Redis 7), a bulk string (proto-max-bulk-len), an inline request. */
const MAX_ARGS = 1024 * 1024;
const MAX_BULK = 512 * 1024 * 1024;
const MAX_INLINE = 64 * 1024;

/** Each key's value, kept as the reply GET sends (`$<length>\r\n<bytes>\r\n`), so GET writes it as it is. */
export type RedisDb = Map<string, Buffer>;

/** Where replies go: a netpoll/server Conn is one. `data` may be a view of the input: copy it, or use it before the input changes. */
export interface ReplySink {
  write(data: Uint8Array | string): unknown;
}

/** What {@link serveRequests} returns when the connection must close once the replies written are sent (QUIT, a protocol error). */
export const CLOSE = -1;

// The request being parsed: argument k is input[starts[k], starts[k] + lengths[k]), and
// heads[k] is where its `$<length>\r\n` begins (-1 for an inline command's words). One set
// per thread (each worker has its own module): a request is run before the next is parsed.
const starts: number[] = [];
const lengths: number[] = [];
const heads: number[] = [];
let argc = 0;
/** Where the line that readNumber last parsed ends (its CR). */
let lineEnd = 0;
/** Why the last request could not be parsed, as Redis says it. */
let problem = '';

const WAIT = -1; // the request is not all there yet
const BAD = -2; // the request breaks the protocol (`problem` says how)
const MORE = -Infinity; // readNumber's line is not all there yet (a number cannot be this)

/**
 * The integer on the line at `i`, up to its CR: digits, perhaps after '-', without leading
 * zeros (as Redis's string2ll reads it); NaN if the line is not one, MORE until its CR and the
 * byte after it have arrived. At most 18 digits, so a line never grows without bound.
 */
function readNumber(buf: Buffer, i: number, end: number): number {
  const negative = i < end && buf[i] === MINUS;
  const first = negative ? i + 1 : i;
  let value = 0;
  for (i = first; i < end; i++) {
    const c = buf[i];
    if (c === CR) {
      if (i === first || (buf[first] === ZERO && (i > first + 1 || negative))) return NaN;
      if (i + 1 >= end) return MORE;
      lineEnd = i;
      return negative ? -value : value;
    }
    const digit = c - ZERO;
    if (digit < 0 || digit > 9 || i - first >= 18) return NaN;
    value = value * 10 + digit;
  }
  return MORE;
}

function fail(why: string): number {
  problem = why;
  return BAD;
}

/** Parses the array of bulk strings at `pos` (its '*'); returns where the next request begins, WAIT or BAD. */
function readArray(buf: Buffer, pos: number, end: number): number {
  argc = 0;
  const count = readNumber(buf, pos + 1, end);
  if (count === MORE) return WAIT;
  if (!(count <= MAX_ARGS)) return fail('invalid multibulk length'); // NaN too
  let i = lineEnd + 2;
  for (let k = 0; k < count; k++) {
    if (i >= end) return WAIT;
    if (buf[i] !== DOLLAR) return fail(`expected '$', got '${String.fromCharCode(buf[i])}'`);
    const len = readNumber(buf, i + 1, end);
    if (len === MORE) return WAIT;
    if (!(len >= 0 && len <= MAX_BULK)) return fail('invalid bulk length');
    const start = lineEnd + 2;
    // Nothing is allocated for a declared length: the bytes are awaited where they arrive.
    if (start + len + 2 > end) return WAIT;
    heads[argc] = i;
    starts[argc] = start;
    lengths[argc++] = len;
    i = start + len + 2; // as Redis does, the two bytes after the value are not looked at
  }
  return i; // a count of 0 or less is an empty request, skipped
}

const isSpace = (c: number): boolean => c === 0x20 || (c >= 0x09 && c <= 0x0d);

/** Parses an inline command at `pos` (what `nc` sends: words on a line ending in LF or CRLF). */
function readInline(buf: Buffer, pos: number, end: number): number {
  argc = 0;
  let nl = pos;
  while (nl < end && buf[nl] !== LF) nl++;
  if (nl === end) return end - pos > MAX_INLINE ? fail('too big inline request') : WAIT;
  for (let i = pos; i < nl; ) {
    if (isSpace(buf[i])) {
      i++;
      continue;
    }
    heads[argc] = -1;
    starts[argc] = i;
    while (i < nl && !isSpace(buf[i])) i++;
    lengths[argc] = i - starts[argc];
    argc++;
  }
  return nl + 1;
}

/**
 * Runs every complete request at the start of `input` on `db`, their replies written to
 * `out`, and says how many bytes they took (a request not all there yet is left for the next
 * call, with more bytes after it), or CLOSE after QUIT or a protocol error (replied to as Redis
 * replies, `-ERR Protocol error: …`).
 */
export function serveRequests(db: RedisDb, input: Buffer, out: ReplySink): number {
  const end = input.length;
  let pos = 0;
  while (pos < end) {
    const next = input[pos] === STAR ? readArray(input, pos, end) : readInline(input, pos, end);
    if (next === WAIT) break;
    if (next === BAD) return out.write(`-ERR Protocol error: ${problem}\r\n`), CLOSE;
    pos = next;
    if (argc > 0 && !runCommand(db, input, out)) return CLOSE;
  }
  return pos;
}

/** Whether argument `k` is `word` (lower case ASCII letters), in any case. */
function is(buf: Buffer, k: number, word: string): boolean {
  if (lengths[k] !== word.length) return false;
  for (let i = 0, at = starts[k]; i < word.length; i++) if ((buf[at + i] | 0x20) !== word.charCodeAt(i)) return false;
  return true;
}

const text = (buf: Buffer, k: number): string => buf.toString('latin1', starts[k], starts[k] + lengths[k]);

/** Argument `k` as a bulk reply, copied (to be stored). */
function bulkCopy(buf: Buffer, k: number): Buffer {
  const valueEnd = starts[k] + lengths[k];
  if (heads[k] < 0) return Buffer.concat([Buffer.from(`$${lengths[k]}\r\n`, 'latin1'), buf.subarray(starts[k], valueEnd), CRLF]);
  // The request's own `$<length>\r\n` is the reply's: readNumber took no leading zeros or sign.
  const reply = Buffer.allocUnsafe(valueEnd - heads[k] + 2);
  buf.copy(reply, 0, heads[k], valueEnd);
  reply[reply.length - 2] = CR;
  reply[reply.length - 1] = LF;
  return reply;
}

/** Argument `k` as a bulk reply, for now: the `$<length>\r\n` and value in place, then CRLF. */
function echo(buf: Buffer, k: number, out: ReplySink): void {
  if (heads[k] >= 0) out.write(buf.subarray(heads[k], starts[k] + lengths[k]));
  else out.write(`$${lengths[k]}\r\n`), out.write(buf.subarray(starts[k], starts[k] + lengths[k]));
  out.write('\r\n');
}

const NIL = '$-1\r\n';
const OK = '+OK\r\n';

/** Runs the request just parsed (argc ≥ 1); false for QUIT (close after the reply). */
function runCommand(db: RedisDb, buf: Buffer, out: ReplySink): boolean {
  if (is(buf, 0, 'get') && argc === 2) out.write(db.get(text(buf, 1)) ?? NIL);
  else if (is(buf, 0, 'set') && argc >= 3) db.set(text(buf, 1), bulkCopy(buf, 2)), out.write(OK);
  else if (is(buf, 0, 'ping')) argc > 1 ? echo(buf, 1, out) : out.write('+PONG\r\n');
  else if (is(buf, 0, 'incr') && argc === 2) {
    const key = text(buf, 1);
    const stored = db.get(key);
    let n = stored === undefined ? 0 : readNumber(stored, stored.indexOf(LF) + 1, stored.length);
    if (stored !== undefined && lineEnd !== stored.length - 2) n = NaN; // a CR inside the value
    if (!Number.isSafeInteger(n + 1)) out.write('-ERR value is not an integer or out of range\r\n');
    else db.set(key, Buffer.from(`$${String(n + 1).length}\r\n${n + 1}\r\n`, 'latin1')), out.write(`:${n + 1}\r\n`);
  } else if (is(buf, 0, 'echo') && argc === 2) echo(buf, 1, out);
  else if (is(buf, 0, 'del') || is(buf, 0, 'exists')) {
    const del = is(buf, 0, 'del');
    let n = 0;
    for (let k = 1; k < argc; k++) if (del ? db.delete(text(buf, k)) : db.has(text(buf, k))) n++;
    out.write(`:${n}\r\n`);
  } else if (is(buf, 0, 'dbsize')) out.write(`:${db.size}\r\n`);
  else if (is(buf, 0, 'flushall')) db.clear(), out.write(OK);
  else if (is(buf, 0, 'config')) out.write('*4\r\n$4\r\nsave\r\n$0\r\n\r\n$10\r\nappendonly\r\n$2\r\nno\r\n'); // redis-benchmark asks
  else if (is(buf, 0, 'quit')) return out.write(OK), false;
  else out.write(`-ERR unknown command '${text(buf, 0).toUpperCase()}' or wrong number of arguments\r\n`);
  return true;
}
