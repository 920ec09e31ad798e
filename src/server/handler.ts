// What a user gives the engine: the event handler and the actions its methods return.
import type { Conn } from './conn.js';
import type { AnyTasks, PollerTasks, RemotePoller, SocketAddress } from '../index.js';
import type { ConnInfo, EngineStats } from './diagnostics.js';

/**
 * What a handler method asks the engine to do next (gnet's `Action`): `Action.None` (0) goes
 * on, `Action.Close` (1) closes the connection (an orderly close: `onClose` gets no error),
 * `Action.Shutdown` (2) stops the whole engine gracefully, as {@link Engine.stop} does.
 * Anything else a method returns (`undefined` included) counts as `Action.None`, except a
 * promise (or thenable), whose rejection counts as a throw, as does reading a returned value's
 * `then` when that throws (a getter, a revoked Proxy).
 *
 * @example
 * ```ts
 * const handler: EventHandler = {
 *   onTraffic: (conn) => (conn.next().toString() === 'quit\n' ? Action.Close : Action.None),
 * };
 * ```
 * @category Server
 */
export const Action = Object.freeze({
  /** 0: go on. */
  None: 0,
  /** 1: close this connection once what it was sent is written. */
  Close: 1,
  /** 2: stop the engine gracefully (stop accepting, flush, close every connection, then `onShutdown`). */
  Shutdown: 2,
} as const);

/**
 * `Action.None`, `Action.Close` or `Action.Shutdown`.
 *
 * @example
 * ```ts
 * const next: Action = done ? Action.Close : Action.None;
 * ```
 * @category Server
 */
export type Action = (typeof Action)[keyof typeof Action];

/**
 * What a handler method may return: an {@link Action}, or nothing (`Action.None`).
 *
 * @example
 * ```ts
 * const onTraffic = (conn: Conn): HandlerResult => { conn.write(conn.next()); };
 * ```
 * @category Server
 */
export type HandlerResult = Action | void | undefined;

/**
 * The callbacks of a server or client (gnet's `EventHandler`); every method is optional, as
 * with gnet's `BuiltinEventEngine`. They run on the engine's loop, one at a time. A method
 * that throws (or returns a promise that rejects) closes the connection it was called for,
 * with the error in `onClose` and on the `netpoll:server` diagnostics channel; the engine
 * goes on serving the other connections. `serve()` and `createClient()` read the methods once:
 * later changes to the object do not count.
 *
 * @example
 * ```ts
 * const echo: EventHandler = {
 *   onOpen: (conn) => { conn.context = { since: Date.now() }; },
 *   onTraffic: (conn) => { conn.write(conn.next()); },
 *   onClose: (conn, err) => { if (err) console.log(conn.remoteAddress, err.message); },
 * };
 * ```
 * @category Server
 */
export interface EventHandler {
  /**
   * The engine is ready to accept connections (gnet's `OnBoot`); {@link serve} resolves after it.
   * @param engine - the engine that booted.
   * @throws What it throws makes `serve` reject (the engine is stopped first).
   * @example
   * ```ts
   * onBoot(engine) { console.log('listening on', engine.address()); }
   * ```
   */
  onBoot?(engine: Engine): HandlerResult;
  /**
   * A connection opened (accepted, dialed or enrolled). Writes made here go out first.
   * @param conn - the new connection.
   * @throws What it throws closes the connection, with that error in `onClose`.
   * @example
   * ```ts
   * onOpen(conn) { conn.context = new Session(); conn.write('hello\r\n'); }
   * ```
   */
  onOpen?(conn: Conn): HandlerResult;
  /**
   * Bytes arrived (or {@link Conn.wake} asked for a call): read them with `next`/`peek`/`discard`.
   * Bytes left unread stay buffered for the next call.
   * @param conn - the connection with input.
   * @throws What it throws (or a returned promise rejects with) closes the connection, with
   * that error in `onClose` and on the `netpoll:server` channel.
   * @example
   * ```ts
   * onTraffic(conn) { conn.write(conn.next()); }
   * ```
   */
  onTraffic?(conn: Conn): HandlerResult;
  /**
   * The connection closed.
   * @param conn - the connection; its fd is closed already.
   * @param err - undefined for an orderly close (the peer's end of stream, `Action.Close`,
   * `conn.close()`, `stop()`), else an Error with a `code`: `ECONNRESET`, `EPIPE`, `ETIMEDOUT`
   * (idle timeout), `ERR_ENGINE_STOPPED`, or what a handler method threw.
   * @throws What it throws goes to the `netpoll:server` channel; nothing else happens.
   * @example
   * ```ts
   * onClose(conn, err) { if (err) console.warn(conn.remoteAddress, err.message); }
   * ```
   */
  onClose?(conn: Conn, err: Error | undefined): HandlerResult;
  /**
   * After `write()` returned false, the outbound buffer fell to its low-water mark: write more.
   * @param conn - the connection that drained.
   * @throws What it throws closes the connection, as for `onTraffic`.
   * @example
   * ```ts
   * onDrain(conn) { pump(conn); }
   * ```
   */
  onDrain?(conn: Conn): HandlerResult;
  /**
   * Called once after boot and then again after the number of milliseconds it returns (gnet's
   * `OnTick`, with the delay as the return value). Return an `{ delay, action }` pair to also
   * stop the engine; return nothing (or a value that is not a finite number ≥ 0) to stop ticking.
   * @throws What it throws goes to the `netpoll:server` channel, and ticking stops.
   * @example
   * ```ts
   * onTick() { console.log(engine.stats()); return 10_000; }
   * ```
   */
  onTick?(): number | TickResult | void | undefined;
  /**
   * The engine stopped: every connection is closed (gnet's `OnShutdown`).
   * @param engine - the engine that stopped.
   * @throws What it throws makes `stop()` reject.
   * @example
   * ```ts
   * onShutdown() { db.close(); }
   * ```
   */
  onShutdown?(engine: Engine): void;
}

