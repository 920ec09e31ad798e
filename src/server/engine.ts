// serve(): a listener and one event loop on the calling thread (gnet's `multicore: false`), and stop().
import { promises as dns } from 'node:dns';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { isSystemError, socket, type SocketAddress } from '../index.js';
import { publish, type ConnInfo, type EngineStats } from './diagnostics.js';
import { codedError, EventLoop, type LoopHost } from './eventloop.js';
import { readHandler, type EventHandler, type HandlerMethods } from './handler.js';
import { parseAddress, resolveOptions, type ParsedAddress, type ResolvedOptions, type ServerOptions } from './options.js';

/**
 * A running server (gnet's `Engine`), as {@link serve} returns it.
 *
 * @example
 * ```ts
 * const engine = await serve(handler, 'tcp://127.0.0.1:0');
 * console.log(engine.address().port, engine.countConnections());
 * await engine.stop();
 * ```
 * @category Server
 */
export interface Engine {
  /**
   * Where it listens, as `net.Server.address()`.
   * @returns `{ address, family, port }` (the port the kernel chose for port 0), or the path for `unix://`.
   * @throws Never.
   * @example
   * ```ts
   * const { port } = engine.address() as { port: number };
   * ```
   */
  address(): SocketAddress | string;
  /**
   * Open connections.
   * @throws Never.
   * @example
   * ```ts
   * if (engine.countConnections() > 10_000) shedLoad();
   * ```
   */
  countConnections(): number;
  /**
   * Counters: connections, bytes in and out, connections held back by backpressure or
   * paused, idle timeouts, handler errors, poller events; in total and per loop.
   * @throws Never.
   * @example
   * ```ts
   * const { bytesIn, bytesOut, pausedForBackpressure } = engine.stats();
   * ```
   */
  stats(): EngineStats;
  /**
   * Every open connection with its buffered bytes and last activity: to find the one that stalled.
   * @throws Never.
   * @example
   * ```ts
   * const stalled = engine.connections().filter((c) => Date.now() - c.lastActivity > 60_000);
   * ```
   */
  connections(): ConnInfo[];
  /**
   * Stops gracefully: stops accepting, lets every connection write what is queued (for up to
   * `stopTimeout` ms; then they close with an `ERR_ENGINE_STOPPED` error), closes them, then
   * calls `onShutdown`. Idempotent, and safe inside a handler method: every call returns the
   * same promise.
   * @throws (rejects) only with what `onShutdown` threw.
   * @example
   * ```ts
   * process.once('SIGTERM', () => void engine.stop());
   * ```
   */
  stop(): Promise<void>;
  /** True once `stop()` was called (or a handler returned `Action.Shutdown`). */
  readonly stopping: boolean;
}

/** At most this many accepts per listener event: the loop's connections get their turn too. */
const MAX_ACCEPTS_PER_EVENT = 128;

const enum EngineState {
  Running,
  Stopping,
  Stopped,
}

class ServerEngine implements Engine, LoopHost {
  readonly loop: EventLoop;
  #state = EngineState.Running;
  #stopPromise: Promise<void> | undefined;
  #finishStop: (() => void) | undefined;
  #stopTimer: NodeJS.Timeout | undefined;
  /** stop() has closed the listener and asked every connection to close: the last close finishes it. */
  #draining = false;
  #listenFd = -1;
  #acceptTimer: NodeJS.Timeout | undefined;
  #address: SocketAddress | string = '';

  constructor(
    readonly handler: HandlerMethods,
    readonly options: ResolvedOptions,
    readonly where: ParsedAddress,
  ) {
    this.loop = new EventLoop(handler, options, this);
  }

