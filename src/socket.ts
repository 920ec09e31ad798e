// The socket toolkit: raw, nonblocking sockets this thread owns (what gnet's
// pkg/socket gives Go), to register with a Poller. Node's own sockets belong to
// libuv; these belong to you: read and write them when the poller says so, and
// close them yourself.
//
// Every fd made here is nonblocking and close-on-exec; no write raises SIGPIPE.
// Addresses are numeric (resolve names first with dns.lookup): a name lookup
// blocks, which a poller loop must never do.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import { binding } from './binding.js';
import { systemError } from './errors.js';
import { validateBoolean, validateBuffer, validateFd, validateInteger, validateObject, validateOneOf, validateString } from './validate.js';

const constants = binding.socketConstants;
const EAGAIN = -os.constants.errno.EAGAIN;
const EWOULDBLOCK = -os.constants.errno.EWOULDBLOCK;
const INT_MAX = 0x7fffffff;

/**
 * A socket address in node:net's shape. For a Unix socket, `address` is the path ('' when
 * unnamed; on Linux, an abstract name as node:net writes it, with a leading null byte,
 * `'\0name'`) and `port` is 0: it goes back into {@link dialUnix} and {@link listenUnix}
 * unchanged. Where the kernel
 * gives no address at all ({@link recvFrom} on a connected TCP socket), `address` is '' and
 * `port` 0, with the socket's own family.
 *
 * @example
 * ```ts
 * const { address, family, port } = remoteAddress(fd); // e.g. '127.0.0.1', 'IPv4', 52144
 * ```
 * @category Sockets
 */
export interface SocketAddress {
  /** The numeric IP address, or the Unix socket's path ('' when unnamed, `'\0name'` for a Linux abstract name). */
  address: string;
  /** `'IPv4'`, `'IPv6'` or `'Unix'`. */
  family: 'IPv4' | 'IPv6' | 'Unix';
  /** The port; 0 for a Unix socket. */
  port: number;
}

function wouldBlock(n: number): boolean {
  return n === EAGAIN || n === EWOULDBLOCK;
}

function fdPair(result: [number, number] | number, syscall: string): [number, number] {
  if (typeof result === 'number') throw systemError(result, syscall);
  return result;
}

function optionalBoolean(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  validateBoolean(value, name);
  return value;
}

/** The numeric address for `host`: 'localhost' means the IPv4 loopback. */
function numericHost(host: unknown, name = 'host'): string {
  validateString(host, name);
  if (host === 'localhost') return '127.0.0.1';
  if (net.isIP(host) === 0) {
    const err = new TypeError(`"${host}" is not a numeric IPv4 or IPv6 address (resolve names with dns.lookup first)`) as TypeError & { code: string };
    err.code = 'ERR_INVALID_IP_ADDRESS';
    throw err;
  }
  return host;
}

function invalidAddress(host: string): TypeError {
  const err = new TypeError(`"${host}" is not an address this system can use: an IPv6 zone (after %) must name one of its network interfaces, on a link-local address`) as TypeError & { code: string };
  err.code = 'ERR_INVALID_IP_ADDRESS';
  return err;
}

/**
 * The error for what a native call that took `host` returned: a TypeError when the system
 * refused the host itself (net.isIP accepts zones that name no interface), else a SystemError.
 */
function addressCallError(result: number, syscall: string, host: string, extra: { fd?: number; port: number }): Error {
  if (result === constants.EBADADDR) return invalidAddress(host);
  return systemError(result, syscall, { ...extra, address: host });
}

function invalidArgValue(message: string): TypeError {
  const err = new TypeError(message) as TypeError & { code: string };
  err.code = 'ERR_INVALID_ARG_VALUE';
  return err;
}

/**
 * A Unix socket name: a file path without null bytes, or (Linux) an abstract name written
 * as node:net writes it, with one leading null byte, which is the notation
 * {@link localAddress}, {@link remoteAddress} and {@link recvFrom} report.
 */
function validatePath(path: unknown): asserts path is string {
  validateString(path, 'path');
  if (path.length === 0 || (path[0] !== '\0' && path.includes('\0'))) {
    throw invalidArgValue(`The argument 'path' must be a non-empty string without null bytes (or, on Linux, an abstract name: a null byte, then the name). Received ${JSON.stringify(path)}`);
  }
  if (path[0] === '\0' && process.platform !== 'linux') {
    throw invalidArgValue(`The argument 'path' names an abstract Unix socket (it starts with a null byte), which only Linux has. Received ${JSON.stringify(path)}`);
  }
}

/** The checked `options.mode`, or -1 when absent. */
function modeOf(mode: unknown): number {
  if (mode === undefined) return -1;
  // A TypeError naming what was given for a non-number (null included), a RangeError for a fraction.
  if (typeof mode !== 'number' || !Number.isInteger(mode)) validateInteger(mode, 'options.mode', 0, 0o777);
  if (mode >= 0 && mode <= 0o777) return mode;
  // 600 where 0o600 was meant: decimal digits that read as octal permissions.
  const octal = /^[0-7]{3,4}$/.test(String(mode)) && parseInt(String(mode), 8) <= 0o777;
  const hint = octal ? `: permission bits are octal, write 0o${mode} (decimal ${mode} is 0o${mode.toString(8)})` : ' (an octal number such as 0o600)';
  const err = new RangeError(`The value of "options.mode" is out of range. It must be an integer >= 0 && <= 0o777${hint}. Received ${mode}`) as RangeError & { code: string };
  err.code = 'ERR_OUT_OF_RANGE';
  throw err;
}

// ---- pipes and socketpairs ----

/**
 * Creates a pipe: `[readFd, writeFd]`, both nonblocking and close-on-exec.
 * @throws a SystemError (`EMFILE`) when out of descriptors.
 * @example
 * ```ts
 * const [r, w] = pipe();
 * ```
 * @category File descriptors
 */
