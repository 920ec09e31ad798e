// A minimal HTTP/1.1 server on netpoll/server for the plaintext benchmark: GET /plaintext
// (and /) answers 200 "Hello, World!". Keep-alive and pipelining work: every complete request
// buffered is answered, and the replies leave in one writev when onTraffic returns.
//
//   npm run example:http                      # port 8080 (or $PORT, or the first argument)
//   curl http://127.0.0.1:8080/plaintext
//   wrk -t2 -c64 -d10s http://127.0.0.1:8080/plaintext
//
// Nothing is allocated per request on the fast path: requests are parsed where they lie in
// the connection's input (conn.peek() is a view when the bytes are contiguous), and replies
// are prebuilt buffers (rebuilt once a second, for the Date header) that conn.write() copies
// into the outbound buffer. Request bodies (Content-Length) are skipped; chunked ones are
// refused (501); a head over 8 KiB gets 431, a body over 1 MiB 413.
//
// Its default export is the handler, so that examples/reactor.ts and examples/multicore.ts
// can serve it on several loop threads.
import { serve, Action, type Conn, type Engine, type EventHandler, type HandlerResult, type ServerOptions } from 'netpoll/server';
import { addressFromCli, reportLoop, runUntilSignalled } from './cli.js';

const CR = 13, LF = 10, SP = 32, HT = 9, COLON = 58, QUESTION = 63;
const CRLFCRLF = Buffer.from('\r\n\r\n');
/** Largest request head (request line + headers) accepted: 431 beyond. */
const MAX_HEAD = 8 * 1024;
/** Largest request body skipped: 413 beyond (this server wants none). */
const MAX_BODY = 1024 * 1024;

const ascii = (s: string): Buffer => Buffer.from(s, 'latin1');
const GET = ascii('GET'), HEAD = ascii('HEAD'), HTTP_SLASH = ascii('HTTP/');
const PATH_ROOT = ascii('/'), PATH_PLAINTEXT = ascii('/plaintext');
const H_CONNECTION = ascii('connection'), H_CONTENT_LENGTH = ascii('content-length'), H_TRANSFER_ENCODING = ascii('transfer-encoding');
const T_CLOSE = ascii('close'), T_KEEP_ALIVE = ascii('keep-alive');

const HELLO = 'Hello, World!';
const STATUSES = [200, 400, 404, 405, 413, 431, 501, 505] as const;
type Status = (typeof STATUSES)[number];
const REASONS: Record<Status, string> = {
  200: 'OK',
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  413: 'Content Too Large',
  431: 'Request Header Fields Too Large',
  501: 'Not Implemented',
  505: 'HTTP Version Not Supported',
};

/** How the reply speaks of the connection. */
const enum ConnHeader {
  /** HTTP/1.1 keep-alive: nothing to say. */
  Implicit = 0,
  /** "Connection: close", and the server closes after the reply. */
  Close = 1,
  /** "Connection: keep-alive", for an HTTP/1.0 client that asked for it. */
  KeepAlive = 2,
}

// ---- the replies, prebuilt and refreshed each second for the Date header ----

let dateValue = '';
let dateExpires = 0;
const replyCache: (Buffer | undefined)[] = [];

function refreshDate(now: number): void {
  if (now < dateExpires) return;
  dateValue = new Date(now).toUTCString(); // IMF-fixdate, as HTTP wants
  dateExpires = now - (now % 1000) + 1000;
  replyCache.length = 0;
}

function reply(status: Status, conn: ConnHeader, head: boolean): Buffer {
  const key = (STATUSES.indexOf(status) * 3 + conn) * 2 + (head ? 1 : 0);
  let r = replyCache[key];
  if (r === undefined) {
    const body = status === 200 ? HELLO : `${REASONS[status]}\n`;
    const lines = [
      `HTTP/1.1 ${status} ${REASONS[status]}`,
      'Server: netpoll',
      'Content-Type: text/plain; charset=utf-8',
      `Content-Length: ${Buffer.byteLength(body)}`,
      `Date: ${dateValue}`,
    ];
    if (status === 405) lines.push('Allow: GET, HEAD');
    if (conn === ConnHeader.Close) lines.push('Connection: close');
    if (conn === ConnHeader.KeepAlive) lines.push('Connection: keep-alive');
    r = ascii(`${lines.join('\r\n')}\r\n\r\n${head ? '' : body}`);
    replyCache[key] = r;
  }
  return r;
}

