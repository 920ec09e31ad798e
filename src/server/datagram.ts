// udp:// (gnet's UDP engine): each datagram is one onTraffic call on a Conn of its own, whose
// remoteAddress is the sender and whose write() answers that sender.
import { isSystemError, socket, type SocketAddress } from '../index.js';
import { publish } from './diagnostics.js';
import { codedError } from './eventloop.js';
import { Action } from './handler.js';
import type { Conn } from './conn.js';
import { checkInteger, invalidType } from './options.js';

const EMPTY = Buffer.alloc(0);

/** What a datagram Conn cannot do: there is no connection to pause, wake or time out. */
function unsupported(what: string): Error {
  return codedError(`${what} is not supported on a udp:// Conn (each datagram is a Conn of its own)`, 'ERR_UNSUPPORTED_OPERATION');
}

/** One received datagram, as the handler's onTraffic sees it. Its bytes are valid until the handler returns. */
export class Datagram implements Conn {
  context: unknown = undefined;
  #data: Buffer;
  #pos = 0;

  readonly fd: number;
  /** The engine's socket: `open` turns false when stop() closes it, and the number may be reused. */
  readonly #socket: DatagramSocket;

  constructor(
    udp: DatagramSocket,
    readonly localAddress: SocketAddress,
    readonly remoteAddress: SocketAddress,
    data: Buffer,
  ) {
    this.#socket = udp;
    this.fd = udp.fd;
    this.#data = data;
  }

  /** The handler returned: its bytes are the loop's read buffer, about to be reused. */
  release(): void {
    this.#data = EMPTY;
    this.#pos = 0;
  }

  get inboundBuffered(): number {
    return this.#data.length - this.#pos;
  }

  get outboundBuffered(): number {
    return 0;
  }

  get closed(): boolean {
    return false;
  }

  #count(n: unknown): number {
    const have = this.inboundBuffered;
    if (n === undefined) return have;
    return Math.min(checkInteger(n, 'n', 0, Number.MAX_SAFE_INTEGER), have);
  }

  peek(n?: number): Buffer {
    return this.#data.subarray(this.#pos, this.#pos + this.#count(n));
  }

  next(n?: number): Buffer {
    const b = this.peek(n);
    this.#pos += b.length;
    return b;
  }

  discard(n?: number): number {
    const k = this.#count(n);
    this.#pos += k;
    return k;
  }

  /**
   * Sends `data` to the sender as one datagram, at once. False when the socket's send buffer
   * was full and the datagram was dropped (UDP does not retry; no onDrain follows), or when the
   * engine has stopped (a Conn kept past its handler call).
   */
  write(data: Uint8Array | string): boolean {
    if (typeof data === 'string') data = Buffer.from(data);
    else if (!(data instanceof Uint8Array)) throw invalidType('data', 'a Buffer, Uint8Array or string', data);
    // Once closed, the fd number may belong to something else: never send on it.
    if (!this.#socket.open) return false;
    return socket.sendTo(this.fd, data, this.remoteAddress.address, this.remoteAddress.port) >= 0;
  }

  /** The pieces, joined, as one datagram. */
  writev(list: readonly (Uint8Array | string)[]): boolean {
    if (!Array.isArray(list)) throw invalidType('list', 'an array of Buffers, Uint8Arrays or strings', list);
    const parts = list.map((p, i) => {
      if (typeof p === 'string') return Buffer.from(p);
      if (!(p instanceof Uint8Array)) throw invalidType(`list[${i}]`, 'a Buffer, Uint8Array or string', p);
      return p;
    });
    return this.write(Buffer.concat(parts));
  }

  flush(): void {
    // write() sent at once: nothing is queued.
  }

  asyncWrite(data: Uint8Array | string): Promise<boolean> {
    try {
      return Promise.resolve(this.write(data));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  close(): void {
    // Nothing to close: the socket is the engine's, shared by every sender.
  }

  pause(): void {
    throw unsupported('pause()');
  }

  resume(): void {
    throw unsupported('resume()');
  }

  wake(): void {
    throw unsupported('wake()');
  }

  setIdleTimeout(): void {
    throw unsupported('setIdleTimeout()');
  }
}

/** The engine's UDP socket, as its datagrams' Conns see it. */
export interface DatagramSocket {
  readonly fd: number;
  open: boolean;
}

/** What receiving needs of the engine. */
export interface DatagramHost {
  readonly socket: DatagramSocket;
  readonly localAddress: SocketAddress;
  readonly readBuffer: Buffer;
  onTraffic: ((conn: Conn) => unknown) | undefined;
  stats: { bytesIn: number; events: number; handlerErrors: number };
  requestShutdown(): void;
  running(): boolean;
}

/** Errors recvfrom reports for an earlier datagram's ICMP answer, not for the socket. */
const ICMP_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ECONNRESET']);

/** At most this many datagrams per readable event: the loop's other work gets its turn too. */
const MAX_DATAGRAMS_PER_EVENT = 128;

/** Receives what is queued on the socket and hands each datagram to onTraffic. */
export function receiveDatagrams(host: DatagramHost): void {
  const buf = host.readBuffer;
  for (let i = 0; i < MAX_DATAGRAMS_PER_EVENT && host.running(); i++) {
    let d: ReturnType<typeof socket.recvFrom>;
    try {
      d = socket.recvFrom(host.socket.fd, buf);
    } catch (e) {
      publish({ type: 'error', source: 'recvfrom', error: e, conn: undefined });
      // ECONNREFUSED and the like report an ICMP error for an earlier send: more may be queued.
      // Anything else (EBADF: the fd closed behind the engine's back) would only repeat.
      if (isSystemError(e) && ICMP_ERRORS.has(e.code)) continue;
      return;
    }
    if (d === null) return;
    host.stats.bytesIn += d.bytes;
    const method = host.onTraffic;
    if (method === undefined) continue;
    const conn = new Datagram(host.socket, host.localAddress, d.address, buf.subarray(0, d.bytes));
    let result: unknown;
    try {
      result = method(conn);
    } catch (e) {
      // One sender's bad datagram costs that datagram, never the engine.
      host.stats.handlerErrors++;
      publish({ type: 'error', source: 'onTraffic', error: e, conn });
      continue;
    } finally {
      conn.release();
    }
    if (result === Action.Shutdown) host.requestShutdown();
    else if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
      Promise.resolve(result as PromiseLike<unknown>).then(
        (value) => {
          if (value === Action.Shutdown) host.requestShutdown();
        },
        (e: unknown) => {
          host.stats.handlerErrors++;
          publish({ type: 'error', source: 'onTraffic', error: e, conn });
        },
      );
    }
  }
}