export function pipe(): [number, number] {
  return fdPair(binding.pipe(), 'pipe2');
}

/**
 * Creates two connected Unix stream sockets, nonblocking and close-on-exec.
 * @throws a SystemError (`EMFILE`) when out of descriptors.
 * @example
 * ```ts
 * const [a, b] = socketpair();
 * ```
 * @category File descriptors
 */
export function socketpair(): [number, number] {
  return fdPair(binding.socketpair(), 'socketpair');
}

// ---- TCP ----

/**
 * Options for {@link listenTCP}.
 *
 * @example
 * ```ts
 * const lfd = listenTCP('::', 8080, { reusePort: true, backlog: 1024 });
 * ```
 * @category Sockets
 */
export interface ListenOptions {
  /** The kernel's queue of connections not yet accepted. Default 511, as node:net. */
  backlog?: number | undefined;
  /** SO_REUSEADDR: rebind a port whose old connections linger in TIME_WAIT. Default true, as Node and Go. */
  reuseAddr?: boolean | undefined;
  /**
   * SO_REUSEPORT: let several sockets (one per worker thread, say) listen on one port, the
   * kernel spreading connections among them (gnet's multicore model). Default false.
   */
  reusePort?: boolean | undefined;
  /** IPV6_V6ONLY for an IPv6 host: `'::'` then takes IPv6 only instead of both families. Default false. */
  ipv6Only?: boolean | undefined;
}

function sockFlags(options: ListenOptions, reuseAddrDefault: boolean): number {
  validateObject(options, 'options');
  let flags = 0;
  if (optionalBoolean(options.reuseAddr, 'options.reuseAddr', reuseAddrDefault)) flags |= constants.REUSEADDR;
  if (optionalBoolean(options.reusePort, 'options.reusePort', false)) flags |= constants.REUSEPORT;
  if (optionalBoolean(options.ipv6Only, 'options.ipv6Only', false)) flags |= constants.V6ONLY;
  return flags;
}

function backlogOf(options: { backlog?: number | undefined }): number {
  const backlog = options.backlog ?? 511;
  validateInteger(backlog, 'options.backlog', 0, INT_MAX);
  return backlog;
}

/**
 * Opens a TCP socket listening on `host:port` (a numeric IPv4/IPv6 address, `'::'` or
 * `'0.0.0.0'` for all interfaces, or 'localhost'); port 0 picks a free port, which
 * {@link localAddress} tells. Register the fd for reading: a read event means
 * {@link accept} has a connection for you.
 *
 * @param host - a numeric IPv4 or IPv6 address, `'0.0.0.0'` or `'::'` for every interface, or `'localhost'` (127.0.0.1).
 * @param port - the TCP port, 0..65535; 0 lets the kernel pick one.
 * @param options - see {@link ListenOptions}.
 * @throws TypeError (`ERR_INVALID_IP_ADDRESS`) for a host that is not a numeric address, or
 * one the system refuses (an IPv6 zone that names no interface), and for bad options; RangeError
 * for a port outside 0..65535; a SystemError (`EADDRINUSE`, `EACCES`, `EADDRNOTAVAIL`).
 * @example
 * ```ts
 * const lfd = listenTCP('127.0.0.1', 0, { reusePort: true });
 * const { port } = localAddress(lfd);
 * poller.addRead({ fd: lfd, callback: onAccept });
 * ```
 * @category Sockets
 */
export function listenTCP(host: string, port: number, options: ListenOptions = {}): number {
  const numeric = numericHost(host);
  validateInteger(port, 'port', 0, 65535);
  const flags = sockFlags(options, true);
  const fd = binding.listenTCP(numeric, port, backlogOf(options), flags);
  if (fd < 0) throw addressCallError(fd, 'listen', numeric, { port });
  return fd;
}

/**
 * A connection {@link accept} took: its fd and its peer's address.
 *
 * @example
 * ```ts
 * const c = accept(lfd);
 * if (c !== null) console.log(`${c.fd} from ${c.address.address}:${c.address.port}`);
 * ```
 * @category Sockets
 */
export interface Accepted {
  /** The connection's descriptor: nonblocking, close-on-exec, yours to register and close. */
  fd: number;
  /** The peer's address. */
  address: SocketAddress;
}

/**
 * Takes the next connection from a listening socket (accept4 on Linux): its fd, nonblocking
 * and close-on-exec, and the peer's address; `null` when none is waiting (EAGAIN). Call it
 * in a loop on each read event until it returns `null`.
 *
 * @param listenFd - a listening socket from {@link listenTCP} or {@link listenUnix}.
 * @throws a SystemError: `EMFILE` when out of descriptors (the connection stays queued),
 * `EINVAL` when `listenFd` is not listening, `ENOTSOCK` when it is not a socket.
 * @example
 * ```ts
 * for (let c = accept(lfd); c !== null; c = accept(lfd)) {
 *   poller.addRead({ fd: c.fd, callback: onData });
 * }
 * ```
 * @category Sockets
 */
export function accept(listenFd: number): Accepted | null {
  validateFd(listenFd, 'listenFd');
  const r = binding.accept(listenFd);
  if (typeof r !== 'number') return r as Accepted;
  if (wouldBlock(r)) return null;
  throw systemError(r, 'accept', { fd: listenFd });
}

/**
 * Options for {@link dialTCP}.
 *
 * @example
 * ```ts
 * const fd = dialTCP('::1', port, { nonblocking: true });
 * poller.addWrite({ fd, callback: () => { const err = socketError(fd); if (err) throw err; } });
 * ```
 * @category Sockets
 */
export interface DialOptions {
  /**
   * Return at once, with the connect maybe still in progress: a write event tells that
   * it finished and {@link socketError} tells how. Default false: connect before returning.
   */
  nonblocking?: boolean | undefined;
}