// ---- the parser: bytes in place, results in these variables (one loop per thread, no allocation) ----

let reqStatus: Status = 200;
let reqKeepAlive = true;
let reqHttp10 = false;
let reqHead = false;

/** Whether d[at, at + lit.length) equals `lit`, ignoring ASCII case (lit is lowercase). */
function equalsLower(d: Buffer, at: number, end: number, lit: Buffer): boolean {
  if (end - at !== lit.length) return false;
  for (let i = 0; i < lit.length; i++) if ((d[at + i] | 0x20) !== lit[i]) return false;
  return true;
}

function equalsExact(d: Buffer, at: number, end: number, lit: Buffer): boolean {
  if (end - at !== lit.length) return false;
  for (let i = 0; i < lit.length; i++) if (d[at + i] !== lit[i]) return false;
  return true;
}

/** Whether the comma-separated header value d[at, end) lists `token` (lowercase). */
function hasToken(d: Buffer, at: number, end: number, token: Buffer): boolean {
  let i = at;
  while (i < end) {
    while (i < end && (d[i] === SP || d[i] === HT || d[i] === 44)) i++;
    let j = i;
    while (j < end && d[j] !== 44) j++;
    let k = j;
    while (k > i && (d[k - 1] === SP || d[k - 1] === HT)) k--;
    if (equalsLower(d, i, k, token)) return true;
    i = j + 1;
  }
  return false;
}

/**
 * Parses one request at d[start]: the bytes it takes (head and body) with the reply to
 * give in req*, 0 when it is not complete yet, or -1 for a request to refuse
 * (reqStatus tells how; the connection closes after the reply).
 */
