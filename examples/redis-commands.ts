// The Redis protocol's requests and commands, apart from any transport: examples/redis.ts
// serves them on netpoll/server, bench/net_redis.ts on node:net (so the benchmark compares
// transports and nothing else). PING, ECHO, SET, GET, DEL, INCR, EXISTS, DBSIZE, FLUSHALL,
// QUIT and CONFIG: enough for redis-cli and redis-benchmark.
//
// The parser reads bytes where they lie, in JavaScript: lengths are parsed digit by digit and
// lines end where a byte compare finds CR, so a request costs no call into C++ per line and no
// copy of its arguments. Arguments are offsets into the input; a key becomes a string once per
// command, and a value is copied only when SET stores it. Each connection has a RedisSession,
// which remembers how far it got into a request not all there yet.
//
// Bad requests get Redis's `-ERR Protocol error: …` and the connection closes. Sizes are
// Redis's: a bulk string up to 512 MB is awaited (nothing is allocated for its declared length,
// but the transport holds what arrives), an inline line up to 64 KiB. Inline commands are
// split at whitespace; unlike Redis's, they take no quotes.

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

/** What {@link RedisSession.serve} returns when the connection must close once the replies written are sent (QUIT, a protocol error). */
export const CLOSE = -1;

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

const isSpace = (c: number): boolean => c === 0x20 || (c >= 0x09 && c <= 0x0d);

/**
 * One connection's requests on `db`, their replies written to `out`. It remembers how far it
 * got into a request not all there yet, so that a request arriving in many reads (a million
 * arguments, a byte at a time) is parsed once, not again on every read.
 */
export class RedisSession {
  // The request being parsed, from `base`: argument k is input[base + starts[k], + lengths[k]),
  // and base + heads[k] is where its `$<length>\r\n` begins (-1 for an inline command's words).
  private starts: number[] = [];
  private lengths: number[] = [];
  private heads: number[] = [];
  private argc = 0;
  private base = 0;
  /** For an array not all there yet: its count, and where (from its start) its next argument begins; 0 when none is. */
  private count = 0;
  private resumeAt = 0;

  constructor(
    private readonly db: RedisDb,
    private readonly out: ReplySink,
  ) {}

  /**
   * Runs every complete request at the start of `input`, and says how many bytes they took, or
   * CLOSE after QUIT or a protocol error (replied to as Redis replies, `-ERR Protocol error: …`).
   * A request not all there yet is left: the next call's input must begin with it (the bytes
   * not used, then what arrived since), as a transport's input buffer does.
   */
  serve(input: Buffer): number {
    const end = input.length;
    let pos = 0;
    while (pos < end) {
      this.base = pos;
      const next = input[pos] === STAR ? this.readArray(input, end) : this.readInline(input, end);
      if (next === WAIT) break;
      if (next === BAD) return this.out.write(`-ERR Protocol error: ${problem}\r\n`), CLOSE;
      pos = next;
      if (this.argc > 0 && !this.run(input)) return CLOSE;
      // A request of many arguments does not leave its offsets held for the connection's life.
      if (this.argc > 1024) (this.starts = []), (this.lengths = []), (this.heads = []);
    }
    return pos;
  }

  /** Parses the array of bulk strings at `base` (its '*'); returns where the next request begins, WAIT or BAD. */
  private readArray(buf: Buffer, end: number): number {
    const pos = this.base;
    let i: number;
    if (this.resumeAt > 0 && pos === 0) i = pos + this.resumeAt; // its count and first argc arguments are parsed
    else {
      this.argc = 0;
      const count = readNumber(buf, pos + 1, end);
      if (count === MORE) return WAIT;
      if (!(count <= MAX_ARGS)) return fail('invalid multibulk length'); // NaN too
      this.count = count;
      i = lineEnd + 2;
    }
    this.resumeAt = 0;
    for (let k = this.argc; k < this.count; k++) {
      const len = i < end ? (buf[i] === DOLLAR ? readNumber(buf, i + 1, end) : NaN) : MORE;
      if (len === MORE) return this.wait(i);
      if (buf[i] !== DOLLAR) return fail(`expected '$', got '${String.fromCharCode(buf[i])}'`);
      if (!(len >= 0 && len <= MAX_BULK)) return fail('invalid bulk length');
      const start = lineEnd + 2;
      // Nothing is allocated for a declared length: the bytes are awaited where they arrive.
      if (start + len + 2 > end) return this.wait(i);
      this.heads[k] = i - pos;
      this.starts[k] = start - pos;
      this.lengths[k] = len;
      this.argc = k + 1;
      i = start + len + 2; // as Redis does, the two bytes after the value are not looked at
    }
    return i; // a count of 0 or less is an empty request, skipped
  }

  /** Remembers that the array at `base` goes on at `i`, for the next call (whose input begins at `base`). */
  private wait(i: number): number {
    this.resumeAt = i - this.base;
    return WAIT;
  }

