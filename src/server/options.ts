// Options, their defaults and their checks; and the addresses gnet writes ("tcp://host:port").
// Plain data only, so that a multicore engine can hand them to its loop threads.
import * as os from 'node:os';
import type { SocketAddress } from '../index.js';
import type { LoadBalancing } from './balancer.js';

/**
 * Options for {@link serve} and {@link createClient}. Sizes are bytes, times milliseconds.
 *
 * @example
 * ```ts
 * await serve(handler, 'tcp://127.0.0.1:6379', { idleTimeout: 30_000, highWaterMark: 256 * 1024 });
 * ```
 * @category Server
 */
export interface ServerOptions {
  /** The loop's read buffer: at most this many bytes per read (gnet's `ReadBufferCap`). Default 64 KiB. */
  readBufferCap?: number | undefined;
  /** The size of the chunks small writes are gathered into before one `writev` (gnet's `WriteBufferCap`). Default 16 KiB. */
  writeBufferCap?: number | undefined;
  /**
   * Outbound bytes above which `write()` returns false and the connection stops reading until
   * they drain to `lowWaterMark`: what bounds the memory a peer that does not read can cost.
   * Default 64 KiB.
   */
  highWaterMark?: number | undefined;
  /** Outbound bytes at or below which a connection held back by `highWaterMark` reads again and gets `onDrain`. Default a quarter of `highWaterMark`. */
  lowWaterMark?: number | undefined;
  /** Edge-triggered registration (gnet's `EdgeTriggeredIO`). Default false (level-triggered). */
  edgeTriggered?: boolean | undefined;
  /** With `edgeTriggered`, at most this many bytes read or written per connection per turn before the rest is queued as a task (gnet's `EdgeTriggeredIOChunk`). Default 1 MiB. */
  edgeTriggeredIOChunk?: number | undefined;
  /** TCP_NODELAY on each TCP connection. Default true, as gnet. */
  tcpNoDelay?: boolean | undefined;
  /** SO_KEEPALIVE with this idle period in milliseconds (rounded up to seconds); 0 leaves keep-alive off. Default 0. */
  tcpKeepAlive?: number | undefined;
  /** SO_RCVBUF for each connection; 0 keeps the system's. Default 0. */
  socketRecvBuffer?: number | undefined;
  /** SO_SNDBUF for each connection; 0 keeps the system's. Default 0. */
  socketSendBuffer?: number | undefined;
  /** SO_REUSEADDR on the listener. Default true. */
  reuseAddr?: boolean | undefined;
  /**
   * SO_REUSEPORT on the listener. With `multicore` on Linux, gnet's other design: each loop
   * thread accepts on a SO_REUSEPORT listener of its own on the same address, the kernel
   * spreading the connections (`lb` does not apply). On macOS and the BSDs (no balancing
   * there) and for `unix://`, a multicore engine keeps its acceptor. Default false.
   */
  reusePort?: boolean | undefined;
  /** The listener's backlog. Default 511. */
  backlog?: number | undefined;
  /** Close a connection with no traffic in either direction for this long, with an `ETIMEDOUT` error; 0 for never. Default 0. */
  idleTimeout?: number | undefined;
  /** How long `stop()` waits for connections to write what is queued before closing them anyway. Default 5000. */
  stopTimeout?: number | undefined;
  /**
   * Loops in worker threads (gnet's `WithMulticore`): the handler is then a module (its URL),
   * which each loop thread imports. Default false: one loop on the calling thread.
   */
  multicore?: boolean | undefined;
  /** With `multicore`, how many loops (threads). Default `os.availableParallelism()`. */
  numEventLoop?: number | undefined;
  /** With `multicore`, which loop gets each connection. Default `'round-robin'`. */
  lb?: LoadBalancing | undefined;
}

