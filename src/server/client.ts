// createClient(): outbound connections on the same kind of loop as a server's (gnet's Client).
import { promises as dns } from 'node:dns';
import * as net from 'node:net';
import { socket, type SocketAddress } from '../index.js';
import type { Conn } from './conn.js';
import type { ConnInfo, EngineStats } from './diagnostics.js';
import { codedError, EventLoop, type LoopHost } from './eventloop.js';
import { readHandler, type EventHandler, type HandlerMethods } from './handler.js';
import { checkInteger, invalidType, invalidValue, parseAddress, resolveOptions, type ResolvedOptions, type ServerOptions } from './options.js';

/**
 * Outbound connections served by an event handler (gnet's `Client`), as {@link createClient}
 * returns it. The connections are the same {@link Conn}s a server's handler gets.
 *
 * @example
 * ```ts
 * const client = await createClient({ onTraffic: (conn) => { console.log(conn.next().toString()); } });
 * const conn = await client.dial('tcp://127.0.0.1:6379');
 * conn.write('PING\r\n');
 * ```
 * @category Server
 */
export interface Client {
  /**
   * Connects without blocking; resolves with the connection once it is open (after `onOpen`).
   * @param addr - `tcp://host:port`, `tcp4://`, `tcp6://` (a host name is resolved first) or `unix:///path`.
   * @param options - `timeout`: milliseconds for the whole dial (name lookup and connect)
   * before it rejects with `ETIMEDOUT` and its socket is closed; 0 or left out for none of
   * its own, as node:net (a TCP connect nobody answers then fails when the kernel gives up:
   * about two minutes on Linux). A Unix connect completes or fails at once.
   * @throws (rejects) TypeError for a bad address or options, RangeError for port 0 or a
   * timeout out of range, an Error with code `ETIMEDOUT` when `timeout` passed, a SystemError
   * (`ECONNREFUSED`, `ENOENT`, `ETIMEDOUT` from the kernel, …) when the connect fails
   * (`ENOTCONN` under libkqueue, which clears the socket's error before netpoll can read it),
   * `ERR_CLIENT_STOPPED` after `stop()`.
   * @example
   * ```ts
   * const conn = await client.dial('tcp://127.0.0.1:6379', { timeout: 3000 });
   * ```
   */
  dial(addr: string, options?: { timeout?: number | undefined }): Promise<Conn>;
  /**
   * Serves a connected socket made elsewhere (gnet's `Enroll`), such as a `socketpair()` end
   * or a socket taken from node:net with `takeFd`. The client owns and closes it from now on.
   * @param fd - a connected, nonblocking stream socket.
   * @throws RangeError for a bad fd; a SystemError (`ENOTSOCK`, `EBADF`) when it is not a
   * socket; `ERR_FD_IN_USE` for one of this client's connections; `ERR_CLIENT_STOPPED` after `stop()`.
   * @example
   * ```ts
   * const [mine, theirs] = socketpair();
   * const conn = client.enroll(mine);
   * ```
   */
  enroll(fd: number): Conn;
  /**
   * Open connections.
   * @throws Never.
   * @example
   * ```ts
   * console.log(client.countConnections());
   * ```
   */
  countConnections(): number;
  /**
   * Counters, as {@link Engine.stats}.
   * @throws Never.
   * @example
   * ```ts
   * console.log(client.stats().bytesOut);
   * ```
   */
  stats(): EngineStats;
  /**
   * Every open connection, as {@link Engine.connections}.
   * @throws Never.
   * @example
   * ```ts
   * for (const c of client.connections()) console.log(c.remoteAddress, c.outboundBuffered);
   * ```
   */
  connections(): ConnInfo[];
  /**
   * Closes every connection once what it has queued is written (for up to `stopTimeout` ms).
   * Dials still in progress reject with `ERR_CLIENT_STOPPED`. Idempotent: every call returns
   * the same promise.
   * @throws Never (the promise resolves).
   * @example
   * ```ts
   * await client.stop();
   * ```
   */
  stop(): Promise<void>;
}

