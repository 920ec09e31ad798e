// The waiter-thread path: a thread blocks in the backend's wait and hands each batch
// to the loop. libkqueue needs it (its descriptor cannot be watched); on epoll it is
// chosen with NETPOLL_WAITER_THREAD=1 or openPoller({ waiterThread: true }), which is
// how CI tests it.
//
// This file first runs the core poller scenarios and netpoll/server's again with every
// poller on a waiter thread (workers and child processes inherit the variable), then what
// only that path has: the thread's own lifetime.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { ErrEngineShutdown, Priority, isReadEvent, openPoller, socket } from '../src/index.js';
import { libkqueue, sleep, stopAfter, thrown, within } from './helpers.js';

process.env.NETPOLL_WAITER_THREAD = '1';
// Under libkqueue every file of the suite ran on the waiter thread already.
if (!libkqueue) {
  for (const scenarios of ['./poller.test.js', './iterate.test.js', './queue.test.js', './lifetime.test.js', './diagnostics.test.js']) require(scenarios);
  // netpoll/server on the waiter thread: its loops (the multicore ones in worker threads,
  // which inherit the variable) and its clients, with hostile handlers and peers.
  for (const scenarios of ['./server/server.test.js', './server/client.test.js', './server/multicore.test.js', './server/attack.test.js', './reliability/model-server.test.js']) require(scenarios);
}

const { close, pipe, write } = socket;
const hasProc = fs.existsSync('/proc/self/task');

/** How many threads of this process are waiter threads (they name themselves). */
function waiterThreads(): number {
  let n = 0;
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      if (fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() === 'netpoll-waiter') n++;
    } catch {
      // the thread ended while we looked
    }
  }
  return n;
}

/**
 * The waiter-thread count once pollers that earlier tests dropped without close() have
 * been collected (each joins its thread), so that none ends during the caller's test.
 */
async function settledWaiterThreads(): Promise<number> {
  let last = -1;
  for (let i = 0; i < 20; i++) {
    globalThis.gc?.();
    await sleep(10);
    const n = waiterThreads();
    if (n === last) return n;
    last = n;
  }
  return last;
}

/** Waits (at most `ms`) until `cond()` holds; false if it never did. */
async function eventually(cond: () => boolean, ms = 2000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(5)) if (cond()) return true;
  return cond();
}

test('openPoller({ waiterThread }) picks the path, NETPOLL_WAITER_THREAD=1 is the default, and a non-boolean is a TypeError', () => {
  const saved = process.env.NETPOLL_WAITER_THREAD;
  try {
    for (const [env, option, expected] of [
      ['1', undefined, true],
      ['1', false, libkqueue],
      [undefined, undefined, libkqueue],
      [undefined, true, true],
      ['0', undefined, libkqueue],
    ] as const) {
      if (env === undefined) delete process.env.NETPOLL_WAITER_THREAD;
      else process.env.NETPOLL_WAITER_THREAD = env;
      using poller = openPoller(option === undefined ? {} : { waiterThread: option });
      assert.is(poller.waiterThread, expected, `env ${env}, option ${option}`);
    }
  } finally {
    if (saved === undefined) delete process.env.NETPOLL_WAITER_THREAD;
    else process.env.NETPOLL_WAITER_THREAD = saved;
  }
  assert.is(thrown(() => openPoller({ waiterThread: 1 as unknown as boolean })).code, 'ERR_INVALID_ARG_TYPE');
  assert.is(thrown(() => openPoller(null as unknown as {})).code, 'ERR_INVALID_ARG_TYPE');
});

test('the thread starts with the first run, lives across runs, and close() joins it', async () => {
  if (!hasProc) return;
  const before = await settledWaiterThreads();
  const poller = openPoller({ waiterThread: true });
  assert.is(waiterThreads(), before, 'no thread for a poller that never polled');
  const [r, w] = pipe();
  try {
    poller.addRead({ fd: r });
    write(w, Buffer.from('x'));
    assert.is(await within(poller.polling(() => ErrEngineShutdown), 2000), ErrEngineShutdown);
    assert.is(waiterThreads(), before + 1);
    assert.is(await within(poller.polling(() => ErrEngineShutdown), 2000), ErrEngineShutdown);
    assert.is(waiterThreads(), before + 1, 'one thread per poller, not per run');
    poller.close();
    // Joined: pthread_join returns once the thread has exited, but its /proc/self/task
    // entry can outlive that by a moment (seen under ASan), so allow a short wait.
    assert.ok(await eventually(() => waiterThreads() === before, 500), 'joined by close()');
  } finally {
    poller.close();
    close(r);
    close(w);
  }
});