/** Every option with its value. */
export interface ResolvedOptions {
  readBufferCap: number;
  writeBufferCap: number;
  highWaterMark: number;
  lowWaterMark: number;
  edgeTriggered: boolean;
  edgeTriggeredIOChunk: number;
  tcpNoDelay: boolean;
  tcpKeepAlive: number;
  socketRecvBuffer: number;
  socketSendBuffer: number;
  reuseAddr: boolean;
  reusePort: boolean;
  backlog: number;
  idleTimeout: number;
  stopTimeout: number;
  multicore: boolean;
  numEventLoop: number;
  lb: LoadBalancing;
}

const INT_MAX = 0x7fffffff;
const KNOWN = new Set([
  'readBufferCap', 'writeBufferCap', 'highWaterMark', 'lowWaterMark', 'edgeTriggered', 'edgeTriggeredIOChunk',
  'tcpNoDelay', 'tcpKeepAlive', 'socketRecvBuffer', 'socketSendBuffer', 'reuseAddr', 'reusePort', 'backlog',
  'idleTimeout', 'stopTimeout', 'multicore', 'numEventLoop', 'lb',
]);

function coded<E extends Error>(err: E, code: string): E & { code: string } {
  return Object.assign(err, { code });
}

/** A TypeError with Node's code for a bad argument type. */
export function invalidType(name: string, expected: string, value: unknown): TypeError {
  const got = value === null ? 'null' : typeof value;
  return coded(new TypeError(`The "${name}" argument must be ${expected}. Received ${got}`), 'ERR_INVALID_ARG_TYPE');
}

/** A TypeError for a value of the right type that means nothing. */
export function invalidValue(name: string, why: string): TypeError {
  return coded(new TypeError(`The "${name}" argument ${why}`), 'ERR_INVALID_ARG_VALUE');
}

/** Checks an integer in [min, max]: TypeError for a non-number, RangeError outside. */
export function checkInteger(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number') throw invalidType(name, 'of type number', value);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw coded(new RangeError(`The value of "${name}" is out of range. It must be an integer >= ${min} and <= ${max}. Received ${value}`), 'ERR_OUT_OF_RANGE');
  }
  return value;
}

function int(options: Record<string, unknown>, name: string, fallback: number, min: number, max = INT_MAX): number {
  const v = options[name];
  return v === undefined ? fallback : checkInteger(v, `options.${name}`, min, max);
}

function bool(options: Record<string, unknown>, name: string, fallback: boolean): boolean {
  const v = options[name];
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw invalidType(`options.${name}`, 'of type boolean', v);
  return v;
}

/**
 * Reads each option once (a getter runs once), checks it, and fills in the defaults.
 * @throws TypeError for a wrong type or an unknown option; RangeError outside the allowed range.
 */
export function resolveOptions(options: unknown): ResolvedOptions {
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw invalidType('options', 'an object', options);
  const o: Record<string, unknown> = {};
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw invalidValue('options', `has an unknown option "${key}"`);
    o[key] = (options as Record<string, unknown>)[key];
  }
  const multicore = bool(o, 'multicore', false);
  const numEventLoop = int(o, 'numEventLoop', Math.max(1, os.availableParallelism?.() ?? os.cpus().length), 1, 256);
  if (o.lb !== undefined && o.lb !== 'round-robin' && o.lb !== 'least-connections' && o.lb !== 'source-addr-hash') {
    throw invalidValue('options.lb', "must be 'round-robin', 'least-connections' or 'source-addr-hash'");
  }
  const highWaterMark = int(o, 'highWaterMark', 64 * 1024, 1);
  const lowWaterMark = int(o, 'lowWaterMark', Math.floor(highWaterMark / 4), 0, highWaterMark);
  return {
    readBufferCap: int(o, 'readBufferCap', 64 * 1024, 1, 1 << 30),
    writeBufferCap: int(o, 'writeBufferCap', 16 * 1024, 1, 1 << 30),
    highWaterMark,
    lowWaterMark,
    edgeTriggered: bool(o, 'edgeTriggered', false),
    edgeTriggeredIOChunk: int(o, 'edgeTriggeredIOChunk', 1 << 20, 1),
    tcpNoDelay: bool(o, 'tcpNoDelay', true),
    tcpKeepAlive: int(o, 'tcpKeepAlive', 0, 0),
    socketRecvBuffer: int(o, 'socketRecvBuffer', 0, 0),
    socketSendBuffer: int(o, 'socketSendBuffer', 0, 0),
    reuseAddr: bool(o, 'reuseAddr', true),
    reusePort: bool(o, 'reusePort', false),
    backlog: int(o, 'backlog', 511, 0),
    idleTimeout: int(o, 'idleTimeout', 0, 0),
    stopTimeout: int(o, 'stopTimeout', 5000, 0),
    multicore,
    numEventLoop,
    lb: (o.lb as LoadBalancing | undefined) ?? 'round-robin',
  };
}