/**
 * Connects a TCP socket to `host:port` (a numeric IPv4/IPv6 address or 'localhost') and
 * returns its fd, nonblocking and close-on-exec: the analog of Go's `net.DialTCP` +
 * `c.File()`. The fd is yours: register it with a poller, and `close()` it.
 *
 * @param host - a numeric IPv4 or IPv6 address, or `'localhost'` (127.0.0.1); resolve names with `dns.lookup` first.
 * @param port - the TCP port, 1..65535.
 * @param options - see {@link DialOptions}.
 * @throws TypeError for a host that is not a numeric address, or one the system refuses (as
 * {@link listenTCP}); RangeError for a port outside
 * 1..65535; a SystemError (`ECONNREFUSED`, `ENETUNREACH`, …) when the connect fails.
 * @example
 * ```ts
 * const fd = dialTCP('127.0.0.1', 8080);
 * poller.addReadWrite({ fd, callback });
 * ```
 * @category Sockets
 */
export function dialTCP(host: string, port: number, options: DialOptions = {}): number {
  const numeric = numericHost(host);
  validateInteger(port, 'port', 1, 65535);
  validateObject(options, 'options');
  const nonblocking = optionalBoolean(options.nonblocking, 'options.nonblocking', false);
  const fd = binding.dialTCP(numeric, port, nonblocking ? 1 : 0);
  if (fd < 0) throw addressCallError(fd, 'connect', numeric, { port });
  return fd;
}

/**
 * The pending error of a socket (SO_ERROR), e.g. how a nonblocking connect ended:
 * undefined when there is none, else a SystemError (returned, not thrown). Reading it
 * clears it.
 * @param fd - a socket descriptor.
 * @throws a SystemError (`ENOTSOCK`, `EBADF`) when `fd` is not a socket.
 * @example
 * ```ts
 * const err = socketError(fd); if (err) throw err;
 * ```
 * @category Sockets
 */
export function socketError(fd: number): Error | undefined {
  validateFd(fd);
  const err = binding.socketError(fd);
  if (err === -os.constants.errno.ENOTSOCK || err === -os.constants.errno.EBADF) throw systemError(err, 'getsockopt', { fd });
  return err < 0 ? systemError(err, 'connect', { fd }) : undefined;
}

// ---- Unix stream sockets ----

/**
 * Options for {@link listenUnix}.
 *
 * @example
 * ```ts
 * const lfd = listenUnix('/run/user/1000/app/ctl.sock', { mode: 0o600, backlog: 64 });
 * ```
 * @category Sockets
 */
export interface ListenUnixOptions {
  /** The kernel's queue of connections not yet accepted. Default 511. */
  backlog?: number | undefined;
  /**
   * The socket file's permission bits, 0..0o777, written in octal (`0o600`, not `600`):
   * connecting needs write permission on it, so `0o600` lets in only this user (and root).
   * The file is created with exactly this mode, whatever the umask, in one step: nothing
   * looks the path up again after bind(). (A default ACL on the directory can narrow it,
   * never widen it.) Not for an abstract name, which has no file. Default: what the
   * process umask leaves (0o777 & ~umask), as node:net's `listen(path)`. What it promises
   * when other users can write a directory on the path: see docs/socket.md.
   */
  mode?: number | undefined;
}

/**
 * Opens a Unix stream socket listening on `path`. The file stays after `close()`, as with
 * node:net: unlink it yourself (a leftover file makes the next listen fail with EADDRINUSE).
 *
 * With `mode`, the file has exactly that mode from the moment it exists: bind() runs in a
 * short-lived child process (vfork on Linux, fork elsewhere) whose own umask gives the file
 * that mode as the kernel creates it, so no chmod follows and no other thread's umask
 * changes. Permissions guard the file only: for an app's private socket, also put it in a
 * directory only its user can enter, and check {@link peerCredentials} on accept.
 *
 * On Linux, a `path` that starts with a null byte (`'\0name'`, node:net's notation) names
 * an abstract socket: no file, no permissions, gone when closed; {@link localAddress}
 * reports it the same way.
 *
 * @param path - the socket file to create (it must not exist yet), or on Linux `'\0name'` for an abstract name.
 * @param options - see {@link ListenUnixOptions}.
 * @throws TypeError for an empty path, one with a null byte other than an abstract name's
 * first, an abstract name off Linux or with a `mode`; RangeError for a `mode` outside
 * 0..0o777 (a decimal `600` says to write `0o600`); a SystemError (`EADDRINUSE`,
 * `ENAMETOOLONG` beyond ~100 bytes, `ENOENT`, `EACCES`; `EAGAIN`/`ENOMEM`/`EPERM` when the
 * process may not start the child that binds with a mode: out of processes or memory, or a
 * sandbox that forbids it; never a weaker fallback).
 * @example
 * ```ts
 * const lfd = listenUnix('/tmp/app.sock', { mode: 0o600 }); // this user only
 * poller.addRead({ fd: lfd, callback: onAccept });
 * ```
 * @category Sockets
 */
export function listenUnix(path: string, options: ListenUnixOptions = {}): number {
  validatePath(path);
  validateObject(options, 'options');
  const mode = modeOf(options.mode);
  if (mode >= 0 && path[0] === '\0') {
    throw invalidArgValue('An abstract Unix socket (a path starting with a null byte) has no file to give a mode: anyone in this network namespace can connect to it. Use a socket file in a private directory, or check peerCredentials() on accept.');
  }
  const fd = binding.listenUnix(path, backlogOf(options), mode);
  if (fd < 0) throw systemError(fd, 'listen', { address: path });
  return fd;
}

/**
 * Who is at the other end of a connected Unix socket, as {@link peerCredentials} tells.
 *
 * @example
 * ```ts
 * const { pid, uid, gid } = peerCredentials(c.fd); // e.g. 4242, 1000, 1000
 * ```
 * @category Sockets
 */
