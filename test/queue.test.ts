// trigger() and the two task queues, exactly as gnet runs them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import {
  ErrEngineShutdown,
  ErrPollerClosed,
  MaxAsyncTasksAtOneTime,
  MaxPollEventsCap,
  Priority,
  Backend,
  close,
  openPoller,
  pipe,
  write,
} from '../src/index.js';
import * as fc from 'fast-check';
import { TaskQueue } from '../src/queue.js';
import { fdsMatching, rejection, within } from './helpers.js';

test('a task queue counts the tasks it ran (thrown or not) through growth and wrap-around, and not the ones rejectAll() took', () => {
  const noop = (): void => {};
  const op = fc.oneof(
    fc.record({ kind: fc.constant('push' as const), n: fc.integer({ min: 1, max: 200 }) }),
    fc.record({ kind: fc.constant('run' as const), n: fc.integer({ min: 1, max: 200 }) }),
    fc.record({ kind: fc.constant('reject' as const) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
      const errors: unknown[] = [];
      const q = new TaskQueue((e) => errors.push(e));
      let ran = 0;
      let next = 0; // the number of the next task pushed
      const order: number[] = [];
      for (const o of ops) {
        if (o.kind === 'push') {
          for (let k = 0; k < o.n; k++) {
            const id = next++;
            const fn = (): void => {
              order.push(id);
              if (id % 7 === 0) throw new Error(`task ${id}`);
            };
            q.push(fn, undefined, noop, noop, Promise.resolve());
          }
        } else if (o.kind === 'run') {
          for (let k = 0; k < o.n && q.length > 0; k++, ran++) q.runFirst();
        } else {
          q.rejectAll(new Error('closed'));
        }
        assert.is(q.ran, ran);
      }
      assert.is(order.length, ran);
      for (let k = 1; k < order.length; k++) assert.ok(order[k]! > order[k - 1]!, 'FIFO');
      assert.is(errors.length, order.filter((id) => id % 7 === 0).length, 'onError heard every throw');
    }),
    { numRuns: 300 },
  );
});

test('tasks triggered before polling run, in order, when polling starts; their promises resolve with the results', async () => {
  using poller = openPoller();
  const order: number[] = [];
  const promises = [1, 2, 3].map((i) => poller.trigger(Priority.High, (x: number) => { order.push(x); return x * 10; }, i));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(order, [], 'nothing runs before polling');
  const stop = poller.trigger(Priority.Low, () => ErrEngineShutdown);
  assert.is(await within(poller.polling(() => undefined), 2000), ErrEngineShutdown);
  assert.equal(order, [1, 2, 3]);
  assert.equal(await Promise.all(promises), [10, 20, 30]);
  assert.is(await stop, ErrEngineShutdown, 'the stopping task\'s promise resolves with its result');
});

test('a task that throws rejects its own promise and the loop goes on', async () => {
  using poller = openPoller();
  const boom = new Error('task failed');
  const bad = poller.trigger(Priority.High, () => { throw boom; });
  const good = poller.trigger(Priority.High, () => 'fine');
  void poller.trigger(Priority.High, () => ErrEngineShutdown);
  assert.is(await within(poller.polling(() => undefined), 2000), ErrEngineShutdown);
  assert.is(await rejection(bad), boom);
  assert.is(await good, 'fine');
});

test('a task returning a promise resolves trigger() with its value', async () => {
  using poller = openPoller();
  const p = poller.trigger(Priority.High, async (x: string) => `${x}!`, 'async');
  void poller.trigger(Priority.High, () => ErrEngineShutdown);
  await within(poller.polling(() => undefined), 2000);
  assert.is(await p, 'async!');
});

test('a task returning an Error that wraps ErrEngineShutdown stops polling with it', async () => {
  using poller = openPoller();
  const wrapped = new Error('stop', { cause: ErrEngineShutdown });
  void poller.trigger(Priority.Low, () => wrapped);
  assert.is(await within(poller.polling(() => undefined), 2000), wrapped);
});

test('trigger() from inside an event callback runs in the same turn, after the batch', async () => {
  using poller = openPoller();
  const [r, w] = pipe();
  try {
    poller.addRead({ fd: r });
    write(w, Buffer.from('x'));
    const log: string[] = [];
    await within(
      poller.polling(() => {
        log.push('event');
        if (log.length === 1) void poller.trigger(Priority.High, () => { log.push('task'); return ErrEngineShutdown; });
      }),
      2000,
    );
    // The waker fires with the next wait: the level-triggered fd and the waker arrive together,
    // and gnet runs the events of a batch before its tasks.
    assert.equal(log, ['event', 'event', 'task']);
  } finally {
    close(r);
    close(w);
  }
});

