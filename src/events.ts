// IOEvent/IOFlags constants and the is*Event helpers, as gnet's
// defs_poller_epoll.go and defs_poller_kqueue.go define them. Every number
// comes from the native backend; none is written here.
import { binding } from './binding.js';

const backend = binding.backend;

/** What happened: the epoll events mask on Linux, the kevent filter on kqueue. */
export type IOEvent = number;
/** More about it: always 0 on epoll; the kevent flags (EV_EOF, EV_ERROR, …) on kqueue. */
export type IOFlags = number;

/** The backend this build polls with. */
export const Backend: 'epoll' | 'kqueue' = backend.name;

/** Initial capacity of the poller's event list (128 on epoll, 64 on kqueue). */
export const InitPollEventsCap: number = backend.InitPollEventsCap;
/** Maximum events read per kernel wait (1024 on epoll, 512 on kqueue); also the urgent-queue threshold of `trigger()`. */
export const MaxPollEventsCap: number = backend.MaxPollEventsCap;
/** Minimum capacity the event list shrinks to (32 on epoll, 16 on kqueue). */
export const MinPollEventsCap: number = backend.MinPollEventsCap;
/** Most normal-priority tasks run per loop round (256 on epoll, 128 on kqueue). */
export const MaxAsyncTasksAtOneTime: number = backend.MaxAsyncTasksAtOneTime;
/** Readable events: EPOLLIN | EPOLLPRI on epoll, EVFILT_READ on kqueue. */
export const ReadEvents: IOEvent = backend.ReadEvents;
/** Writable events: EPOLLOUT on epoll, EVFILT_WRITE on kqueue. */
export const WriteEvents: IOEvent = backend.WriteEvents;
/** ReadEvents | WriteEvents, as gnet defines it. */
export const ReadWriteEvents: IOEvent = backend.ReadWriteEvents;
/** Exceptional conditions: EPOLLERR | EPOLLHUP on epoll; the flags EV_EOF | EV_ERROR on kqueue. */
export const ErrEvents: number = backend.ErrEvents;

const filters = backend.eventsAreFilters;

/**
 * Whether `event` reports readability (gnet's `IsReadEvent`).
 *
 * @example
 * ```ts
 * poller.polling((fd, event) => { if (isReadEvent(event)) read(fd, buf); });
 * ```
 */
export function isReadEvent(event: IOEvent): boolean {
  return filters ? event === ReadEvents : (event & ReadEvents) !== 0;
}

/**
 * Whether `event` reports writability (gnet's `IsWriteEvent`).
 *
 * @example
 * ```ts
 * if (isWriteEvent(event)) write(fd, pending);
 * ```
 */
export function isWriteEvent(event: IOEvent): boolean {
  return filters ? event === WriteEvents : (event & WriteEvents) !== 0;
}

/**
 * Whether the event reports an error or hang-up (gnet's `IsErrorEvent`): the event
 * mask on epoll, the flags on kqueue.
 *
 * @example
 * ```ts
 * if (isErrorEvent(event, flags)) { poller.delete(fd); close(fd); }
 * ```
 */
export function isErrorEvent(event: IOEvent, flags: IOFlags): boolean {
  return filters ? (flags & ErrEvents) !== 0 : (event & ErrEvents) !== 0;
}