function parseRequest(d: Buffer, start: number): number {
  const end = d.length;
  const headEnd = d.indexOf(CRLFCRLF, start);
  if (headEnd < 0) {
    if (end - start > MAX_HEAD) return refuse(431);
    return 0;
  }
  if (headEnd - start > MAX_HEAD) return refuse(431);
  // Request line: METHOD SP TARGET SP HTTP/1.x CRLF
  const lineEnd = d.indexOf(CR, start);
  const sp1 = d.indexOf(SP, start);
  if (sp1 <= start || sp1 > lineEnd) return refuse(400);
  const sp2 = d.indexOf(SP, sp1 + 1);
  if (sp2 <= sp1 + 1 || sp2 > lineEnd || d[lineEnd + 1] !== LF) return refuse(400);
  if (lineEnd - sp2 - 1 !== 8 || !equalsExact(d, sp2 + 1, sp2 + 6, HTTP_SLASH)) return refuse(400);
  if (d[sp2 + 6] !== 0x31 || d[sp2 + 7] !== 0x2e) return refuse(505); // not HTTP/1.x
  const minor = d[sp2 + 8];
  if (minor !== 0x30 && minor !== 0x31) return refuse(505);
  reqHttp10 = minor === 0x30;
  reqKeepAlive = !reqHttp10;
  reqHead = equalsExact(d, start, sp1, HEAD);
  const isGet = reqHead || equalsExact(d, start, sp1, GET);
  let pathEnd = d.indexOf(QUESTION, sp1 + 1);
  if (pathEnd < 0 || pathEnd > sp2) pathEnd = sp2;
  const known = equalsExact(d, sp1 + 1, pathEnd, PATH_PLAINTEXT) || equalsExact(d, sp1 + 1, pathEnd, PATH_ROOT);
  reqStatus = !known ? 404 : isGet ? 200 : 405;

  // Headers: only the three that change how the bytes are framed or the connection kept.
  let bodyLength = 0;
  let lengthSeen = false;
  for (let at = lineEnd + 2; at < headEnd; ) {
    const eol = d.indexOf(CR, at);
    if (d[eol + 1] !== LF || d[at] === SP || d[at] === HT) return refuse(400); // bare CR, or obsolete folding
    let colon = at;
    while (colon < eol && d[colon] !== COLON) colon++;
    if (colon === eol || colon === at) return refuse(400);
    let vs = colon + 1;
    while (vs < eol && (d[vs] === SP || d[vs] === HT)) vs++;
    let ve = eol;
    while (ve > vs && (d[ve - 1] === SP || d[ve - 1] === HT)) ve--;
    const nameLength = colon - at;
    if (nameLength === H_CONNECTION.length && equalsLower(d, at, colon, H_CONNECTION)) {
      if (hasToken(d, vs, ve, T_CLOSE)) reqKeepAlive = false;
      else if (reqHttp10 && hasToken(d, vs, ve, T_KEEP_ALIVE)) reqKeepAlive = true;
    } else if (nameLength === H_CONTENT_LENGTH.length && equalsLower(d, at, colon, H_CONTENT_LENGTH)) {
      if (vs === ve || ve - vs > 9) return refuse(ve - vs > 9 ? 413 : 400);
      let n = 0;
      for (let i = vs; i < ve; i++) {
        const c = d[i] - 0x30;
        if (c < 0 || c > 9) return refuse(400);
        n = n * 10 + c;
      }
      if (lengthSeen && n !== bodyLength) return refuse(400); // conflicting lengths: a smuggling attempt
      if (n > MAX_BODY) return refuse(413);
      bodyLength = n;
      lengthSeen = true;
    } else if (nameLength === H_TRANSFER_ENCODING.length && equalsLower(d, at, colon, H_TRANSFER_ENCODING)) {
      return refuse(501);
    }
    at = eol + 2;
  }
  const total = headEnd + 4 + bodyLength - start;
  return start + total <= end ? total : 0;
}

function refuse(status: Status): number {
  reqStatus = status;
  reqKeepAlive = false;
  reqHead = false;
  return -1;
}

/** Requests answered on this thread (each loop thread of a multicore server has its own). */
let requests = 0;

/**
 * Answers every complete request buffered, in order. Stops early when the outbound buffer
 * passes its high-water mark (the rest stays buffered; onDrain comes back for it) and after a
 * request that ends the connection (what follows it is never read).
 */
function answer(conn: Conn): HandlerResult {
  refreshDate(Date.now());
  const data = conn.peek();
  let pos = 0;
  let result: HandlerResult = Action.None;
  while (pos < data.length) {
    // Stray CRLFs between requests are allowed (RFC 9112 §2.2).
    if (data[pos] === CR || data[pos] === LF) {
      pos++;
      continue;
    }
    const used = parseRequest(data, pos);
    if (used === 0) break;
    const connHeader = !reqKeepAlive ? ConnHeader.Close : reqHttp10 ? ConnHeader.KeepAlive : ConnHeader.Implicit;
    const room = conn.write(reply(reqStatus, connHeader, reqHead));
    requests++;
    if (used < 0 || !reqKeepAlive) {
      result = Action.Close; // closes once the replies are written
      pos = data.length;
      break;
    }
    pos += used;
    if (!room) break; // the peer is not reading: the rest waits for onDrain
  }
  conn.discard(pos);
  return result;
}

const http: EventHandler = {
  onTraffic: answer,
  onDrain: answer,
  onShutdown: (engine) => reportLoop(engine, `, ${requests} requests`),
};
export default http;

/** Serves HTTP on `addr` ('tcp://127.0.0.1:0', …). */
export function startHttp(addr: string, options?: ServerOptions): Promise<Engine> {
  return serve(http, addr, options);
}

if (require.main === module) {
  runUntilSignalled(startHttp(addressFromCli(8080, process.argv[2])), 'http server', '', (e) => ` after ${e.stats().opened} connections, ${requests} requests`);
}
