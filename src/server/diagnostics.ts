// The `netpoll:server` diagnostics channel, and the engine's statistics shapes.
import diagnosticsChannel from 'node:diagnostics_channel';
import type { Conn } from './conn.js';

/**
 * The name of the server's `node:diagnostics_channel` channel: `'netpoll:server'`. Messages
 * ({@link ServerDiagnostic}) tell connections opening and closing (with the reason) and errors:
 * a handler method that threw, a failed accept or socket option. Nothing is built while
 * nobody subscribes.
 *
 * @example
 * ```ts
 * import diagnostics_channel from 'node:diagnostics_channel';
 * diagnostics_channel.subscribe(ServerDiagnosticsChannel, (m) => {
 *   const msg = m as ServerDiagnostic;
 *   if (msg.type === 'error') console.error(msg.source, msg.error);
 * });
 * ```
 * @category Server diagnostics
 */
export const ServerDiagnosticsChannel = 'netpoll:server';

/** The channel, published to only when it has subscribers. */
export const serverChannel = diagnosticsChannel.channel(ServerDiagnosticsChannel);

/**
 * A message on the `netpoll:server` channel.
 *
 * - `open`: a connection opened (accepted, dialed or enrolled).
 * - `close`: a connection closed; `error` is what `onClose` got (undefined for an orderly close).
 * - `error`: something failed without stopping the engine; `source` says what: a handler
 *   method (`'onTraffic'`, …, the connection was closed), `'accept'`, `'socket-option'`,
 *   `'onTick'`, `'recvfrom'` (udp://), or `'engine'`.
 *
 * @example
 * ```ts
 * const seen: ServerDiagnostic[] = [];
 * diagnostics_channel.subscribe(ServerDiagnosticsChannel, (m) => seen.push(m as ServerDiagnostic));
 * ```
 * @category Server diagnostics
 */
export type ServerDiagnostic = ServerOpenDiagnostic | ServerCloseDiagnostic | ServerErrorDiagnostic;

/**
 * A connection opened (accepted, dialed or enrolled).
 *
 * @example
 * ```ts
 * if (msg.type === 'open') console.log('open', msg.conn.remoteAddress);
 * ```
 * @category Server diagnostics
 */
export interface ServerOpenDiagnostic {
  /** `'open'`. */
  type: 'open';
  /** The connection. */
  conn: Conn;
}

/**
 * A connection closed.
 *
 * @example
 * ```ts
 * if (msg.type === 'close' && msg.error) console.log('closed', msg.error.message);
 * ```
 * @category Server diagnostics
 */
export interface ServerCloseDiagnostic {
  /** `'close'`. */
  type: 'close';
  /** The connection (closed now). */
  conn: Conn;
  /** What `onClose` got: undefined for an orderly close. */
  error: Error | undefined;
}

/**
 * Something failed without stopping the engine.
 *
 * @example
 * ```ts
 * if (msg.type === 'error') console.error(msg.source, msg.error);
 * ```
 * @category Server diagnostics
 */
export interface ServerErrorDiagnostic {
  /** `'error'`. */
  type: 'error';
  /** A handler method's name (`'onTraffic'`, …), `'accept'`, `'socket-option'`, `'recvfrom'`, or `'engine'`. */
  source: string;
  /** What was thrown. */
  error: unknown;
  /** The connection it concerns, if any (closed because of it, for a handler method). */
  conn: Conn | undefined;
}

/** Publishes `msg` to the channel's subscribers, if any. */
export function publish(msg: ServerDiagnostic): void {
  serverChannel.publish(msg);
}

/**
 * Counters of one event loop, since it started.
 *
 * @example
 * ```ts
 * const [loop] = engine.stats().loops; console.log(loop.connections);
 * ```
 * @category Server diagnostics
 */
export interface LoopStats {
  /** Open connections. */
  connections: number;
  /** Connections opened since start (accepted, dialed, enrolled). */
  opened: number;
  /** Bytes read from connections. */
  bytesIn: number;
  /** Bytes written to connections. */
  bytesOut: number;
  /** Connections whose reading is held back now because their outbound buffer passed the high-water mark. */
  pausedForBackpressure: number;
  /** Connections paused now by `conn.pause()`. */
  paused: number;
  /** Connections closed by their idle timeout since start. */
  timedOut: number;
  /** Handler methods that threw (or rejected) since start. */
  handlerErrors: number;
  /** Readiness events the loop's poller delivered since start (flat while every connection is paused). */
  events: number;
}

/**
 * What {@link Engine.stats} returns: the totals, and each loop's own counters.
 *
 * @example
 * ```ts
 * const { connections, bytesIn, bytesOut } = engine.stats();
 * ```
 * @category Server diagnostics
 */
export interface EngineStats extends LoopStats {
  /** Each event loop's counters (one loop today). */
  loops: LoopStats[];
}

/**
 * One connection as {@link Engine.connections} lists it: to find the one that stalled.
 *
 * @example
 * ```ts
 * for (const c of engine.connections()) if (c.outboundBuffered > 1 << 20) console.log(c.remoteAddress, c.lastActivity);
 * ```
 * @category Server diagnostics
 */
export interface ConnInfo {
  /** The connection's descriptor. */
  fd: number;
  /** The peer's address, as {@link Conn.remoteAddress}. */
  remoteAddress: Conn['remoteAddress'];
  /** `'open'`, or `'closing'` while queued output is written before the close. */
  state: 'open' | 'closing';
  /** Bytes read but not yet consumed by the handler. */
  inboundBuffered: number;
  /** Bytes queued but not yet written. */
  outboundBuffered: number;
  /** Reading held back by `pause()`. */
  paused: boolean;
  /** Reading held back because the outbound buffer passed the high-water mark. */
  pausedForBackpressure: boolean;
  /** When the connection last read or wrote a byte (ms since the epoch). */
  lastActivity: number;
  /** When it opened (ms since the epoch). */
  openedAt: number;
}