test('close() while the thread blocks in the kernel, during a run or after one, returns at once and joins it', async () => {
  const before = hasProc ? await settledWaiterThreads() : 0;
  // During a run: nothing is ever ready, so the thread sits in the wait.
  const a = openPoller({ waiterThread: true });
  const running = a.polling(() => undefined);
  await sleep(20);
  a.close();
  assert.is(await within(running, 2000), ErrEngineShutdown);
  // After a run stopped from outside a batch (an iterator's return()): the thread was
  // left in the wait with nothing to come.
  const b = openPoller({ waiterThread: true });
  const it = b.events();
  const next = it.next();
  await sleep(20);
  await it.return!();
  assert.equal(await within(next, 2000), { done: true, value: undefined });
  b.close();
  if (hasProc) assert.ok(await eventually(() => waiterThreads() === before, 500), 'both threads joined');
});

test('an edge the thread read while no run wanted it is delivered by the next run, not lost', async () => {
  using poller = openPoller({ waiterThread: true });
  const [r, w] = pipe();
  try {
    poller.addRead({ fd: r }, true);
    // Leave the thread in the kernel with no run to deliver to.
    const it = poller.events();
    const next = it.next();
    await sleep(20);
    await it.return!();
    await next;
    // One edge: the thread reads it (and holds it) while the poller is idle.
    write(w, Buffer.from('x'));
    await sleep(50);
    let events = 0;
    const timer = stopAfter(poller, 200);
    await within(poller.polling((fd, ev) => { if (fd === r && isReadEvent(ev)) events++; }), 2000);
    clearTimeout(timer);
    assert.is(events, 1, 'the edge, exactly once');
  } finally {
    close(r);
    close(w);
  }
});

test('events the thread holds for an fd deleted meanwhile never reach a callback', async () => {
  using poller = openPoller({ waiterThread: true });
  const [r1, w1] = pipe();
  const [r2, w2] = pipe();
  try {
    poller.addRead({ fd: r1 });
    const it = poller.events();
    const next = it.next();
    await sleep(20);
    await it.return!();
    await next;
    write(w1, Buffer.from('x'));
    await sleep(50); // the thread reads r1's event and holds it
    poller.delete(r1);
    close(r1);
    close(w1);
    poller.addRead({ fd: r2 });
    write(w2, Buffer.from('y'));
    const seen: number[] = [];
    const timer = stopAfter(poller, 150);
    await within(poller.polling((fd) => { seen.push(fd); }), 2000);
    clearTimeout(timer);
    assert.ok(seen.length > 0);
    assert.ok(seen.every((fd) => fd === r2), `events for ${[...new Set(seen)]}, expected only ${r2}`);
  } finally {
    close(r2);
    close(w2);
  }
});

test('a batch whose every event was deleted before the loop took it leaves no poller deaf: later events and tasks arrive', async () => {
  // The thread reads pipe 1's event and hands it over, but the loop is busy; then
  // delete(pipe 1) empties that batch before the loop takes it.
  using poller = openPoller({ waiterThread: true });
  const [r1, w1] = pipe();
  const [r2, w2] = pipe();
  try {
    poller.addRead({ fd: r1 });
    poller.addRead({ fd: r2 });
    const seen: number[] = [];
    const buf = Buffer.alloc(16);
    const running = poller.polling((fd) => {
      seen.push(fd);
      socket.read(fd, buf);
    });
    const task = new Promise((resolve, reject) => {
      setTimeout(() => {
        write(w1, Buffer.from('a'));
        for (const end = Date.now() + 100; Date.now() < end; );
        poller.delete(r1);
        write(w2, Buffer.from('b'));
        poller.trigger(Priority.High, () => 'ran').then(resolve, reject);
      }, 20);
    });
    assert.is(await within(task, 2000, 'the task'), 'ran');
    assert.ok(await eventually(() => seen.includes(r2), 2000), 'pipe 2\'s event arrived');
    assert.not.ok(seen.includes(r1), 'nothing of the deleted pipe');
    void poller.trigger(Priority.High, () => ErrEngineShutdown);
    assert.is(await within(running, 2000), ErrEngineShutdown);
  } finally {
    for (const fd of [r1, w1, r2, w2]) close(fd);
  }
});