  /** Opens the listener: throws as listenTCP/listenUnix do (EADDRINUSE …). */
  listen(host: string): void {
    const o = this.options;
    if (this.where.network === 'unix') {
      this.#listenFd = socket.listenUnix(this.where.path, { backlog: o.backlog });
      this.#address = this.where.path;
    } else {
      this.#listenFd = socket.listenTCP(host, this.where.port, {
        backlog: o.backlog,
        reuseAddr: o.reuseAddr,
        reusePort: o.reusePort,
        ipv6Only: this.where.family === 6 && (host === '::'),
      });
      this.#address = socket.localAddress(this.#listenFd);
    }
    this.#watchListener();
  }

  #watchListener(): void {
    this.loop.watch(this.#listenFd, false, () => this.#acceptSome());
  }

  #acceptSome(): void {
    const isTcp = this.where.network === 'tcp';
    for (let i = 0; i < MAX_ACCEPTS_PER_EVENT && this.#state === EngineState.Running; i++) {
      let c: ReturnType<typeof socket.accept>;
      try {
        c = socket.accept(this.#listenFd);
      } catch (e) {
        if (isSystemError(e) && (e.code === 'EMFILE' || e.code === 'ENFILE' || e.code === 'ENOBUFS' || e.code === 'ENOMEM')) {
          // Out of descriptors: the listener stays readable, and level-triggered polling would
          // report it again at once, forever. Stop watching it for a while instead.
          publish({ type: 'error', source: 'accept', error: e, conn: undefined });
          this.loop.unwatch(this.#listenFd);
          this.#acceptTimer = setTimeout(() => {
            if (this.#state === EngineState.Running) this.#watchListener();
          }, 100);
          this.#acceptTimer.unref();
          return;
        }
        if (isSystemError(e) && (e.code === 'ECONNABORTED' || e.code === 'EPROTO' || e.code === 'EPERM')) continue;
        publish({ type: 'error', source: 'accept', error: e, conn: undefined });
        return;
      }
      if (c === null) return;
      try {
        this.loop.open(c.fd, c.address, isTcp);
      } catch (e) {
        publish({ type: 'error', source: 'socket-option', error: e, conn: undefined });
      }
    }
  }

  address(): SocketAddress | string {
    return typeof this.#address === 'string' ? this.#address : { ...this.#address };
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

  get stopping(): boolean {
    return this.#state !== EngineState.Running;
  }

  requestShutdown(): void {
    void this.stop().catch(() => {}); // onShutdown's error went to the diagnostics channel too
  }

  connectionClosed(): void {
    // Only once stop() has closed the listener and asked every connection to close.
    if (this.#draining && this.loop.stats.connections === 0) this.#finishStop?.();
  }

  stop(): Promise<void> {
    if (this.#stopPromise !== undefined) return this.#stopPromise;
    this.#state = EngineState.Stopping;
    this.#stopPromise = new Promise<void>((resolve, reject) => {
      this.#finishStop = () => {
        this.#finishStop = undefined;
        clearTimeout(this.#stopTimer);
        this.#state = EngineState.Stopped;
        this.loop.close();
        if (this.where.network === 'unix') fs.rmSync(this.where.path, { force: true });
        try {
          this.handler.onShutdown?.(this);
        } catch (e) {
          publish({ type: 'error', source: 'onShutdown', error: e, conn: undefined });
          return reject(e);
        }
        resolve();
      };
      // Inside a handler method, the rest waits until it returns (the loop is mid-dispatch).
      queueMicrotask(() => {
        this.#draining = true;
        clearTimeout(this.#acceptTimer);
        if (this.#listenFd >= 0) {
          this.loop.unwatch(this.#listenFd);
          socket.close(this.#listenFd);
          this.#listenFd = -1;
        }
        this.loop.closeAll();
        if (this.loop.stats.connections === 0) return this.#finishStop?.();
        this.#stopTimer = setTimeout(() => {
          this.loop.abortAll(codedError(`the engine stopped before this connection's output was written (stopTimeout ${this.options.stopTimeout} ms)`, 'ERR_ENGINE_STOPPED'));
          this.#finishStop?.();
        }, this.options.stopTimeout);
      });
    });
    return this.#stopPromise;
  }
}

/** The numeric host to listen on for a tcp address: names resolved, '' meaning every interface. */
async function numericHost(where: ParsedAddress & { network: 'tcp' }): Promise<string> {
  const { host, family } = where;
  if (host === '') return family === 6 ? '::' : '0.0.0.0';
  const kind = net.isIP(host);
  if (kind !== 0) {
    if (family !== 0 && kind !== family) {
      const err = new TypeError(`"${host}" is not an IPv${family} address, which tcp${family}:// asks for`) as TypeError & { code: string };
      err.code = 'ERR_INVALID_IP_ADDRESS';
      throw err;
    }
    return host;
  }
  const { address } = await dns.lookup(host, { family });
  return address;
}

/**
 * Starts a server (gnet's `Run`): listens on `addr` and serves each connection with
 * `handler`, on one event loop on this thread. Resolves once it listens and `onBoot` ran.
 *
 * Addresses are written as gnet writes them: `tcp://host:port` (a host name is resolved
 * first; an empty host means every interface; an IPv6 host goes in brackets), `tcp4://`,
 * `tcp6://`, and `unix:///path/to/socket` (the file is removed by `stop()`). Port 0 lets the
 * kernel choose: `engine.address()` tells which.
 *
 * @param handler - the callbacks; every method is optional.
 * @param addr - where to listen.
 * @param options - see {@link ServerOptions}.
 * @returns the running engine.
 * @throws (rejects) TypeError for a bad handler, address or option (`ERR_INVALID_ARG_VALUE`,
 * `ERR_INVALID_ARG_TYPE`), `ERR_NOT_SUPPORTED` for `multicore`; RangeError for a port or size
 * out of range; a SystemError (`EADDRINUSE`, `EACCES`, `ENOENT`); what `onBoot` threw.
 * @example
 * ```ts
 * import { serve } from 'netpoll/server';
 *
 * const engine = await serve({ onTraffic: (conn) => { conn.write(conn.next()); } }, 'tcp://127.0.0.1:7000');
 * ```
 * @category Server
 */
export async function serve(handler: EventHandler, addr: string, options?: ServerOptions): Promise<Engine> {
  const methods = readHandler(handler);
  const where = parseAddress(addr);
  const resolved = resolveOptions(options);
  const host = where.network === 'tcp' ? await numericHost(where) : '';
  const engine = new ServerEngine(methods, resolved, where);
  try {
    engine.listen(host);
  } catch (e) {
    engine.loop.close();
    throw e;
  }
  try {
    methods.onBoot?.(engine);
  } catch (e) {
    await engine.stop().catch(() => {});
    throw e;
  }
  engine.loop.startTicking();
  return engine;
}