/** Where to listen or dial, parsed from gnet's `network://address` form. */
export type ParsedAddress =
  | { network: 'tcp' | 'udp'; family: 4 | 6 | 0; host: string; port: number }
  | { network: 'unix'; path: string };

/**
 * Parses `tcp://host:port`, `tcp4://…`, `tcp6://…`, `udp://host:port`, `udp4://…`, `udp6://…`
 * (an IPv6 host in brackets; an empty host means every interface) and `unix:///path`.
 * @throws TypeError for a string that is none of these; RangeError for a port outside 0..65535.
 */
export function parseAddress(addr: unknown, name = 'addr'): ParsedAddress {
  if (typeof addr !== 'string') throw invalidType(name, 'of type string', addr);
  const m = /^([a-z0-9]+):\/\/(.*)$/.exec(addr);
  if (m === null) throw invalidValue(name, `must look like 'tcp://host:port' or 'unix:///path'. Received ${JSON.stringify(addr)}`);
  const [, scheme, rest] = m;
  if (scheme === 'unix') {
    if (rest.length === 0 || rest.includes('\0')) throw invalidValue(name, `must name a socket path, as 'unix:///tmp/app.sock'. Received ${JSON.stringify(addr)}`);
    return { network: 'unix', path: rest };
  }
  const network = /^(tcp|udp)[46]?$/.exec(scheme)?.[1] as 'tcp' | 'udp' | undefined;
  if (network === undefined) {
    throw coded(new TypeError(`The "${name}" argument has an unsupported network "${scheme}": use tcp://, tcp4://, tcp6://, udp://, udp4://, udp6:// or unix://`), 'ERR_INVALID_ARG_VALUE');
  }
  const hp = /^(?:\[([^\]]*)\]|([^:[\]/]*)):(\d{1,5})$/.exec(rest);
  if (hp === null) throw invalidValue(name, `must be 'host:port' after '${scheme}://' (brackets around an IPv6 host). Received ${JSON.stringify(addr)}`);
  const host = hp[1] ?? hp[2] ?? '';
  const port = checkInteger(Number(hp[3]), `${name} port`, 0, 65535);
  return { network, family: scheme.endsWith('4') ? 4 : scheme.endsWith('6') ? 6 : 0, host, port };
}

/** What the acceptor gives a loop thread. */
export interface LoopWorkerData {
  netpollServerLoop: true;
  handlerUrl: string;
  options: ResolvedOptions;
  index: number;
  /** Open connections per loop, for countConnections() and least-connections. */
  counts: Int32Array;
  /**
   * Which loop holds each fd (index + 1; 0 for none), for fds below its length: when a loop
   * thread dies, the acceptor closes what it held (descriptors belong to the process, not the thread).
   */
  owners: Uint16Array;
  /**
   * With `reusePort` (where the kernel balances it): each loop's own listener by index, which
   * this loop accepts on; -1 once closed (whoever takes it out with Atomics.exchange closes it).
   */
  listeners: Int32Array | undefined;
  address: SocketAddress | string;
}