export interface PeerCredentials {
  /**
   * The peer's process id; `null` where the system does not tell it (FreeBSD before 13, other
   * BSDs with getpeereid only), or where the peer's process has no id in this process's pid
   * namespace (Linux: a peer in a parent or sibling container).
   */
  pid: number | null;
  /** The peer's user id (effective, at connect or listen time). */
  uid: number;
  /** The peer's group id (effective, at connect or listen time). */
  gid: number;
}

/**
 * The process, user and group at the other end of a connected Unix socket, as the kernel
 * recorded them when the connection was made (SO_PEERCRED on Linux and OpenBSD,
 * LOCAL_PEEREID on NetBSD, getpeereid plus LOCAL_PEERPID on macOS and LOCAL_PEERCRED on
 * FreeBSD). The kernel's word, which the peer cannot forge: check it on accept to let in
 * only who belongs. The pid names the process that connected, which may have exited or
 * passed the socket on since.
 *
 * @param fd - a connected Unix stream socket: one {@link accept} gave, one from {@link dialUnix}, or a {@link socketpair} end.
 * @throws a SystemError: `ENOTCONN` when not connected (a listener), `EAFNOSUPPORT` for a
 * socket that is not a Unix socket (TCP), `ENOTSOCK`, `EBADF`.
 * @example
 * ```ts
 * for (let c = accept(lfd); c !== null; c = accept(lfd)) {
 *   if (peerCredentials(c.fd).uid !== process.getuid!()) { close(c.fd); continue; } // not this user
 *   poller.addRead({ fd: c.fd, callback: onRequest });
 * }
 * ```
 * @category Sockets
 */
export function peerCredentials(fd: number): PeerCredentials {
  validateFd(fd);
  const r = binding.peerCredentials(fd);
  if (typeof r === 'number') throw systemError(r, 'getsockopt', { fd });
  return r;
}

/**
 * Connects a Unix stream socket to `path`: its fd, nonblocking and close-on-exec.
 *
 * @param path - the socket file a listener is bound to, or on Linux `'\0name'` for an abstract name (as {@link localAddress} reports it).
 * @throws TypeError for a bad path; a SystemError (`ENOENT`, `ECONNREFUSED` when nothing
 * listens, `EAGAIN` on Linux when the listener's backlog is full).
 * @example
 * ```ts
 * const fd = dialUnix('/tmp/app.sock');
 * ```
 * @category Sockets
 */
export function dialUnix(path: string): number {
  validatePath(path);
  const fd = binding.dialUnix(path);
  if (fd < 0) throw systemError(fd, 'connect', { address: path });
  return fd;
}

// ---- UDP ----

/**
 * Options for {@link bindUDP}.
 *
 * @example
 * ```ts
 * const fd = bindUDP('0.0.0.0', 5353, { reuseAddr: true, reusePort: true });
 * ```
 * @category Sockets
 */
export interface BindOptions {
  /** SO_REUSEADDR. Default false. */
  reuseAddr?: boolean | undefined;
  /** SO_REUSEPORT: several sockets share the port. Default false. */
  reusePort?: boolean | undefined;
  /** IPV6_V6ONLY for an IPv6 host. Default false. */
  ipv6Only?: boolean | undefined;
}

/**
 * Opens a UDP socket bound to `host:port` (port 0 picks a free port). Use {@link sendTo}
 * and {@link recvFrom} with it.
 *
 * @param host - a numeric IPv4 or IPv6 address, `'0.0.0.0'` or `'::'` for every interface, or `'localhost'`.
 * @param port - the UDP port, 0..65535; 0 lets the kernel pick one.
 * @param options - see {@link BindOptions}.
 * @throws as {@link listenTCP}.
 * @example
 * ```ts
 * const fd = bindUDP('127.0.0.1', 0);
 * poller.addRead({ fd, callback: onDatagram });
 * ```
 * @category Sockets
 */
export function bindUDP(host: string, port: number, options: BindOptions = {}): number {
  const numeric = numericHost(host);
  validateInteger(port, 'port', 0, 65535);
  const fd = binding.bindUDP(numeric, port, sockFlags(options, false));
  if (fd < 0) throw addressCallError(fd, 'bind', numeric, { port });
  return fd;
}

/**
 * Sends one datagram to `host:port`: the bytes sent, or -1 when the socket's buffer is full.
 * Send an IPv4 address from an IPv4 socket and an IPv6 one from an IPv6 socket.
 *
 * @param fd - a UDP socket from {@link bindUDP}.
 * @param buf - the datagram.
 * @param host - the destination's numeric address (or `'localhost'`), of the socket's family.
 * @param port - the destination port, 1..65535.
 * @throws TypeError/RangeError for a bad address or port; a SystemError (`EMSGSIZE` for a
 * datagram too large, `EAFNOSUPPORT`/`EINVAL` for the other family, `EDESTADDRREQ`).
 * @example
 * ```ts
 * sendTo(fd, Buffer.from('ping'), '127.0.0.1', port);
 * ```
 * @category Sockets
 */
export function sendTo(fd: number, buf: ArrayBufferView | ArrayBuffer, host: string, port: number): number {
  validateFd(fd);
  validateBuffer(buf, 'buf');
  const numeric = numericHost(host);
  validateInteger(port, 'port', 1, 65535);
  const n = binding.sendTo(fd, buf, numeric, port);
  if (n >= 0) return n;
  if (wouldBlock(n)) return -1;
  throw addressCallError(n, 'sendto', numeric, { fd, port });
}

/**
 * One datagram {@link recvFrom} received: its size and sender.
 *
 * @example
 * ```ts
 * const d = recvFrom(fd, buf);
 * if (d !== null) handle(buf.subarray(0, d.bytes), d.address);
 * ```
 * @category Sockets
 */
