// netpoll/server: gnet's engine on netpoll. Public exports only.
/**
 * `netpoll/server`: connections rather than readiness. gnet's engine (`gnet.Run`, its
 * `EventHandler` and `Conn`) on netpoll's poller: {@link serve} listens and runs one event
 * loop on the calling thread (or, with `multicore`, one per worker thread); the handler's methods get a {@link Conn} with an inbound buffer
 * (`next`/`peek`/`discard`), an outbound buffer flushed with `writev` (`write` returns false
 * past the high-water mark, and reading stays paused until it drains), `pause`/`resume`,
 * idle timeouts and an orderly `stop()`. A handler that throws closes only its connection.
 * {@link createClient} dials outbound connections on the same kind of loop.
 * The guide is `docs/server.md` in the repository.
 *
 * @example
 * ```ts
 * import { serve, Action } from 'netpoll/server';
 *
 * const engine = await serve({
 *   onTraffic(conn) {
 *     const line = conn.next().toString();
 *     conn.write(line);
 *     return line.startsWith('quit') ? Action.Close : Action.None;
 *   },
 * }, 'tcp://127.0.0.1:0');
 * console.log('echo on port', (engine.address() as { port: number }).port);
 * ```
 *
 * @packageDocumentation
 */
export { serve } from './server/engine.js';
export type { Engine } from './server/engine.js';
export { createClient } from './server/client.js';
export type { Client } from './server/client.js';
export { Action } from './server/handler.js';
export type { EventHandler, HandlerResult, TickResult } from './server/handler.js';
export type { Conn } from './server/conn.js';
export type { ServerOptions } from './server/options.js';
export type { LoadBalancing } from './server/balancer.js';
export { ServerDiagnosticsChannel } from './server/diagnostics.js';
export type { ServerDiagnostic, ServerOpenDiagnostic, ServerCloseDiagnostic, ServerErrorDiagnostic, EngineStats, LoopStats, ConnInfo } from './server/diagnostics.js';
