// IOEvent and IOFlags are distinct types (branded numbers, as gnet's are distinct Go
// types): swapping them does not type-check. Compiled by test/types.test.ts with and
// without its @ts-expect-error lines; never run.
import {
  ErrEvents,
  ReadEvents,
  WriteEvents,
  isErrorEvent,
  isErrorOnlyEvent,
  isReadEvent,
  isWriteEvent,
  type IOEvent,
  type IOFlags,
  type PollEvent,
  type PollEventHandler,
  type Poller,
} from '../../src/index.js';

declare const poller: Poller;
declare const event: IOEvent;
declare const flags: IOFlags;
declare const ev: PollEvent;

// ---- correct code compiles, and the brands are still numbers ----
void poller.polling((fd, e, f) => {
  if (isErrorOnlyEvent(e, f)) return;
  if (isReadEvent(e) || isWriteEvent(e) || isErrorEvent(e, f)) console.log(fd + e + f);
});
export const handler: PollEventHandler = (fd: number, e: number, f: number) => void (fd + e + f); // wider parameters are fine
export const masked: number = (event & ReadEvents) | (flags & ErrEvents);
export const asNumber: number = event;
export const same: boolean = event === ReadEvents || ev.event === WriteEvents || ev.flags === 0;
export const fromElsewhere: IOEvent = 1 as IOEvent;
isErrorOnlyEvent(ev.event, ev.flags);

// ---- swapped or plain numbers are refused ----
// @ts-expect-error the arguments swapped
isErrorOnlyEvent(flags, event);
// @ts-expect-error the arguments swapped
isErrorEvent(ev.flags, ev.event);
// @ts-expect-error flags are not an event
isReadEvent(flags);
// @ts-expect-error a plain number is not an event
isWriteEvent(4);
// @ts-expect-error the callback's parameters in the wrong order: its `event` is the fd
void poller.polling((event, flags) => void isErrorOnlyEvent(event, flags));
// @ts-expect-error (fd, flags, event): the third parameter is the flags
void poller.polling((_fd, flags, event) => void isErrorOnlyEvent(event, flags));
// @ts-expect-error an IOFlags is not an IOEvent
export const notAnEvent: IOEvent = flags;
// @ts-expect-error an IOEvent is not an IOFlags
export const notFlags: IOFlags = event;
// @ts-expect-error a plain number is not an IOEvent
export const plain: IOEvent = 1;