const enum ClientState {
  Running,
  Stopping,
  Stopped,
}

function stoppedError(): Error {
  return codedError('the client is stopped', 'ERR_CLIENT_STOPPED');
}

/** Reads dial()'s options once: the timeout in ms, 0 for none. */
function dialTimeoutOf(options: unknown): number {
  if (options === undefined) return 0;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw invalidType('options', 'an object', options);
  let timeout: unknown;
  for (const key of Object.keys(options)) {
    if (key !== 'timeout') throw invalidValue('options', `has an unknown option "${key}" (dial takes { timeout })`);
    timeout = (options as { timeout?: unknown }).timeout;
  }
  return timeout === undefined ? 0 : checkInteger(timeout, 'options.timeout', 0, 0x7fffffff);
}

function timedOut(addr: string, ms: number): Error {
  return codedError(`dial ${addr} timed out after ${ms} ms`, 'ETIMEDOUT');
}

class LoopClient implements Client, LoopHost {
  readonly loop: EventLoop;
  #state = ClientState.Running;
  #stopPromise: Promise<void> | undefined;
  #finishStop: (() => void) | undefined;
  #stopTimer: NodeJS.Timeout | undefined;
  /** stop() has closed the listener and asked every connection to close: the last close finishes it. */
  #draining = false;
  /** Dials in progress: fd → how to fail them. */
  readonly #dialing = new Map<number, (err: Error) => void>();

  constructor(
    readonly handler: HandlerMethods,
    readonly options: ResolvedOptions,
  ) {
    this.loop = new EventLoop(handler, options, this);
  }

