// Low-level fd helpers: the descriptors a poller needs for tests and examples
// (pipes, socketpairs, a dialed TCP socket) and plain nonblocking reads and writes.
import * as net from 'node:net';
import * as os from 'node:os';
import { binding } from './binding.js';
import { systemError, validateBuffer, validateFd, validateInteger, validateString } from './errors.js';

function fdPair(result: [number, number] | number, syscall: string): [number, number] {
  if (typeof result === 'number') throw systemError(result, syscall);
  return result;
}

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

/**
 * Options for {@link dialTCP}.
 *
 * @example
 * ```ts
 * const fd = dialTCP('::1', port, { nonblocking: true });
 * poller.addWrite({ fd, callback: () => { const err = socketError(fd); if (err) throw err; } });
 * ```
 * @category File descriptors
 */
export interface DialOptions {
  /**
   * Return at once, with the connect maybe still in progress: a write event tells that
   * it finished and {@link socketError} tells how. Default false: connect before returning.
   */
  nonblocking?: boolean | undefined;
}

/** The numeric address for `host`: 'localhost' means the IPv4 loopback. */
export function numericHost(host: string): string {
  if (host === 'localhost') return '127.0.0.1';
  if (net.isIP(host) === 0) {
    const err = new TypeError(`"${host}" is not a numeric IPv4 or IPv6 address (resolve names with dns.lookup first)`) as TypeError & { code: string };
    err.code = 'ERR_INVALID_IP_ADDRESS';
    throw err;
  }
  return host;
}

/**
 * Connects a TCP socket to `host:port` (a numeric IPv4/IPv6 address or 'localhost') and
 * returns its fd, nonblocking and close-on-exec: the analog of Go's `net.DialTCP` +
 * `c.File()`. The fd is yours: register it with a poller, and `close()` it.
 *
 * @param host - a numeric IPv4 or IPv6 address, or `'localhost'` (127.0.0.1); resolve names with `dns.lookup` first.
 * @param port - the TCP port, 1..65535.
 * @param options - see {@link DialOptions}.
 * @throws TypeError for a host that is not a numeric address; RangeError for a port outside
 * 1..65535; a SystemError (`ECONNREFUSED`, `ENETUNREACH`, …) when the connect fails.
 * @example
 * ```ts
 * const fd = dialTCP('127.0.0.1', 8080);
 * poller.addReadWrite({ fd, callback });
 * ```
 * @category File descriptors
 */
export function dialTCP(host: string, port: number, options: DialOptions = {}): number {
  validateString(host, 'host');
  validateInteger(port, 'port', 1, 65535);
  const address = numericHost(host);
  const fd = binding.dialTCP(address, port, options.nonblocking ? 1 : 0);
  if (fd < 0) throw systemError(fd, 'connect', { address, port });
  return fd;
}

/**
 * The pending error of a socket (SO_ERROR), e.g. how a nonblocking connect ended:
 * undefined when there is none, else a SystemError (returned, not thrown; its `syscall`
 * is `'connect'`). A descriptor that is closed or not a socket is reported the same way
 * (`EBADF`, `ENOTSOCK`).
 * @param fd - a socket descriptor.
 * @throws TypeError/RangeError when `fd` is not an integer in [0, 2^31 - 1].
 * @example
 * ```ts
 * const err = socketError(fd); if (err) throw err;
 * ```
 * @category File descriptors
 */
export function socketError(fd: number): Error | undefined {
  validateFd(fd);
  const err = binding.socketError(fd);
  return err < 0 ? systemError(err, 'connect', { fd }) : undefined;
}

const EAGAIN = -os.constants.errno.EAGAIN;
const EWOULDBLOCK = -os.constants.errno.EWOULDBLOCK;

/**
 * Reads into `buf` from a nonblocking fd, without copying: the number of bytes read,
 * 0 at end of stream, or -1 when nothing is there yet (EAGAIN).
 * @param fd - a nonblocking descriptor.
 * @param buf - where the bytes go; at most its byte length is read.
 * @throws TypeError/RangeError for a bad `fd` or a `buf` that is not a Buffer, TypedArray,
 * DataView or ArrayBuffer; a SystemError (`EBADF`, `ECONNRESET`, …) for other failures.
 * @example
 * ```ts
 * const n = read(fd, buf);
 * if (n > 0) handle(buf.subarray(0, n)); else if (n === 0) close(fd);
 * ```
 * @category File descriptors
 */
export function read(fd: number, buf: ArrayBufferView | ArrayBuffer): number {
  validateFd(fd);
  validateBuffer(buf, 'buf');
  const n = binding.read(fd, buf);
  if (n >= 0) return n;
  if (n === EAGAIN || n === EWOULDBLOCK) return -1;
  throw systemError(n, 'read', { fd });
}

/**
 * Writes `buf` to a nonblocking fd: the number of bytes written (maybe fewer than asked)
 * or -1 when there is no room (EAGAIN). A peer that went away gives EPIPE, never SIGPIPE.
 * @param fd - a nonblocking descriptor.
 * @param buf - the bytes to write.
 * @throws TypeError/RangeError for a bad `fd` or `buf` (as {@link read});
 * a SystemError (`EPIPE`, `ECONNRESET`, `EBADF`, …) for other failures.
 * @example
 * ```ts
 * const n = write(fd, Buffer.from('hello'));
 * ```
 * @category File descriptors
 */
export function write(fd: number, buf: ArrayBufferView | ArrayBuffer): number {
  validateFd(fd);
  validateBuffer(buf, 'buf');
  const n = binding.write(fd, buf);
  if (n >= 0) return n;
  if (n === EAGAIN || n === EWOULDBLOCK) return -1;
  throw systemError(n, 'write', { fd });
}

/**
 * Closes an fd. Delete it from its pollers first (epoll forgets a closed fd by itself,
 * but only when no duplicate of it remains open).
 * @param fd - the descriptor to close.
 * @throws TypeError/RangeError for a bad `fd`; a SystemError (`EBADF`) when `fd` is not open.
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
