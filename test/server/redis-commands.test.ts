// The Redis protocol module that examples/redis.ts (netpoll/server) and bench/net_redis.ts
// (node:net) share, without a transport: requests split at every byte, pipelined, inline,
// binary values with CRLF inside, and bad ones answered as Redis answers them. The servers
// themselves are driven by redis-cli and redis-benchmark in examples.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RedisSession, CLOSE, type RedisDb } from '../../examples/redis-commands.js';

interface Session {
  /** Everything replied so far, as latin1 text. */
  replies: string;
  closed: boolean;
  /** Bytes received and not yet used. */
  left: number;
}

/** Feeds `chunks` one read at a time, as a transport does: unused bytes stay at the front of the next input. */
function session(db: RedisDb, chunks: readonly Buffer[]): Session {
  const replies: Buffer[] = [];
  // Replies may be views of the input: copied at once, since the input is changed below.
  const sink = { write: (d: Uint8Array | string) => void replies.push(Buffer.from(typeof d === 'string' ? Buffer.from(d, 'latin1') : d)) };
  const requests = new RedisSession(db, sink);
  let input = Buffer.alloc(0);
  let closed = false;
  for (const chunk of chunks) {
    // A fresh copy each time, so that nothing can depend on the old input's memory.
    input = Buffer.concat([input, chunk]);
    const used = requests.serve(input);
    if (used === CLOSE) {
      closed = true;
      break;
    }
    assert.ok(used >= 0 && used <= input.length, `used ${used} of ${input.length}`);
    input.fill(0x21, 0, used); // what was used is gone: a reply still pointing at it would show '!'
    input = input.subarray(used);
  }
  return { replies: Buffer.concat(replies).toString('latin1'), closed, left: input.length };
}

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const array = (...args: string[]): string => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a, 'latin1')}\r\n${a}\r\n`).join('')}`;
const run = (...chunks: string[]): Session => session(new Map(), chunks.map(b));

// Binary: CRLF, NUL, bytes above 0x7f, and what looks like RESP inside values and keys.
const VALUE = 'a\r\nb\0\xff*1\r\n$4\r\nPING\r\n';
const KEY = 'k\xff\0\r\n';
const SCRIPT =
  array('PING') +
  array('SET', KEY, VALUE) +
  'GET k\xff\r\n' + // inline, a different key
  array('GET', KEY) +
  '  INCR   n \r\n' + // inline, with spaces around
  'incr n\n' + // bare LF, lower case, as nc sends it
  '\r\n' + // an empty inline line: skipped, as Redis skips it
  '*0\r\n' + // an empty array: skipped
  '*-1\r\n' + // so is a null one
  array('EXISTS', KEY, 'n', 'missing') +
  array('ECHO', '') +
  array('PING', 'x\r\ny') +
  array('DEL', KEY, 'missing') +
  array('GET', KEY) +
  array('DBSIZE');
const REPLIES =
  '+PONG\r\n' +
  '+OK\r\n' +
  '$-1\r\n' +
  `$${VALUE.length}\r\n${VALUE}\r\n` +
  ':1\r\n' +
  ':2\r\n' +
  ':2\r\n' +
  '$0\r\n\r\n' +
  '$4\r\nx\r\ny\r\n' +
  ':1\r\n' +
  '$-1\r\n' +
  ':1\r\n';

test('a pipelined script, in one read: every reply, in order, and every byte used', () => {
  const s = run(SCRIPT);
  assert.is(s.replies, REPLIES);
  assert.is(s.left, 0);
  assert.not.ok(s.closed);
});

test('the script split into two reads at every byte, and fed one byte at a time: the same replies', () => {
  for (let at = 0; at <= SCRIPT.length; at++) {
    const s = run(SCRIPT.slice(0, at), SCRIPT.slice(at));
    assert.is(s.replies, REPLIES, `split at ${at}`);
    assert.is(s.left, 0, `split at ${at}`);
  }
  const bytewise = run(...SCRIPT.split(''));
  assert.is(bytewise.replies, REPLIES);
  assert.is(bytewise.left, 0);
});

test('a request not all there yet: nothing replied, nothing used, until the rest arrives', () => {
  const whole = array('SET', 'key', 'value');
  for (let at = 0; at < whole.length; at++) {
    const replies: unknown[] = [];
    assert.is(new RedisSession(new Map(), { write: (d) => replies.push(d) }).serve(b(whole.slice(0, at))), 0, `first ${at} bytes`);
    assert.equal(replies, []);
  }
  // After complete requests, the partial one's start.
  const used = new RedisSession(new Map(), { write: () => {} }).serve(b(array('PING') + whole.slice(0, 9)));
  assert.is(used, array('PING').length);
});

test('a request of many arguments, in reads of every size from 1 to 13 bytes: parsed where it was left off', () => {
  const keys = Array.from({ length: 300 }, (_, i) => `key${i}`);
  const script = keys.map((k) => array('SET', k, k)).join('') + array('DEL', ...keys, 'missing') + array('DBSIZE');
  for (let size = 1; size <= 13; size++) {
    const chunks: string[] = [];
    for (let at = 0; at < script.length; at += size) chunks.push(script.slice(at, at + size));
    const s = run(...chunks);
    assert.is(s.replies, '+OK\r\n'.repeat(300) + ':300\r\n:0\r\n', `reads of ${size}`);
    assert.is(s.left, 0);
  }
});