  /** Parses an inline command at `base` (what `nc` sends: words on a line ending in LF or CRLF). */
  private readInline(buf: Buffer, end: number): number {
    const pos = this.base;
    this.argc = 0;
    let nl = pos;
    while (nl < end && buf[nl] !== LF) nl++;
    if (nl === end) return end - pos > MAX_INLINE ? fail('too big inline request') : WAIT;
    for (let i = pos; i < nl; ) {
      if (isSpace(buf[i])) {
        i++;
        continue;
      }
      const at = i;
      while (i < nl && !isSpace(buf[i])) i++;
      this.heads[this.argc] = -1;
      this.starts[this.argc] = at - pos;
      this.lengths[this.argc++] = i - at;
    }
    return nl + 1;
  }

  /** Where argument `k` begins in the input. */
  private start(k: number): number {
    return this.base + this.starts[k];
  }

  /** Whether argument `k` is `word` (lower case ASCII letters), in any case. */
  private is(buf: Buffer, k: number, word: string): boolean {
    if (this.lengths[k] !== word.length) return false;
    for (let i = 0, at = this.start(k); i < word.length; i++) if ((buf[at + i] | 0x20) !== word.charCodeAt(i)) return false;
    return true;
  }

  /** Argument `k` as a string (latin1: any bytes, one character each, as a key must be). */
  private text(buf: Buffer, k: number): string {
    return buf.toString('latin1', this.start(k), this.start(k) + this.lengths[k]);
  }

  /** Argument `k` as a bulk reply, copied (to be stored). */
  private bulkCopy(buf: Buffer, k: number): Buffer {
    const valueEnd = this.start(k) + this.lengths[k];
    if (this.heads[k] < 0) return Buffer.concat([Buffer.from(`$${this.lengths[k]}\r\n`, 'latin1'), buf.subarray(this.start(k), valueEnd), CRLF]);
    // The request's own `$<length>\r\n` is the reply's: readNumber took no leading zeros or sign.
    const head = this.base + this.heads[k];
    const reply = Buffer.allocUnsafe(valueEnd - head + 2);
    buf.copy(reply, 0, head, valueEnd);
    reply[reply.length - 2] = CR;
    reply[reply.length - 1] = LF;
    return reply;
  }

  /** Argument `k` as a bulk reply, written as views of the input where it can be. */
  private echo(buf: Buffer, k: number): void {
    const valueEnd = this.start(k) + this.lengths[k];
    if (this.heads[k] >= 0) this.out.write(buf.subarray(this.base + this.heads[k], valueEnd));
    else this.out.write(`$${this.lengths[k]}\r\n`), this.out.write(buf.subarray(this.start(k), valueEnd));
    this.out.write('\r\n');
  }

  /** Runs the request just parsed (argc ≥ 1); false for QUIT (close after the reply). */
  private run(buf: Buffer): boolean {
    const { db, out, argc } = this;
    if (this.is(buf, 0, 'get') && argc === 2) out.write(db.get(this.text(buf, 1)) ?? NIL);
    else if (this.is(buf, 0, 'set') && argc >= 3) db.set(this.text(buf, 1), this.bulkCopy(buf, 2)), out.write(OK);
    else if (this.is(buf, 0, 'ping')) argc > 1 ? this.echo(buf, 1) : out.write('+PONG\r\n');
    else if (this.is(buf, 0, 'incr') && argc === 2) {
      const key = this.text(buf, 1);
      const stored = db.get(key);
      let n = stored === undefined ? 0 : readNumber(stored, stored.indexOf(LF) + 1, stored.length);
      if (stored !== undefined && lineEnd !== stored.length - 2) n = NaN; // a CR inside the value
      if (!Number.isSafeInteger(n + 1)) out.write('-ERR value is not an integer or out of range\r\n');
      else db.set(key, Buffer.from(`$${String(n + 1).length}\r\n${n + 1}\r\n`, 'latin1')), out.write(`:${n + 1}\r\n`);
    } else if (this.is(buf, 0, 'echo') && argc === 2) this.echo(buf, 1);
    else if (this.is(buf, 0, 'del') || this.is(buf, 0, 'exists')) {
      const del = this.is(buf, 0, 'del');
      let n = 0;
      for (let k = 1; k < argc; k++) if (del ? db.delete(this.text(buf, k)) : db.has(this.text(buf, k))) n++;
      out.write(`:${n}\r\n`);
    } else if (this.is(buf, 0, 'dbsize')) out.write(`:${db.size}\r\n`);
    else if (this.is(buf, 0, 'flushall')) db.clear(), out.write(OK);
    else if (this.is(buf, 0, 'config')) out.write('*4\r\n$4\r\nsave\r\n$0\r\n\r\n$10\r\nappendonly\r\n$2\r\nno\r\n'); // redis-benchmark asks
    else if (this.is(buf, 0, 'quit')) return out.write(OK), false;
    else out.write(`-ERR unknown command '${this.text(buf, 0).toUpperCase()}' or wrong number of arguments\r\n`);
    return true;
  }
}

const NIL = '$-1\r\n';
const OK = '+OK\r\n';
