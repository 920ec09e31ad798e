// Shared test helpers: real fds only, bounded waits.
import * as fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Backend, ErrEngineShutdown, Priority, close, pipe, write, type Poller } from '../src/index.js';

export { sleep };

/**
 * The kqueue backend emulated on Linux by libkqueue (npm run test:kqueue). Tests use it
 * only where libkqueue itself differs from the kernels' kqueue (docs/backends.md).
 */
export const libkqueue = Backend === 'kqueue' && process.platform === 'linux';

/** The number of fds this process has open. */
export function openFdCount(): number {
  return fs.readdirSync('/proc/self/fd').length - 1; // minus the directory's own fd
}

/** The fds of this process whose /proc link matches `pattern`. */
export function fdsMatching(pattern: RegExp): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc/self/fd')) {
    try {
      if (pattern.test(fs.readlinkSync(`/proc/self/fd/${name}`))) out.push(Number(name));
    } catch {
      // raced with a close
    }
  }
  return out;
}

/** Stops `poller.polling()` after `ms` by triggering a task that returns ErrEngineShutdown. */
export function stopAfter(poller: Poller, ms: number): NodeJS.Timeout {
  return setTimeout(() => {
    if (!poller.closed) void poller.trigger(Priority.High, () => ErrEngineShutdown);
  }, ms);
}

/** Rejects if `promise` does not settle within `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what = 'operation'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Calls `fn` and returns what it threw (failing when it does not throw). */
export function thrown(fn: () => unknown): any {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

/** Awaits `promise` and returns its rejection (failing when it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<any> {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

/**
 * `count` pipes whose read ends are registered (level-triggered) with `poller` and
 * readable: every fd, read and write ends alternating. `using fds = readyPipes(…)`
 * closes them (and whatever the test pushed onto the array) when the scope ends; if
 * opening one fails, those opened already are closed at once.
 */
export function readyPipes(poller: Poller, count: number): number[] & Disposable {
  const fds = Object.assign([] as number[], {
    [Symbol.dispose]: () => {
      for (const fd of fds.splice(0)) close(fd);
    },
  });
  try {
    for (let i = 0; i < count; i++) {
      const [r, w] = pipe();
      fds.push(r, w);
      poller.addRead({ fd: r });
      write(w, Buffer.from('x'));
    }
  } catch (e) {
    fds[Symbol.dispose]();
    throw e;
  }
  return fds;
}

/**
 * The command and arguments that start another node like this one with `args`:
 * process.execPath itself, unless NETPOLL_TEST_NODE (a JSON array: a launcher and its
 * arguments, the node binary last) says how. scripts/test-arm.sh sets it to its qemu-user
 * command, since qemu cannot follow a child's exec of an arm binary there (no binfmt_misc).
 */
export function nodeCommand(args: readonly string[]): [string, string[]] {
  const launcher = process.env.NETPOLL_TEST_NODE;
  if (launcher === undefined || launcher === '') return [process.execPath, [...args]];
  const [file, ...rest] = JSON.parse(launcher) as string[];
  return [file!, [...rest, ...args]];
}

/** Whether children start through a launcher (NETPOLL_TEST_NODE): not runnable as another user. */
export const nodeThroughLauncher = (process.env.NETPOLL_TEST_NODE ?? '') !== '';
