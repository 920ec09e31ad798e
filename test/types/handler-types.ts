// What a polling()/attachment callback may return: a stop error or nothing. Compiled
// by test/types.test.ts with and without its @ts-expect-error lines; never run.
import { ErrAcceptSocket, ErrEngineShutdown, errors, type PollEventHandler, type Poller, type StopError } from '../../src/index.js';

declare const poller: Poller;
declare const fd: number;

// ---- nothing, or a stop error ----
void poller.polling(() => {});
void poller.polling(() => undefined);
void poller.polling(() => null);
void poller.polling(() => ErrEngineShutdown);
void poller.polling(() => ErrAcceptSocket);
void poller.polling(() => errors.ErrEngineShutdown);
void poller.polling((f) => (f === fd ? ErrEngineShutdown : undefined));
void poller.polling(() => {
  if (fd < 0) return ErrAcceptSocket;
});
export const wrapped: PollEventHandler = () => new Error('accept failed', { cause: ErrAcceptSocket }) as StopError;
poller.addRead({ fd, callback: () => ErrEngineShutdown });

// ---- anything else would be ignored at run time: refused ----
// @ts-expect-error only the stop errors stop the loop; another Error is ignored
void poller.polling(() => new Error('bad client'));
// @ts-expect-error ErrPollerClosed is not a stop error
void poller.polling(() => errors.ErrPollerClosed);
// @ts-expect-error an async handler's Promise is not awaited
void poller.polling(async () => ErrEngineShutdown);
// @ts-expect-error a number is not nothing
poller.addRead({ fd, callback: () => 1 });
// @ts-expect-error an attachment callback returns the same
export const bad: PollEventHandler = (f) => (f === fd ? new TypeError('no') : undefined);
// @ts-expect-error a plain Error is not a StopError without a cast
export const notStop: StopError = new Error('x');