/**
 * What `onTick` may return to also act on the engine: the delay until the next tick, and an action.
 *
 * @example
 * ```ts
 * const handler: EventHandler = { onTick: () => ({ delay: 1000, action: ticks++ > 5 ? Action.Shutdown : Action.None }) };
 * ```
 * @category Server
 */
export interface TickResult {
  /** Milliseconds until the next tick. */
  delay: number;
  /** `Action.Shutdown` stops the engine; the others change nothing. */
  action?: Action | undefined;
}

const METHODS = ['onBoot', 'onOpen', 'onTraffic', 'onClose', 'onDrain', 'onTick', 'onShutdown'] as const;

/** The handler's methods, read once (a getter or Proxy trap runs here, never mid-loop). */
export type HandlerMethods = { [K in (typeof METHODS)[number]]: EventHandler[K] };

/**
 * Reads and checks `handler`'s methods once.
 * @throws TypeError when `handler` is not an object or a method is neither a function nor undefined; what a getter throws.
 */
export function readHandler(handler: unknown): HandlerMethods {
  if (typeof handler !== 'object' || handler === null) {
    throw Object.assign(new TypeError(`The "handler" argument must be an object (an EventHandler). Received ${handler === null ? 'null' : typeof handler}`), { code: 'ERR_INVALID_ARG_TYPE' });
  }
  const out: Record<string, unknown> = {};
  for (const name of METHODS) {
    const m: unknown = (handler as Record<string, unknown>)[name];
    if (m !== undefined && m !== null && typeof m !== 'function') {
      throw Object.assign(new TypeError(`The "handler.${name}" property must be a function. Received ${typeof m}`), { code: 'ERR_INVALID_ARG_TYPE' });
    }
    out[name] = typeof m === 'function' ? m.bind(handler) : undefined;
  }
  return out as HandlerMethods;
}

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
   * paused, idle timeouts, handler errors, poller events; in total and per loop. Multicore:
   * the acceptor's engine has each loop's connection count; a loop's handler gets the rest
   * from its own engine (the one `onBoot` receives in that thread).
   * @throws Never.
   * @example
   * ```ts
   * const { bytesIn, bytesOut, pausedForBackpressure } = engine.stats();
   * ```
   */
  stats(): EngineStats;
  /**
   * Every open connection with its buffered bytes and last activity: to find the one that
   * stalled. Multicore: empty on the acceptor's engine; each loop's handler has its own.
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
   * calls `onShutdown` (multicore: in each loop thread, which then ends). Idempotent, and safe
   * inside a handler method: every call returns the same promise.
   * @throws (rejects) only with what `onShutdown` threw.
   * @example
   * ```ts
   * process.once('SIGTERM', () => void engine.stop());
   * ```
   */
  stop(): Promise<void>;
  /** True once `stop()` was called (or a handler returned `Action.Shutdown`). */
  readonly stopping: boolean;
  /**
   * Which loop this engine is: 0 to `numEventLoop - 1` in a multicore loop thread (the engine
   * its handler gets), 0 for a single-threaded server, -1 for a multicore server's own engine
   * (the one `serve()` returns: it accepts, and runs no handler).
   */
  readonly loopIndex: number;
  /** How many loops serve connections: `numEventLoop` with `multicore`, else 1. */
  readonly numEventLoop: number;
  /**
   * Offers `tasks` to the other loops (and to any thread holding the engine), to be run on
   * this loop's thread, one at a time, with the poller's remote trigger ({@link Engine.peer}
   * reaches them). Multicore state is per loop: this is how one loop hands work to another,
   * for example to the loop that owns a key. Call it in `onBoot`, once.
   * @param tasks - task functions by name, as for `Poller.handle()`.
   * @throws TypeError when `tasks` is not an object of functions; RangeError (code
   * `ERR_RESERVED_TASK`) for a name the engine uses itself (`adopt`, `stop`, `peers`);
   * Error (code `ERR_INVALID_STATE`) outside `onBoot`, a second time, or on a multicore
   * server's own engine.
   * @example
   * ```ts
   * onBoot(engine) { engine.offer({ incr: (key: string) => shard.incr(key) }); }
   * ```
   */
  offer<T extends PollerTasks>(tasks: T): void;
  /**
   * The tasks loop `index` offered, to trigger from this thread: `peer(i).trigger(Priority.High,
   * 'incr', key)` runs `incr(key)` on loop i's thread and resolves with its result (it rejects
   * with `ErrPollerClosed` once that loop stopped). Ready once `serve()` resolved (in a loop
   * thread: for every connection, since loops are introduced before the first is accepted).
   * The engine owns the RemotePoller (closed when the engine stops): do not close it.
   * @param index - 0 to `numEventLoop - 1`; this loop's own index works too.
   * @throws TypeError for an index that is not a number, RangeError for one that is not an
   * integer in range; Error (code `ERR_INVALID_STATE`) when that loop offered no tasks, before
   * the loops were introduced, or once the engine stopped.
   * @example
   * ```ts
   * const n = await engine.peer<ShardTasks>(ownerOf(key)).trigger(Priority.High, 'incr', key);
   * ```
   */
  peer<T extends PollerTasks = AnyTasks>(index: number): RemotePoller<T>;
}