export interface Received {
  /** How many bytes of the datagram were written into the buffer. */
  bytes: number;
  /**
   * The sender's address, to answer with {@link sendTo} (UDP; a Unix sender is reported as
   * {@link localAddress} reports Unix names). On a socket that names no sender
   * (a connected TCP socket, or a Unix datagram from an unbound socket) it is `''` with port
   * 0, of the socket's own family: ask {@link remoteAddress} for a connected peer.
   */
  address: SocketAddress;
}

/**
 * Receives one datagram into `buf`: its size (a datagram longer than `buf` is truncated) and
 * sender, or `null` when none is waiting.
 *
 * @param fd - a UDP socket from {@link bindUDP}.
 * @param buf - where the datagram goes; a longer datagram is truncated to its byte length.
 * @throws a SystemError (`EBADF`, `ENOTSOCK`, `ECONNREFUSED` after an ICMP unreachable).
 * @example
 * ```ts
 * for (let d = recvFrom(fd, buf); d !== null; d = recvFrom(fd, buf)) {
 *   sendTo(fd, buf.subarray(0, d.bytes), d.address.address, d.address.port);
 * }
 * ```
 * @category Sockets
 */
export function recvFrom(fd: number, buf: ArrayBufferView | ArrayBuffer): Received | null {
  validateFd(fd);
  validateBuffer(buf, 'buf');
  const r = binding.recvFrom(fd, buf);
  if (typeof r !== 'number') return r as Received;
  if (wouldBlock(r)) return null;
  throw systemError(r, 'recvfrom', { fd });
}

// ---- I/O ----

// `offset`/`length` checked against `buf` as fs.readSync does: [offset, offset + length)
// must fit. Two functions rather than one returning a pair: read() and write() run per
// message, and a pair would be an allocation per call.
function rangeOffset(buf: ArrayBufferView | ArrayBuffer, offset: number | undefined): number {
  const o = offset ?? 0;
  validateInteger(o, 'offset', 0, buf.byteLength);
  return o;
}

function rangeLength(buf: ArrayBufferView | ArrayBuffer, offset: number, length: number | undefined): number {
  const room = buf.byteLength - offset;
  const l = length ?? room;
  validateInteger(l, 'length', 0, room);
  return l;
}

/**
 * Reads into `buf` from a nonblocking fd, without copying: the number of bytes read,
 * 0 at end of stream, or -1 when nothing is there yet (EAGAIN).
 * @param fd - a nonblocking descriptor.
 * @param buf - where the bytes go; at most its byte length is read.
 * @param offset - where in `buf` to start (default 0), as in `fs.readSync`.
 * @param length - at most how many bytes to read (default: the rest of `buf`).
 * @throws TypeError/RangeError for a bad `fd`, a `buf` that is not a Buffer, TypedArray,
 * DataView or ArrayBuffer, or an `offset`/`length` outside it; a SystemError (`EBADF`,
 * `ECONNRESET`, …) for other failures.
 * @example
 * ```ts
 * const n = read(fd, buf);
 * if (n > 0) handle(buf.subarray(0, n));
 * else if (n === 0) { poller.delete(fd); close(fd); } // the peer is done: delete first, then close
 * ```
 * @category File descriptors
 */
export function read(fd: number, buf: ArrayBufferView | ArrayBuffer, offset?: number, length?: number): number {
  validateFd(fd);
  validateBuffer(buf, 'buf');
  let n: number;
  if (offset === undefined && length === undefined) {
    n = binding.read(fd, buf);
  } else {
    const o = rangeOffset(buf, offset);
    n = binding.read(fd, buf, o, rangeLength(buf, o, length));
  }
  if (n >= 0) return n;
  if (wouldBlock(n)) return -1;
  throw systemError(n, 'read', { fd });
}

/**
 * Writes `buf` to a nonblocking fd: the number of bytes written (maybe fewer than asked)
 * or -1 when there is no room (EAGAIN). A peer that went away gives EPIPE, never SIGPIPE.
 * @param fd - a nonblocking descriptor.
 * @param buf - the bytes to write.
 * @param offset - where in `buf` the bytes start (default 0), as in `fs.writeSync`.
 * @param length - how many bytes to write (default: the rest of `buf`).
 * @throws TypeError/RangeError for a bad `fd`, `buf`, `offset` or `length` (as {@link read});
 * a SystemError (`EPIPE`, `ECONNRESET`, `EBADF`, …) for other failures.
 * @example
 * ```ts
 * const n = write(fd, Buffer.from('hello'));
 * const m = write(fd, scratch, 0, used); // part of a reused buffer, no subarray
 * ```
 * @category File descriptors
 */
export function write(fd: number, buf: ArrayBufferView | ArrayBuffer, offset?: number, length?: number): number {
  validateFd(fd);
  validateBuffer(buf, 'buf');
  let n: number;
  if (offset === undefined && length === undefined) {
    n = binding.write(fd, buf);
  } else {
    const o = rangeOffset(buf, offset);
    n = binding.write(fd, buf, o, rangeLength(buf, o, length));
  }
  if (n >= 0) return n;
  if (wouldBlock(n)) return -1;
  throw systemError(n, 'write', { fd });
}

/**
 * The most buffers one {@link readv} or {@link writev} call uses (the platform's IOV_MAX, at most 1024).
 *
 * @example
 * ```ts
 * const n = writev(fd, chunks.slice(0, IOV_MAX)); // the rest in the next call
 * ```
 * @category File descriptors
 */
export const IOV_MAX: number = constants.IOV_MAX;

/**
 * The buffers readv/writev use (the first IOV_MAX), checked and copied into a fresh
 * array: each element of `bufs` is read once, here, where an index getter or a Proxy
 * may run harmlessly, and the native side gets exactly what was checked. (The native
 * side reads every element before it takes any pointer, so even a hostile array
 * handed to the binding directly cannot free a buffer under it.)
 */
