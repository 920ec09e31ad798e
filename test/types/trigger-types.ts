// What the types of trigger(), handle() and RemotePoller.trigger() accept and refuse.
// test/types.test.ts compiles this file twice: as it is (no error may remain), and
// without its @ts-expect-error lines (each must then be an error, on its own line).
// It is compiled by the project's build too, and never run.
import { ErrEngineShutdown, Priority, connectPoller, type Poller, type PollerHandle, type RemotePoller } from '../../src/index.js';

declare const poller: Poller;

// ---- local trigger(): a task that takes a parameter needs one ----
void poller.trigger(Priority.High, () => 1);
void poller.trigger(Priority.High, (n: number) => n * 2, 21);
void poller.trigger(Priority.High, (n?: number) => n ?? 0);
// @ts-expect-error a task that takes a parameter needs one
void poller.trigger(Priority.High, (n: number) => n * 2);
// @ts-expect-error the param has the task's parameter type
void poller.trigger(Priority.High, (n: number) => n * 2, 'twenty-one');
export const counted: Promise<number> = poller.trigger(Priority.High, () => 1);
export const awaited: Promise<string> = poller.trigger(Priority.Low, async () => 'done');
// @ts-expect-error the promise carries the task's result type
export const mistyped: Promise<string> = poller.trigger(Priority.High, () => 1);

// ---- handle(): named tasks, at most one parameter each ----
const tasks = {
  register: (fd: number): void => void fd,
  stop: () => ErrEngineShutdown,
  add: (p: { a: number; b: number }) => p.a + p.b,
  greet: (name?: string) => `hello ${name ?? 'you'}`,
};
export type Tasks = typeof tasks;
const handle = poller.handle(tasks);
// @ts-expect-error tasks take at most one parameter
poller.handle({ two: (a: number, b: number) => a + b });
// @ts-expect-error tasks are functions
poller.handle({ notATask: 1 });

// ---- RemotePoller.trigger(): names and parameter types flow from handle() ----
const remote = connectPoller(handle);
void remote.trigger(Priority.High, 'register', 5);
void remote.trigger(Priority.High, 'stop');
void remote.trigger(Priority.High, 'greet');
void remote.trigger(Priority.High, 'greet', 'world');
export const sum: Promise<number> = remote.trigger(Priority.Low, 'add', { a: 1, b: 2 });
// @ts-expect-error register needs its fd
void remote.trigger(Priority.High, 'register');
// @ts-expect-error the fd is a number
void remote.trigger(Priority.High, 'register', '5');
// @ts-expect-error stop takes no parameter
void remote.trigger(Priority.High, 'stop', 1);
// @ts-expect-error the poller offers no such task
void remote.trigger(Priority.High, 'unregister', 5);
// @ts-expect-error the result type flows too
export const wrongSum: Promise<string> = remote.trigger(Priority.Low, 'add', { a: 1, b: 2 });
// @ts-expect-error priorities are Priority.High and Priority.Low
void remote.trigger(2, 'stop');

// A handle that arrived as data (workerData) gets its types back from the exported type.
const received = JSON.parse('{}') as PollerHandle<Tasks>;
void connectPoller(received).trigger(Priority.High, 'register', 1);
// @ts-expect-error and checks them as at home
void connectPoller(received).trigger(Priority.High, 'register', 'one');
// Untyped, any name and an optional param of any type pass (the poller checks at run time).
const untyped: RemotePoller = connectPoller(JSON.parse('{}') as PollerHandle);
void untyped.trigger(Priority.High, 'anything');
void untyped.trigger(Priority.High, 'anything', { x: 1 });