test('requests of more than 1024 arguments, then small ones, on one session', () => {
  const keys = Array.from({ length: 3000 }, (_, i) => `k${i}`);
  const s = run(array('SET', 'k7', 'v') + array('EXISTS', ...keys), array('DEL', ...keys.slice(0, 2000)) + array('GET', 'k7') + array('PING'));
  assert.is(s.replies, '+OK\r\n:1\r\n:1\r\n$-1\r\n+PONG\r\n');
});

test('a stored value is a copy: the input changing afterwards does not change it', () => {
  const db: RedisDb = new Map();
  const input = b(array('SET', 'k', 'hello'));
  new RedisSession(db, { write: () => {} }).serve(input);
  input.fill(0x58);
  const s = session(db, [b(array('GET', 'k'))]);
  assert.is(s.replies, '$5\r\nhello\r\n');
});

test('bad lengths and types: the error Redis replies with, then the connection closes', () => {
  const cases: [string, string][] = [
    ['*x\r\n', 'invalid multibulk length'],
    ['*-\r\n', 'invalid multibulk length'],
    ['*01\r\n', 'invalid multibulk length'],
    ['*1048577\r\n', 'invalid multibulk length'], // more arguments than Redis takes
    ['*99999999999999999999\r\n', 'invalid multibulk length'],
    ['*1\r\n$-1\r\n', 'invalid bulk length'],
    ['*1\r\n$-0\r\n', 'invalid bulk length'],
    ['*1\r\n$03\r\nabc\r\n', 'invalid bulk length'],
    ['*1\r\n$\r\n', 'invalid bulk length'],
    ['*1\r\n$3x\r\nabc\r\n', 'invalid bulk length'],
    ['*1\r\n$536870913\r\n', 'invalid bulk length'], // above proto-max-bulk-len
    ['*2\r\n$4\r\nPING\r\n+x\r\n', "expected '$', got '+'"],
  ];
  for (const [request, why] of cases) {
    const s = run(array('PING'), request + array('PING'));
    assert.is(s.replies, `+PONG\r\n-ERR Protocol error: ${why}\r\n`, JSON.stringify(request));
    assert.ok(s.closed, JSON.stringify(request));
  }
});

test('sizes are bounded: a huge declared length allocates nothing, and endless lines end in an error', () => {
  // The largest bulk Redis takes is awaited, not allocated.
  const before = process.memoryUsage().arrayBuffers;
  const waiting = run('*2\r\n$3\r\nSET\r\n$536870912\r\n', 'abc');
  assert.is(waiting.replies, '');
  assert.not.ok(waiting.closed);
  assert.ok(process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024);
  // A length that never ends is refused once it is longer than any valid one.
  assert.is(run('*1\r\n$', '1'.repeat(19)).replies, '-ERR Protocol error: invalid bulk length\r\n');
  assert.is(run('*', '1'.repeat(19)).replies, '-ERR Protocol error: invalid multibulk length\r\n');
  // An inline line without its LF, as Redis bounds it (64 KiB).
  assert.is(run('GET ' + 'k'.repeat(60 * 1024)).replies, '');
  const long = run('GET ' + 'k'.repeat(60 * 1024), 'k'.repeat(8 * 1024));
  assert.is(long.replies, '-ERR Protocol error: too big inline request\r\n');
  assert.ok(long.closed);
});

test('commands: SET and GET, INCR on integers only, DEL, EXISTS, FLUSHALL, unknown ones, and QUIT closing', () => {
  assert.is(run(array('set', 'a', '1'), array('GET', 'a') + array('INCR', 'a') + array('get', 'a')).replies, '+OK\r\n$1\r\n1\r\n:2\r\n$1\r\n2\r\n');
  assert.is(run(array('SET', 'a', '-5'), array('INCR', 'a')).replies, '+OK\r\n:-4\r\n');
  for (const bad of ['x', '', '01', '1\r2', ' 1', '1.5', '9007199254740992']) {
    assert.is(run(array('SET', 'a', bad), array('INCR', 'a')).replies, '+OK\r\n-ERR value is not an integer or out of range\r\n', JSON.stringify(bad));
  }
  assert.is(run(array('SET', 'a', '1') + array('SET', 'b', '2') + array('DEL', 'a', 'b', 'a') + array('EXISTS', 'a', 'b')).replies, '+OK\r\n+OK\r\n:2\r\n:0\r\n');
  assert.is(run(array('SET', 'a', '1') + array('FLUSHALL') + array('DBSIZE')).replies, '+OK\r\n+OK\r\n:0\r\n');
  assert.is(run(array('NOPE', 'x') + array('GET') + array('GETX', 'a')).replies,
    "-ERR unknown command 'NOPE' or wrong number of arguments\r\n-ERR unknown command 'GET' or wrong number of arguments\r\n-ERR unknown command 'GETX' or wrong number of arguments\r\n");
  const quit = run(array('PING') + array('QUIT') + array('SET', 'after', '1'));
  assert.is(quit.replies, '+PONG\r\n+OK\r\n');
  assert.ok(quit.closed);
  // redis-benchmark asks for the configuration before it starts.
  assert.match(run(array('CONFIG', 'GET', 'save')).replies, /^\*4\r\n\$4\r\nsave\r\n/);
});

test.run();