test('low priority goes to the urgent queue until it holds MaxPollEventsCap tasks, then to the normal queue; each round runs every urgent task and at most MaxAsyncTasksAtOneTime normal ones, interleaved with I/O', async () => {
  using poller = openPoller();
  const [r, w] = pipe();
  try {
    const log: string[] = [];
    // Fill the urgent queue to the threshold with low-priority tasks: below it they are urgent too.
    for (let i = 0; i < MaxPollEventsCap; i++) void poller.trigger(Priority.Low, () => { log.push('u'); });
    const extra = MaxAsyncTasksAtOneTime + 44;
    for (let i = 0; i < extra; i++) void poller.trigger(Priority.Low, () => { log.push('n'); });
    // A high-priority task always goes to the urgent queue, even past the threshold.
    void poller.trigger(Priority.High, () => { log.push('H'); });
    poller.addRead({ fd: r });
    write(w, Buffer.from('always readable'));
    let ios = 0;
    await within(
      poller.polling(() => {
        log.push('io');
        if (++ios === 4) return ErrEngineShutdown;
      }),
      5000,
    );
    const runs: string[] = [];
    for (const x of log) {
      const last = runs[runs.length - 1];
      if (last !== undefined && last.startsWith(x + '*')) runs[runs.length - 1] = `${x}*${Number(last.split('*')[1]) + 1}`;
      else runs.push(`${x}*1`);
    }
    assert.equal(runs, [
      'io*1',
      `u*${MaxPollEventsCap}`,
      'H*1',
      `n*${MaxAsyncTasksAtOneTime}`,
      'io*1',
      `n*${extra - MaxAsyncTasksAtOneTime}`,
      'io*2',
    ]);
  } finally {
    close(r);
    close(w);
  }
});

test('urgent tasks queued by urgent tasks run in the same round', async () => {
  using poller = openPoller();
  const log: string[] = [];
  void poller.trigger(Priority.High, () => {
    log.push('a');
    void poller.trigger(Priority.High, () => { log.push('b'); });
  });
  void poller.trigger(Priority.High, () => { log.push('c'); });
  const [r, w] = pipe();
  try {
    poller.addRead({ fd: r });
    write(w, Buffer.from('x'));
    await within(poller.polling(() => { log.push('io'); if (log.filter((x) => x === 'io').length === 2) return ErrEngineShutdown; }), 2000);
    assert.equal(log.slice(0, 5), ['io', 'a', 'c', 'b', 'io']);
  } finally {
    close(r);
    close(w);
  }
});

test('1000 triggers arm one wake; on the loop path none writes the eventfd, on the waiter-thread path one does', async () => {
  if (Backend !== 'epoll') return; // reads the eventfd counter
  const before = new Set(fdsMatching(/eventfd/));
  using poller = openPoller();
  const efd = fdsMatching(/eventfd/).filter((fd) => !before.has(fd));
  assert.is(efd.length, 1, 'the poller owns one eventfd');
  const counter = Buffer.alloc(8);
  const readCounter = (): bigint => {
    try {
      fs.readSync(efd[0], counter, 0, 8, null);
      return counter.readBigUInt64LE(0);
    } catch (e) {
      if ((e as { code: string }).code === 'EAGAIN') return 0n;
      throw e;
    }
  };
  const results = [];
  for (let i = 0; i < 1000; i++) results.push(poller.trigger(i % 2 ? Priority.Low : Priority.High, () => i));
  // On the loop's own thread the round is armed without a syscall; a waiter thread is in
  // the kernel, and only the waker reaches it.
  assert.is(readCounter(), poller.waiterThread ? 1n : 0n, '1000 triggers, at most one eventfd write');
  void poller.trigger(Priority.High, () => ErrEngineShutdown);
  assert.is(readCounter(), 0n, 'still pending: no second write');
  // polling() re-arms the wake for queued tasks when it starts.
  await within(poller.polling(() => undefined), 2000);
  assert.is((await Promise.all(results)).length, 1000);
});

test('a task triggered by a timer runs in the same loop turn, after that turn\'s I/O', async () => {
  using poller = openPoller();
  const [r, w] = pipe();
  try {
    const log: string[] = [];
    poller.addRead({ fd: r });
    const running = poller.polling(() => {
      log.push('io');
      if (log.includes('task')) return ErrEngineShutdown;
    });
    await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(log, [], 'nothing readable yet');
    await new Promise<void>((resolve) =>
      setTimeout(() => {
        write(w, Buffer.from('x'));
        void poller.trigger(Priority.High, () => { log.push('task'); });
        resolve();
      }, 1),
    );
    await within(running, 2000);
    assert.is(log[0], 'io', 'the I/O that was ready comes first');
    // A waiter thread may return from the kernel with the pipe alone (the timer writes it
    // before triggering), and bring the wake with the next wait: the task runs a turn later.
    if (!poller.waiterThread) assert.equal(log.slice(0, 2), ['io', 'task'], 'then the task, in the same turn');
  } finally {
    close(r);
    close(w);
  }
});

test('close() rejects pending trigger() promises with ErrPollerClosed, and ignored ones do not crash the process', async () => {
  const poller = openPoller();
  const pending = poller.trigger(Priority.High, () => 'never');
  void poller.trigger(Priority.Low, () => 'ignored'); // fire-and-forget, as in gnet
  poller.close();
  assert.is(await rejection(pending), ErrPollerClosed);
  await new Promise((r) => setTimeout(r, 10)); // an unhandled rejection would fail this file
});

test('4,000 tasks triggered while polling all run, in FIFO order per queue', async () => {
  using poller = openPoller();
  const seen: number[] = [];
  const running = poller.polling(() => undefined);
  const all: Promise<number>[] = [];
  for (let i = 0; i < 4000; i++) all.push(poller.trigger(Priority.High, (x: number) => { seen.push(x); return x; }, i));
  const values = await within(Promise.all(all), 3000);
  assert.is(values.length, 4000);
  assert.equal(seen, values);
  poller.close();
  assert.is(await running, ErrEngineShutdown);
});

test.run();
