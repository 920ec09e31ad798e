// netpoll: gnet's pkg/netpoll for Node.js and Electron. Public exports only.
export { openPoller, Poller, Priority, PollEvent } from './poller.js';
export type { PollAttachment, PollEventHandler, EventsOptions, OpenPollerOptions } from './poller.js';
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
} from './events.js';
export type { IOEvent, IOFlags } from './events.js';
export { errors, ErrEngineShutdown, ErrAcceptSocket, ErrPollerClosed, errorIs } from './errors.js';
export type { SystemError, CodedError } from './errors.js';
export type { TaskFunc } from './queue.js';
// The common fd helpers top-level; the whole socket toolkit as `socket` (also `netpoll/socket`).
export { pipe, socketpair, dialTCP, socketError, read, write, close } from './socket.js';
export type { DialOptions, SocketAddress } from './socket.js';
export * as socket from './socket.js';