test('an edge-triggered fd added while the thread waits in the kernel gets its first edge, once', async () => {
  using poller = openPoller({ waiterThread: true });
  const [r, w] = pipe();
  try {
    const seen: number[] = [];
    const running = poller.polling((fd) => {
      seen.push(fd);
    });
    await sleep(20); // the thread is in the kernel now, with nothing to report
    write(w, Buffer.from('x'));
    poller.addRead({ fd: r }, true);
    assert.ok(await eventually(() => seen.length > 0, 2000), 'the edge arrived');
    await sleep(50);
    assert.equal(seen, [r]);
    void poller.trigger(Priority.High, () => ErrEngineShutdown);
    await within(running, 2000);
  } finally {
    close(r);
    close(w);
  }
});

test('a slow iterator over edge-triggered fds gets every edge exactly once', async () => {
  using poller = openPoller({ waiterThread: true });
  const pipes = Array.from({ length: 4 }, () => pipe());
  try {
    for (const [r] of pipes) poller.addRead({ fd: r }, true);
    write(pipes[0][1], Buffer.from('x'));
    const seen: number[] = [];
    const iteration = (async () => {
      for await (const ev of poller) {
        seen.push(ev.fd);
        assert.ok(poller.bufferedEvents < pipes.length);
        // Each event brings the next edge while the consumer dawdles: the thread reads
        // it only when asked again, and holds it rather than drop it.
        if (seen.length < pipes.length) write(pipes[seen.length][1], Buffer.from('x'));
        await sleep(5);
        if (seen.length === pipes.length) break;
      }
    })();
    await within(iteration, 2000, 'the iteration');
    assert.equal(seen, pipes.map(([r]) => r));
    const timer = stopAfter(poller, 100);
    let more = 0;
    await within(poller.polling(() => { more++; }), 2000);
    clearTimeout(timer);
    assert.is(more, 0, 'no edge twice');
  } finally {
    for (const [r, w] of pipes) {
      close(r);
      close(w);
    }
  }
});

test('trigger() wakes a thread blocked in the kernel, and tasks run on the loop thread in order', async () => {
  using poller = openPoller({ waiterThread: true });
  const order: number[] = [];
  const running = poller.polling(() => undefined);
  await sleep(20);
  const results = await within(Promise.all([1, 2, 3].map((k) => poller.trigger(Priority.Low, (x: number) => (order.push(x), x * 10), k))), 2000);
  assert.equal(results, [10, 20, 30]);
  assert.equal(order, [1, 2, 3]);
  void poller.trigger(Priority.High, () => ErrEngineShutdown);
  assert.is(await within(running, 2000), ErrEngineShutdown);
});

test('a worker terminated while its poller\'s thread waits in the kernel exits, and the thread is joined', async () => {
  const before = hasProc ? await settledWaiterThreads() : 0;
  const indexJs = require.resolve('../src/index.js');
  const worker = new Worker(
    `const { parentPort } = require('node:worker_threads');
     const np = require(${JSON.stringify(indexJs)});
     const poller = np.openPoller({ waiterThread: true });
     const [r] = np.socket.pipe();
     poller.addRead({ fd: r });
     poller.polling(() => undefined);
     setTimeout(() => parentPort.postMessage('polling'), 20);`,
    { eval: true },
  );
  await within(new Promise((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); }), 5000, 'the worker');
  if (hasProc) assert.ok(await eventually(() => waiterThreads() === before + 1), 'the worker\'s thread runs');
  await within(worker.terminate(), 5000, 'terminate()');
  if (hasProc) assert.ok(await eventually(() => waiterThreads() === before), 'the worker\'s thread was joined');
});

test.run();
