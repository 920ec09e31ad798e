// netpoll: gnet's pkg/netpoll for Node.js and Electron. Public exports only.
/**
 * A portable event-notification poller for Node.js and Electron — epoll on Linux, kqueue on
 * BSD and macOS — ported from gnet's Go package `pkg/netpoll`. It runs inside the thread's own
 * event loop: no thread of its own, no blocking, one call into JavaScript per batch of events.
 *
 * Start with {@link openPoller} and {@link Poller}: register fds with `addRead`/`addWrite`/
 * `addReadWrite`, then run {@link Poller.polling | polling()}, iterate with
 * {@link Poller.events | for await}, and schedule work onto the loop with
 * {@link Poller.trigger | trigger()}. {@link Poller.stats | stats()} and the `netpoll:poller`
 * diagnostics channel ({@link DiagnosticsChannel}) show what a poller is doing. Every export
 * below lists the errors it gives and an example.
 * The guide (`docs/guide.md` in the repository) explains the batch path from the kernel to your
 * callback, level- and edge-triggered registration, the epoll/kqueue differences, worker threads,
 * Electron and GPIO.
 *
 * @example
 * ```ts
 * import { openPoller, pipe, read, write, isReadEvent, ErrEngineShutdown } from 'netpoll';
 *
 * using poller = openPoller();
 * const [r, w] = pipe();
 * poller.addRead({ fd: r });
 * write(w, Buffer.from('hello'));
 * await poller.polling((fd, event) => {
 *   if (isReadEvent(event)) {
 *     const buf = Buffer.alloc(64);
 *     console.log(buf.toString('utf8', 0, read(fd, buf)));
 *     return ErrEngineShutdown;
 *   }
 * });
 * ```
 *
 * @packageDocumentation
 */
export { openPoller, Poller } from './poller.js';
export type { PollAttachment, PollEventHandler, OpenPollerOptions, PollerDiagnostic } from './poller.js';
export { PollEvent } from './iterate.js';
export type { EventsOptions } from './iterate.js';
export { DiagnosticsChannel } from './diagnostics.js';
export type { PollerStats, PollerStopReason } from './diagnostics.js';
export {
  Backend,
  InitPollEventsCap,
  MaxPollEventsCap,
  MinPollEventsCap,
  MaxAsyncTasksAtOneTime,
  ReadEvents,
  WriteEvents,
  ReadWriteEvents,
  ErrEvents,
  isReadEvent,
  isWriteEvent,
  isErrorEvent,
  isErrorOnlyEvent,
} from './events.js';
export type { IOEvent, IOFlags } from './events.js';
export { errors, ErrEngineShutdown, ErrAcceptSocket, ErrPollerClosed, errorIs, isSystemError } from './errors.js';
export type { SystemError, CodedError, StopError } from './errors.js';
export { Priority } from './queue.js';
export type { TaskFunc } from './queue.js';
export { connectPoller, RemotePoller } from './remote.js';
export type { PollerHandle, PollerTasks, AnyTasks, TaskParams, TaskResult } from './remote.js';
// The common fd helpers top-level; the whole socket toolkit as `socket` (also `netpoll/socket`).
export { pipe, socketpair, dialTCP, socketError, read, write, close } from './socket.js';
export type { DialOptions, SocketAddress } from './socket.js';
/**
 * The socket toolkit (gnet's `pkg/socket`): raw, nonblocking, close-on-exec sockets that you
 * own — TCP, Unix and UDP, `readv`/`writev`, socket options, addresses, TCP urgent data, and
 * taking a socket over from `node:net` — to register with a {@link Poller}. Also importable
 * as the subpath `netpoll/socket`. Addresses are numeric: resolve names with `dns.lookup`
 * first, because a lookup blocks.
 *
 * @example
 * ```ts
 * import { openPoller, socket } from 'netpoll';
 *
 * const lfd = socket.listenTCP('127.0.0.1', 0);
 * console.log(socket.localAddress(lfd).port);
 * const poller = openPoller();
 * poller.addRead({ fd: lfd, callback: () => {
 *   for (let c = socket.accept(lfd); c !== null; c = socket.accept(lfd)) socket.close(c.fd);
 * } });
 * ```
 * @category Sockets
 */
export * as socket from './socket.js';
