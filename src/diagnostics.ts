// What a poller tells about itself without a debugger: the counters behind
// Poller#stats() and the `netpoll:poller` diagnostics channel's messages.
//
// Both are built to be always on. The counters move once per batch (or per
// registration, or per task, where a task's own cost dwarfs an increment), never
// once per event; a message is built only when the channel has subscribers, and
// the channel publishes lifecycle steps, never events. The messages' type,
// PollerDiagnostic, lives in src/poller.ts beside the Poller they carry, so that this
// module imports nothing of the project's (imports run one way: poller -> diagnostics).
import * as diagnosticsChannel from 'node:diagnostics_channel';

/**
 * The name of the `node:diagnostics_channel` channel on which every poller publishes its
 * lifecycle (see {@link PollerDiagnostic} for the messages): `'netpoll:poller'`.
 * Subscribing costs each poller one check per lifecycle step; with no subscriber, no
 * message is built. Nothing is published per event or per task run.
 *
 * @example
 * ```ts
 * import { subscribe } from 'node:diagnostics_channel';
 * import { DiagnosticsChannel, type PollerDiagnostic } from 'netpoll';
 *
 * subscribe(DiagnosticsChannel, (message) => {
 *   const m = message as PollerDiagnostic;
 *   if (m.type === 'stop') console.log(`poller ${m.poller.fd}: ${m.mode} stopped (${m.reason})`);
 * });
 * ```
 * @category Diagnostics
 */
export const DiagnosticsChannel = 'netpoll:poller';

/** The channel itself: looked up once, checked (hasSubscribers) before a message is built. */
export const channel = diagnosticsChannel.channel(DiagnosticsChannel);

/**
 * Why a `polling()` run or an iteration ended, in a {@link PollerDiagnostic} `stop` message:
 * - `'stop'`: a callback or a task returned a stop error (`ErrEngineShutdown`, `ErrAcceptSocket`,
 *   or an Error wrapping one); `error` is that value.
 * - `'close'`: `close()` ended it; `error` is `ErrEngineShutdown` for polling (what `polling()`
 *   resolved with), undefined for an iteration (it ended `done`).
 * - `'break'`: the iteration's consumer left it (`break`, `return()`); `error` is undefined.
 * - `'abort'`: the iteration's `signal` aborted; `error` is the AbortError it rejected with.
 * - `'throw'`: a `polling()` callback threw; `error` is what it threw (`polling()` rejected with
 *   it, or, when the callback had closed the poller first, it was reported as an `uncaughtException`).
 * - `'error'`: the poller itself failed: reading the kernel or watching its descriptor (a
 *   SystemError such as `EBADF`), an event for an fd without a callback (`ERR_NO_CALLBACK`), or
 *   the waker; `error` is that error.
 *
 * @example
 * ```ts
 * const unexpected = (reason: PollerStopReason) => reason === 'throw' || reason === 'error';
 * ```
 * @category Diagnostics
 */
export type PollerStopReason = 'stop' | 'close' | 'break' | 'abort' | 'throw' | 'error';

/**
 * What {@link Poller.stats} returns: counters since `openPoller()`, plus a few gauges of the
 * moment. A fresh plain object each call (JSON-friendly); the counters only grow, and stay
 * readable after `close()`. Two snapshots a few seconds apart tell what the poller did in
 * between (the guide's troubleshooting section shows how to read them).
 *
 * @example
 * ```ts
 * const a = poller.stats();
 * await sleep(5000);
 * const b = poller.stats();
 * if (poller.running && b.batches === a.batches) console.log('no batch in 5 s: nothing was ready');
 * if (b.pendingTasks.urgent + b.pendingTasks.normal > a.pendingTasks.urgent + a.pendingTasks.normal) {
 *   console.log('tasks queue up faster than they run');
 * }
 * ```
 * @category Diagnostics
 */
export interface PollerStats {
  /**
   * Events delivered to this poller: the sum of every batch's size. An event counts once the
   * kernel reported it for a current registration, whether or not it then reached a callback:
   * events of a registration deleted before the batch was read never count; those later in a
   * batch for an fd deleted by an earlier callback, those left in a batch that a callback
   * stopped, and those an iteration dropped (its consumer left, or the fd was deleted while
   * they waited in its buffer) do. A level-triggered fd that stays ready counts once per batch.
   */
  readonly events: number;
  /**
   * Batches delivered to this poller: the calls from the event loop into the poller, each
   * with the events of one kernel wait, or only a wake (see `wakes`), or both. A wait that
   * read nothing current (only events of deleted registrations) is no batch; a wait that
   * failed is not counted (it ends the run with a SystemError).
   */
  readonly batches: number;
  /**
   * Tasks run, by the queue they ran from (a `Priority.Low` task that joined the urgent queue
   * counts as urgent), whether triggered on this thread or from another one. A task that threw
   * counts too; tasks rejected with `ErrPollerClosed` at `close()` never ran and do not.
   */
  readonly tasks: {
    /** Tasks run from the urgent queue. */
    readonly urgent: number;
    /** Tasks run from the normal queue. */
    readonly normal: number;
  };
  /**
   * Tasks queued and not run yet, per queue, and those other threads queued that have not
   * joined the queues yet: they run only while the poller is polling or iterated, and a round
   * runs every urgent task but at most `MaxAsyncTasksAtOneTime` normal ones. 0 after `close()`.
   */
  readonly pendingTasks: {
    /** Tasks waiting in the urgent queue. */
    readonly urgent: number;
    /** Tasks waiting in the normal queue. */
    readonly normal: number;
    /**
     * Tasks other threads triggered ({@link RemotePoller.trigger}) that have not joined the
     * two queues yet: they join them, by the same rules as a local trigger, at the start of
     * the next round. A snapshot: other threads may add more at any moment.
     */
    readonly remote: number;
  };
  /**
   * Wakes the event loop delivered: batches that came with a round of tasks due, asked for by
   * a `trigger()` on this thread or from another one (each starts that round, unless a callback
   * stopped the run earlier in the batch). Wakes coalesce: a wake is armed only when none is
   * pending, so many triggers between two rounds make one wake.
   */
  readonly wakes: number;
  /**
   * The event list's size: the most events one kernel wait may return (gnet's el.size,
   * `InitPollEventsCap` at open, grown and shrunk per batch). After `close()`, the last size.
   */
  readonly eventListSize: number;
  /**
   * Fds registered through this poller: each successful `add*` of an fd it had no attachment
   * for counts one, each `delete(fd)` of one it had takes one away (even when the kernel then
   * reports an error), `close()` makes it 0. An fd closed without `delete()` stays counted: the
   * poller cannot see the close. A count that keeps growing while connections come and go
   * points at exactly that leak.
   */
  readonly registered: number;
  /**
   * When the last batch arrived, on the `performance.now()` clock (milliseconds since this
   * thread started); `null` before the first batch. Compare with `performance.now()`.
   */
  readonly lastBatchAt: number | null;
}
