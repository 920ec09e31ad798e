// IOEvent/IOFlags constants and the is*Event helpers, as gnet's
// defs_poller_epoll.go and defs_poller_kqueue.go define them. Every number
// comes from the native backend; none is written here.
import { binding } from './binding.js';

const backend = binding.backend;

/** The type-only marks that keep IOEvent and IOFlags apart: nothing carries them at run time. */
declare const ioEventMark: unique symbol;
declare const ioFlagsMark: unique symbol;

/**
 * What happened: the epoll events mask on Linux (a bit set: `EPOLLIN`, `EPOLLOUT`,
 * `EPOLLERR`, …), the kevent filter on kqueue (one value: `EVFILT_READ` or `EVFILT_WRITE`).
 * Test it with {@link isReadEvent}, {@link isWriteEvent} and {@link isErrorOnlyEvent} rather
 * than with bit operations, so the same code runs on both backends.
 *
 * At run time a plain number; for the type checker a distinct one (branded), as gnet's
 * `IOEvent` is a type of its own in Go: an {@link IOFlags} or a plain number where an
 * `IOEvent` belongs (arguments swapped, a callback's parameters in the wrong order) does
 * not type-check. An `IOEvent` is still a number: compare it, print it, mask it. A number
 * from elsewhere (a test, a log) becomes one with `n as IOEvent`.
 *
 * @example
 * ```ts
 * const onEvent = (fd: number, event: IOEvent, flags: IOFlags) => {
 *   if (isReadEvent(event)) read(fd, buf);
 * };
 * ```
 * @category Events
 */
export type IOEvent = number & {
  /** @internal A mark for the type checker only. */
  readonly [ioEventMark]: 'IOEvent';
};
/**
 * More about it: always 0 on epoll; the kevent flags (`EV_EOF`, `EV_ERROR`, …) on kqueue,
 * where end of stream is a flag rather than an event bit. Pass it with the event to
 * {@link isErrorOnlyEvent} and {@link isErrorEvent}. A plain number at run time, a type of
 * its own for the type checker, distinct from {@link IOEvent} (see there).
 *
 * @example
 * ```ts
 * poller.polling((fd, event, flags) => {
 *   if (isErrorOnlyEvent(event, flags)) { poller.delete(fd); close(fd); }
 * });
 * ```
 * @category Events
 */
export type IOFlags = number & {
  /** @internal A mark for the type checker only. */
  readonly [ioFlagsMark]: 'IOFlags';
};

/**
 * The backend this build polls with: `'epoll'` on Linux, `'kqueue'` on BSD and macOS.
 * The constants below take that backend's values, as gnet's `defs_poller_*.go` do.
 *
 * @example
 * ```ts
 * console.log(`polling with ${Backend}, up to ${MaxPollEventsCap} events per wait`);
 * ```
 * @category Events
 */
export const Backend: 'epoll' | 'kqueue' = backend.name;

/**
 * Initial capacity of the poller's event list (128 on epoll, 64 on kqueue). The list
 * doubles when a wait fills it, up to {@link MaxPollEventsCap}, and halves when a wait
 * fills less than half of it, down to {@link MinPollEventsCap} (gnet's rule).
 *
 * @example
 * ```ts
 * openPoller().eventListSize === InitPollEventsCap; // true for a fresh poller
 * ```
 * @category Events
 */
export const InitPollEventsCap: number = backend.InitPollEventsCap;
/**
 * Maximum events read per kernel wait (1024 on epoll, 512 on kqueue); also the
 * urgent-queue threshold of {@link Poller.trigger}: a `Priority.Low` task goes to the
 * normal queue only once the urgent queue holds this many tasks.
 *
 * @example
 * ```ts
 * poller.eventListSize <= MaxPollEventsCap; // always, while the poller is open
 * ```
 * @category Events
 */
export const MaxPollEventsCap: number = backend.MaxPollEventsCap;
/**
 * Minimum capacity the event list shrinks to (32 on epoll, 16 on kqueue).
 *
 * @example
 * ```ts
 * poller.eventListSize >= MinPollEventsCap; // always, while the poller is open
 * ```
 * @category Events
 */
export const MinPollEventsCap: number = backend.MinPollEventsCap;
/**
 * Most normal-priority tasks run per loop round (256 on epoll, 128 on kqueue), so a flood
 * of `Priority.Low` tasks cannot starve I/O events.
 *
 * @example
 * ```ts
 * // 1000 low-priority tasks behind a full urgent queue take ceil(1000 / 256) rounds on epoll.
 * const rounds = Math.ceil(1000 / MaxAsyncTasksAtOneTime);
 * ```
 * @category Events
 */
export const MaxAsyncTasksAtOneTime: number = backend.MaxAsyncTasksAtOneTime;
/**
 * Readable events: `EPOLLIN | EPOLLPRI` on epoll, `EVFILT_READ` on kqueue.
 *
 * @example
 * ```ts
 * isReadEvent(ReadEvents); // true
 * ```
 * @category Events
 */
export const ReadEvents: IOEvent = backend.ReadEvents as IOEvent;
/**
 * Writable events: `EPOLLOUT` on epoll, `EVFILT_WRITE` on kqueue.
 *
 * @example
 * ```ts
 * isWriteEvent(WriteEvents); // true
 * ```
 * @category Events
 */