function buffersOf(bufs: unknown): (ArrayBufferView | ArrayBuffer)[] {
  if (!Array.isArray(bufs)) {
    const err = new TypeError(`The "bufs" argument must be an array of Buffers, TypedArrays, DataViews or ArrayBuffers. Received ${typeof bufs}`) as TypeError & { code: string };
    err.code = 'ERR_INVALID_ARG_TYPE';
    throw err;
  }
  const list: (ArrayBufferView | ArrayBuffer)[] = [];
  for (let i = 0, n = bufs.length; i < n; i++) {
    const buf: unknown = bufs[i];
    validateBuffer(buf, `bufs[${i}]`);
    if (i < IOV_MAX) list.push(buf);
  }
  return list;
}

/**
 * Scatter read: fills the buffers in order with one readv(2), without copying. Returns the
 * total bytes read, 0 at end of stream, or -1 when nothing is there yet. Only the first
 * `IOV_MAX` (1024) buffers are used.
 * @param fd - a nonblocking descriptor.
 * @param bufs - the buffers to fill, in order.
 * @throws TypeError when `bufs` is not an array of buffers; a SystemError as {@link read}.
 * @example
 * ```ts
 * const n = readv(fd, [header, body]);
 * ```
 * @category File descriptors
 */
export function readv(fd: number, bufs: readonly (ArrayBufferView | ArrayBuffer)[]): number {
  validateFd(fd);
  const n = binding.readv(fd, buffersOf(bufs));
  if (n >= 0) return n;
  if (wouldBlock(n)) return -1;
  throw systemError(n, 'readv', { fd });
}

/**
 * Gather write: sends the buffers in order with one writev(2) (sendmsg on sockets, so no
 * SIGPIPE). Returns the total bytes written (maybe fewer than all) or -1 when there is no
 * room. Only the first `IOV_MAX` (1024) buffers are used.
 * @param fd - a nonblocking descriptor.
 * @param bufs - the buffers to send, in order.
 * @throws TypeError when `bufs` is not an array of buffers; a SystemError as {@link write}.
 * @example
 * ```ts
 * const n = writev(fd, [head, body]);
 * ```
 * @category File descriptors
 */
export function writev(fd: number, bufs: readonly (ArrayBufferView | ArrayBuffer)[]): number {
  validateFd(fd);
  const n = binding.writev(fd, buffersOf(bufs));
  if (n >= 0) return n;
  if (wouldBlock(n)) return -1;
  throw systemError(n, 'writev', { fd });
}

/**
 * Sends TCP urgent data (MSG_OOB): the peer's poller reports it as an exceptional
 * condition (EPOLLPRI, part of `ReadEvents`), and the peer reads it with
 * {@link recvUrgent}. Only the last byte sent is urgent, as TCP defines it.
 * @param fd - a connected TCP socket.
 * @param buf - the bytes to send; the last one is the urgent byte.
 * @throws a SystemError (`EOPNOTSUPP` on a socket that is not TCP, `EPIPE`).
 * @example
 * ```ts
 * sendUrgent(fd, Buffer.from('!'));
 * ```
 * @category Sockets
 */
export function sendUrgent(fd: number, buf: ArrayBufferView | ArrayBuffer): number {
  validateFd(fd);
  validateBuffer(buf, 'buf');
  const n = binding.sendUrgent(fd, buf);
  if (n >= 0) return n;
  if (wouldBlock(n)) return -1;
  throw systemError(n, 'send', { fd });
}

/**
 * Reads the pending urgent byte of a TCP socket (recv with MSG_OOB): 1, or -1 when it has
 * not arrived yet.
 * @param fd - a connected TCP socket whose poller reported `EPOLLPRI`.
 * @param buf - where the urgent byte goes (at least 1 byte long).
 * @throws a SystemError (`EINVAL` when no urgent data is pending or it was read already).
 * @example
 * ```ts
 * if (recvUrgent(fd, one) === 1) onUrgent(one[0]);
 * ```
 * @category Sockets
 */
export function recvUrgent(fd: number, buf: ArrayBufferView | ArrayBuffer): number {
  validateFd(fd);
  validateBuffer(buf, 'buf');
  const n = binding.recvUrgent(fd, buf);
  if (n >= 0) return n;
  if (wouldBlock(n)) return -1;
  throw systemError(n, 'recv', { fd });
}

const shutdownHow = { read: constants.SHUT_RD, write: constants.SHUT_WR, both: constants.SHUT_RDWR } as const;

/**
 * Shuts down one or both directions of a connected socket without closing the fd: after
 * `'write'` the peer reads end of stream (a half-close, as `socket.end()` sends FIN).
 * @param fd - a connected socket.
 * @param how - `'read'`, `'write'` or `'both'` (the default).
 * @throws TypeError for another `how`; a SystemError (`ENOTCONN`, `ENOTSOCK`).
 * @example
 * ```ts
 * shutdown(fd, 'write'); // no more requests; keep reading the replies
 * ```
 * @category File descriptors
 */
export function shutdown(fd: number, how: 'read' | 'write' | 'both' = 'both'): void {
  validateFd(fd);
  validateOneOf(how, 'how', ['read', 'write', 'both'] as const);
  const err = binding.shutdown(fd, shutdownHow[how]);
  if (err < 0) throw systemError(err, 'shutdown', { fd });
}

/**
 * Closes an fd. Delete it from its pollers first (epoll forgets a closed fd by itself,
 * but only when no duplicate of it remains open).
 * @param fd - the descriptor to close.
 * @throws TypeError/RangeError for a bad `fd`; a SystemError (`EBADF`) when `fd` is not open,
 * `EBUSY` when it is an open poller's own descriptor (`poller.fd`, or its waker), whichever thread
 * opened that poller: close the poller instead.
 * @example
 * ```ts
 * poller.delete(fd);
 * close(fd);
 * ```
 * @category File descriptors
 */