  async dial(addr: string, options?: { timeout?: number | undefined }): Promise<Conn> {
    const where = parseAddress(addr);
    const timeout = dialTimeoutOf(options);
    if (this.#state !== ClientState.Running) throw stoppedError();
    if (where.network === 'udp') throw invalidValue('addr', `must be tcp:// or unix:// (dial does not support udp:// yet). Received ${JSON.stringify(addr)}`);
    if (where.network === 'unix') {
      // A Unix connect completes (or fails) at once.
      return this.loop.open(socket.dialUnix(where.path), undefined, false);
    }
    if (where.port === 0) checkInteger(where.port, 'addr port', 1, 65535);
    const started = performance.now();
    let host = where.host === '' ? (where.family === 6 ? '::1' : '127.0.0.1') : where.host;
    if (net.isIP(host) === 0) {
      const lookup = dns.lookup(host, { family: where.family });
      if (timeout === 0) host = (await lookup).address;
      else {
        // dns.lookup cannot be cancelled: past the timeout its answer is simply not used.
        let timer: NodeJS.Timeout | undefined;
        const expired = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(timedOut(addr, timeout)), timeout)));
        try {
          host = (await Promise.race([lookup, expired])).address;
        } finally {
          clearTimeout(timer);
          lookup.catch(() => undefined);
        }
      }
    }
    if (this.#state !== ClientState.Running) throw stoppedError();
    const left = timeout === 0 ? 0 : Math.max(1, Math.ceil(timeout - (performance.now() - started)));
    const fd = socket.dialTCP(host, where.port, { nonblocking: true });
    return new Promise<Conn>((resolve, reject) => {
      // A connect nobody answers (a SYN dropped by a full backlog or a firewall) never becomes
      // writable until the kernel gives up: the timeout closes the socket instead.
      const timer = left === 0 ? undefined : setTimeout(() => fail(timedOut(addr, timeout)), left);
      const fail = (err: Error): void => {
        clearTimeout(timer);
        this.#dialing.delete(fd);
        this.loop.unwatch(fd);
        socket.close(fd);
        reject(err);
      };
      this.#dialing.set(fd, fail);
      // Writable means the connect finished; SO_ERROR says how. An empty SO_ERROR is not
      // proof of success: libkqueue reads SO_ERROR itself to build the write filter's EV_EOF
      // (clearing it), so a refused connect arrives there as a write event with no error
      // left (docs/backends.md). Whether the socket has a peer is what tells: a failed
      // connect rejects with getpeername's ENOTCONN rather than opening a dead connection.
      this.loop.watch(fd, true, () => {
        let remote: SocketAddress;
        try {
          const err = socket.socketError(fd);
          if (err !== undefined) return fail(err);
          remote = socket.remoteAddress(fd);
        } catch (e) {
          return fail(e as Error);
        }
        clearTimeout(timer);
        this.#dialing.delete(fd);
        this.loop.unwatch(fd);
        try {
          resolve(this.loop.open(fd, remote, true));
        } catch (e) {
          reject(e);
        }
      });
    });
  }

  enroll(fd: number): Conn {
    checkInteger(fd, 'fd', 0, 0x7fffffff);
    if (this.#state !== ClientState.Running) throw stoppedError();
    if (this.loop.serves(fd)) throw codedError(`fd ${fd} is already one of this client's connections`, 'ERR_FD_IN_USE');
    const isTcp = socket.localAddress(fd).family !== 'Unix'; // also checks that fd is a socket
    return this.loop.open(fd, undefined, isTcp);
  }

  countConnections(): number {
    return this.loop.stats.connections;
  }

  stats(): EngineStats {
    const loop = this.loop.snapshot();
    return { ...loop, loops: [loop] };
  }

  connections(): ConnInfo[] {
    return this.loop.connections();
  }

  requestShutdown(): void {
    void this.stop().catch(() => {});
  }

  connectionClosed(): void {
    // Only once stop() has closed the listener and asked every connection to close.
    if (this.#draining && this.loop.stats.connections === 0) this.#finishStop?.();
  }

  stop(): Promise<void> {
    if (this.#stopPromise !== undefined) return this.#stopPromise;
    this.#state = ClientState.Stopping;
    this.#stopPromise = new Promise<void>((resolve) => {
      this.#finishStop = () => {
        this.#finishStop = undefined;
        clearTimeout(this.#stopTimer);
        this.#state = ClientState.Stopped;
        this.loop.close();
        resolve();
      };
      queueMicrotask(() => {
        this.#draining = true;
        for (const fail of [...this.#dialing.values()]) fail(stoppedError());
        this.loop.closeAll();
        if (this.loop.stats.connections === 0) return this.#finishStop?.();
        this.#stopTimer = setTimeout(() => {
          this.loop.abortAll(codedError(`the client stopped before this connection's output was written (stopTimeout ${this.options.stopTimeout} ms)`, 'ERR_ENGINE_STOPPED'));
          this.#finishStop?.();
        }, this.options.stopTimeout);
      });
    });
    return this.#stopPromise;
  }
}

/**
 * Starts a client (gnet's `NewClient` + `Start`): an event loop on this thread for outbound
 * connections, served by `handler` like a server's. There is no engine, so `onBoot` and
 * `onShutdown` are not called: `createClient` and `stop()` resolving mark the start and the end.
 *
 * @param handler - the callbacks; every method is optional.
 * @param options - as for {@link serve}, minus the listener's.
 * @returns the running client.
 * @throws (rejects) TypeError/RangeError for a bad handler or option.
 * @example
 * ```ts
 * const client = await createClient({ onTraffic: (conn) => { replies.push(conn.next().toString()); } });
 * const conn = await client.dial('tcp://127.0.0.1:7000');
 * conn.write('hello');
 * ```
 * @category Server
 */
export async function createClient(handler: EventHandler, options?: ServerOptions): Promise<Client> {
  const client = new LoopClient(readHandler(handler), resolveOptions(options));
  client.loop.startTicking();
  return client;
}