export const WriteEvents: IOEvent = backend.WriteEvents as IOEvent;
/**
 * `ReadEvents | WriteEvents`, as gnet defines it. On kqueue, where events are filters and
 * not bits, it is not itself an event the poller reports.
 *
 * @example
 * ```ts
 * if (Backend === 'epoll') isReadEvent(ReadWriteEvents) && isWriteEvent(ReadWriteEvents); // true
 * ```
 * @category Events
 */
export const ReadWriteEvents: IOEvent = backend.ReadWriteEvents as IOEvent;
/**
 * Exceptional conditions: the event bits `EPOLLERR | EPOLLHUP` on epoll; the flags
 * `EV_EOF | EV_ERROR` on kqueue. {@link isErrorEvent} tests the right one for the backend;
 * data sent before the condition may still wait to be read (see {@link isErrorOnlyEvent}).
 *
 * @example
 * ```ts
 * const failed = Backend === 'epoll' ? (event & ErrEvents) !== 0 : (flags & ErrEvents) !== 0;
 * // the same as isErrorEvent(event, flags)
 * ```
 * @category Events
 */
export const ErrEvents: number = backend.ErrEvents;

const filters = backend.eventsAreFilters;

/**
 * Whether `event` reports readability (gnet's `IsReadEvent`).
 *
 * @param event - the `event` a callback or a {@link PollEvent} got.
 * @throws Never.
 * @example
 * ```ts
 * poller.polling((fd, event) => { if (isReadEvent(event)) read(fd, buf); });
 * ```
 * @category Events
 */
export function isReadEvent(event: IOEvent): boolean {
  return filters ? event === ReadEvents : (event & ReadEvents) !== 0;
}

/**
 * Whether `event` reports writability (gnet's `IsWriteEvent`).
 *
 * @param event - the `event` a callback or a {@link PollEvent} got.
 * @throws Never.
 * @example
 * ```ts
 * if (isWriteEvent(event)) write(fd, pending);
 * ```
 * @category Events
 */
export function isWriteEvent(event: IOEvent): boolean {
  return filters ? event === WriteEvents : (event & WriteEvents) !== 0;
}

/**
 * Whether the event reports an error or hang-up (gnet's `IsErrorEvent`): the event
 * mask on epoll (`EPOLLERR`, `EPOLLHUP`), the flags on kqueue (`EV_EOF`, `EV_ERROR`).
 *
 * It does **not** mean there is nothing left to read, so never close on it before
 * reading: a peer that sent data and then shut down or closed its end is reported with
 * the data still waiting. kqueue sets `EV_EOF` on the read event as soon as the peer
 * half-closes, unread bytes or not, and a pipe whose writer closed is `EPOLLIN | EPOLLHUP`
 * on epoll. Read until `read()` returns 0 (the end) or -1 (drained for now), and close
 * without reading only on {@link isErrorOnlyEvent}.
 *
 * @param event - the `event` a callback or a {@link PollEvent} got.
 * @param flags - the `flags` that came with it (0 on epoll).
 * @throws Never.
 * @example
 * ```ts
 * if (isErrorEvent(event, flags)) console.log(`fd ${fd}: the peer is done or failed; reading tells which`);
 * ```
 * @category Events
 */
export function isErrorEvent(event: IOEvent, flags: IOFlags): boolean {
  return filters ? (flags & ErrEvents) !== 0 : (event & ErrEvents) !== 0;
}

/**
 * Whether the event is an error or hang-up and nothing else: no readiness comes with it,
 * so there is nothing to read or write, and the fd can be closed without trying. gnet's
 * event loops close a connection on exactly such events and, on every other one, write,
 * then read until the socket is drained, and only then act on end of stream.
 *
 * - epoll: `EPOLLERR`, `EPOLLHUP` or `EPOLLRDHUP` without `EPOLLIN`, `EPOLLPRI` or
 *   `EPOLLOUT`. Data waiting to be read always comes with `EPOLLIN` (for an fd registered
 *   for reading), so such an event has none: a pipe whose writer closed once it is empty,
 *   a socket that failed.
 * - kqueue: false for every event a poller delivers. Each is a read or write filter's,
 *   with end of stream and errors as flags (`EV_EOF`, `EV_ERROR`) on it, and `EV_EOF` on
 *   the read filter comes while unread data may still wait: the read itself tells (0 at
 *   the end, or the error). (Only an error flag on some other filter would count.)
 *
 * The pattern that loses nothing on either backend: close on an error-only event; else
 * write what is pending on a write event, and on a read event read until `read()` returns
 * -1 (drained; wait for the next event) or 0 (the peer is done: close), closing too when
 * it throws (`ECONNRESET`).
 *
 * @param event - the `event` a callback or a {@link PollEvent} got.
 * @param flags - the `flags` that came with it.
 * @throws Never.
 * @example
 * ```ts
 * poller.polling((fd, event, flags) => {
 *   if (isErrorOnlyEvent(event, flags)) return drop(fd); // failed or hung up, nothing to read
 *   if (isWriteEvent(event)) flush(fd);
 *   if (isReadEvent(event)) {
 *     for (let n = read(fd, buf); n !== -1; n = read(fd, buf)) {
 *       if (n === 0) return drop(fd);                    // the end, after every byte sent before it
 *       handle(buf.subarray(0, n));
 *     }
 *   }
 * });
 * ```
 * @category Events
 */
export function isErrorOnlyEvent(event: IOEvent, flags: IOFlags): boolean {
  if (filters) return event !== ReadEvents && event !== WriteEvents && (flags & ErrEvents) !== 0;
  return event !== 0 && (event & ReadWriteEvents) === 0;
}