export function close(fd: number): void {
  validateFd(fd);
  const err = binding.close(fd);
  if (err < 0) throw systemError(err, 'close', { fd });
}

/**
 * Duplicates `fd` (F_DUPFD_CLOEXEC): a new descriptor for the same socket, close-on-exec.
 * Both share the socket and its nonblocking flag; the socket closes when the last one does.
 * @param fd - the descriptor to duplicate.
 * @throws a SystemError (`EBADF`, `EMFILE`).
 * @example
 * ```ts
 * const mine = dup(fdOf(server));
 * ```
 * @category File descriptors
 */
export function dup(fd: number): number {
  validateFd(fd);
  const copy = binding.dup(fd);
  if (copy < 0) throw systemError(copy, 'dup', { fd });
  return copy;
}

// ---- options ----

/**
 * The integer options {@link getSocketOption} reads.
 *
 * @example
 * ```ts
 * getSocketOption(fd, 'recvBuffer'); // bytes, as the kernel reports them
 * ```
 * @category Socket options
 * @useDeclaredType
 */
export type SocketOptionName = keyof typeof constants.options;

const flagOptions: ReadonlySet<string> = new Set(['noDelay', 'keepAlive', 'reuseAddr', 'reusePort', 'ipv6Only']);

function setOption(fd: number, opt: number, value: number): void {
  const err = binding.setSockOpt(fd, opt, value);
  if (err < 0) throw systemError(err, 'setsockopt', { fd });
}

/**
 * Sets TCP_NODELAY: with `on` (the default) small writes leave at once instead of waiting
 * to be coalesced (Nagle's algorithm).
 * @param fd - a TCP socket.
 * @param on - `true` (the default) to send small writes at once, `false` to let the kernel coalesce them.
 * @throws a SystemError (`EOPNOTSUPP`/`ENOPROTOOPT` on a socket that is not TCP, `ENOTSOCK`).
 * @example
 * ```ts
 * setNoDelay(c.fd);
 * ```
 * @category Socket options
 */
export function setNoDelay(fd: number, on = true): void {
  validateFd(fd);
  validateBoolean(on, 'on');
  setOption(fd, constants.options.noDelay, on ? 1 : 0);
}

/**
 * Sets SO_KEEPALIVE. With `idleSeconds`, also as gnet's `SetKeepAlivePeriod`: the first
 * probe after `idleSeconds` idle, then one every `idleSeconds / 5` (at least 1 s), 5 probes.
 * @param fd - a TCP socket.
 * @param on - whether to send keep-alive probes.
 * @param idleSeconds - idle time before the first probe, 1..2^31-1; omit it to keep the system defaults.
 * @throws RangeError for `idleSeconds` outside 1..2^31-1; a SystemError as {@link setNoDelay}.
 * @example
 * ```ts
 * setKeepAlive(c.fd, true, 60);
 * ```
 * @category Socket options
 */
export function setKeepAlive(fd: number, on: boolean, idleSeconds?: number): void {
  validateFd(fd);
  validateBoolean(on, 'on');
  if (idleSeconds !== undefined) validateInteger(idleSeconds, 'idleSeconds', 1, INT_MAX);
  const err = binding.setKeepAlive(fd, on ? 1 : 0, idleSeconds ?? 0);
  if (err < 0) throw systemError(err, 'setsockopt', { fd });
}

/**
 * Sets SO_RCVBUF, the kernel's receive buffer, in bytes (Linux doubles it for bookkeeping
 * and clamps it to net.core.rmem_max).
 * @param fd - a socket descriptor.
 * @param size - the requested size in bytes, 1..2^31-1.
 * @throws RangeError for a size outside 1..2^31-1; a SystemError (`ENOTSOCK`).
 * @example
 * ```ts
 * setRecvBuffer(fd, 1 << 20);
 * ```
 * @category Socket options
 */
export function setRecvBuffer(fd: number, size: number): void {
  validateFd(fd);
  validateInteger(size, 'size', 1, INT_MAX);
  setOption(fd, constants.options.recvBuffer, size);
}

/**
 * Sets SO_SNDBUF, the kernel's send buffer, in bytes (doubled and clamped as SO_RCVBUF).
 * @param fd - a socket descriptor.
 * @param size - the requested size in bytes, 1..2^31-1.
 * @throws as {@link setRecvBuffer}.
 * @example
 * ```ts
 * setSendBuffer(fd, 1 << 20);
 * ```
 * @category Socket options
 */
export function setSendBuffer(fd: number, size: number): void {
  validateFd(fd);
  validateInteger(size, 'size', 1, INT_MAX);
  setOption(fd, constants.options.sendBuffer, size);
}

/**
 * Reads an integer socket option: a size in bytes, a count, seconds, or for the flags
 * (`noDelay`, `keepAlive`, `reuseAddr`, `reusePort`, `ipv6Only`) 1 or 0.
 * @param fd - a socket descriptor.
 * @param name - which option; see {@link SocketOptionName}.
 * @throws TypeError for an unknown name; a SystemError (`ENOPROTOOPT` where the socket
 * has no such option, `ENOTSOCK`).
 * @example
 * ```ts
 * getSocketOption(fd, 'noDelay'); // 1
 * ```
 * @category Socket options
 */
export function getSocketOption(fd: number, name: SocketOptionName): number {
  validateFd(fd);
  validateOneOf(name, 'name', Object.keys(constants.options) as SocketOptionName[]);
  const value = binding.getSockOpt(fd, constants.options[name]);
  if (value < 0) throw systemError(value, 'getsockopt', { fd });
  return flagOptions.has(name) ? (value !== 0 ? 1 : 0) : value;
}

// ---- names ----

/**
 * The address a socket is bound to (getsockname), in node:net's `{ address, family, port }`
 * shape; for a listener on port 0, the port the kernel chose.
 * @param fd - a bound socket.
 * @throws a SystemError (`ENOTSOCK`, `EBADF`).
 * @example
 * ```ts
 * const { port } = localAddress(listenTCP('127.0.0.1', 0));
 * ```
 * @category Sockets
 */
export function localAddress(fd: number): SocketAddress {
  validateFd(fd);
  const r = binding.localAddress(fd);
  if (typeof r === 'number') throw systemError(r, 'getsockname', { fd });
  return r;
}

/**
 * The address of a connected socket's peer (getpeername).
 * @param fd - a connected socket.
 * @throws a SystemError (`ENOTCONN` when not connected, `ENOTSOCK`, `EBADF`).
 * @example
 * ```ts
 * console.log(remoteAddress(c.fd).address);
 * ```
 * @category Sockets
 */
export function remoteAddress(fd: number): SocketAddress {
  validateFd(fd);
  const r = binding.remoteAddress(fd);
  if (typeof r === 'number') throw systemError(r, 'getpeername', { fd });
  return r;
}

// ---- Node's own sockets ----

/**
 * Something node:net made: a net.Socket or a net.Server.
 *
 * @example
 * ```ts
 * const server: NodeSocketLike = net.createServer().listen(0);
 * ```
 * @category Node sockets
 */
export type NodeSocketLike = net.Socket | net.Server;

/**
 * The fd libuv holds for a connected net.Socket or a listening net.Server, read from its
 * internal handle. The fd still belongs to libuv: do not close it or register it with a
 * poller (libuv's own epoll watches it). Use {@link takeFd} to make it yours.
 *
 * Caveats: it reads `_handle.fd`, which node:net does not document (stable since Node 0.x,
 * but private); there is none on Windows, for TLS sockets only the ciphertext flows
 * through it, and a socket still connecting or already destroyed has none.
 *
 * @param socket - a connected `net.Socket` or a listening `net.Server` (not TLS, not destroyed).
 * @throws TypeError (`ERR_INVALID_ARG_VALUE`) when the object has no open fd.
 * @example
 * ```ts
 * const fd = fdOf(server); // for getSocketOption(fd, …), localAddress(fd), …
 * ```
 * @category Node sockets
 */
export function fdOf(socket: NodeSocketLike): number {
  validateObject(socket, 'socket');
  const handle = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    const err = new TypeError('The argument \'socket\' has no open file descriptor: pass a connected net.Socket or a listening net.Server (not TLS, not destroyed)') as TypeError & { code: string };
    err.code = 'ERR_INVALID_ARG_VALUE';
    throw err;
  }
  return fd;
}

/**
 * Takes a net.Socket or net.Server away from Node: duplicates its fd (yours: nonblocking,
 * close-on-exec, register it with a poller and close it yourself) and then destroys the
 * socket or closes the server, so that libuv stops watching it. The connection or the
 * listener itself stays open through the duplicate.
 *
 * A server listening on a Unix socket path keeps its path: closing it makes libuv unlink
 * the socket file, so this links a spare name (`<path>.netpoll-<random>`, in the same
 * directory) to the file first and renames it back right after the close. A client
 * connecting in the microseconds between the two gets ENOENT. When the spare name
 * cannot be made (a directory this process may not write), it throws and leaves the
 * server as it was.
 *
 * Caveats: call it before Node has read anything, i.e. in the 'connection' or 'connect'
 * listener, or after `pause()`: bytes Node already read stay in the stream and are lost,
 * and so are writes still queued in it. A server's connections already accepted stay
 * Node's. All of {@link fdOf}'s caveats apply.
 *
 * @param socket - a connected `net.Socket` or a listening `net.Server`, which this destroys or closes.
 * @throws as {@link fdOf}; a SystemError from dup (`EMFILE`), or, for a Unix path server,
 * from making the spare name (`EACCES`, `EPERM`), with the server left open.
 * @example
 * ```ts
 * const server = net.createServer((c) => {
 *   const fd = takeFd(c);
 *   poller.addRead({ fd, callback: onData });
 * });
 * ```
 * @category Node sockets
 */
export function takeFd(socket: NodeSocketLike): number {
  const fd = dup(fdOf(socket));
  if (!(socket instanceof net.Server)) {
    socket.destroy();
    return fd;
  }
  const where = socket.address();
  // A TCP server, or a Unix one with no file (Linux's abstract names start with '\0').
  if (typeof where !== 'string' || where === '' || where.startsWith('\0')) {
    socket.close();
    return fd;
  }
  closeKeepingPath(socket, where, fd);
  return fd;
}

/**
 * Closes a net.Server listening on the Unix socket file `where` without losing the file:
 * libuv unlinks it in uv_close (synchronously, inside server.close()), so a second name
 * made beforehand is renamed back over it at once. `fd` (the taken duplicate) is closed
 * when this throws.
 */
function closeKeepingPath(server: net.Server, where: string, fd: number): void {
  const spare = `${where}.netpoll-${randomBytes(6).toString('hex')}`;
  try {
    fs.linkSync(where, spare);
  } catch (e) {
    close(fd);
    const cause = e as NodeJS.ErrnoException;
    const err = new Error(
      `takeFd cannot keep the Unix socket path ${where} (closing the server makes Node unlink it): linking a spare name failed: ${cause.message}. ` +
        'Listen with socket.listenUnix() instead, or on a path in a directory this process can write.',
      { cause },
    ) as NodeJS.ErrnoException;
    err.code = cause.code;
    throw err;
  }
  server.close();
  try {
    fs.renameSync(spare, where);
  } catch (e) {
    close(fd); // the path is gone, and the listener with it
    throw e;
  } finally {
    // rename() does nothing when both names are already the same file (libuv unlinked
    // nothing, as in a cluster worker, whose handle belongs to the primary).
    fs.rmSync(spare, { force: true });
  }
}
