// Poller#stats() and the `netpoll:poller` diagnostics channel, with real pipes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as diagnosticsChannel from 'node:diagnostics_channel';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import {
  DiagnosticsChannel,
  ErrEngineShutdown,
  InitPollEventsCap,
  MaxAsyncTasksAtOneTime,
  MaxPollEventsCap,
  MinPollEventsCap,
  Priority,
  close,
  openPoller,
  pipe,
  write,
  type PollEventHandler,
  type Poller,
  type PollerDiagnostic,
} from '../src/index.js';
import { readyPipes, rejection, stopAfter, within } from './helpers.js';

/** Records every message published on the channel until disposed. */
function record(): PollerDiagnostic[] & Disposable {
  const messages = Object.assign([] as PollerDiagnostic[], {
    [Symbol.dispose]: () => diagnosticsChannel.unsubscribe(DiagnosticsChannel, onMessage),
  });
  const onMessage = (m: unknown): void => {
    messages.push(m as PollerDiagnostic);
  };
  diagnosticsChannel.subscribe(DiagnosticsChannel, onMessage);
  return messages;
}

/** The messages about `poller`, as `type` or `type:detail` strings (resizes left out). */
function steps(messages: readonly PollerDiagnostic[], poller: Poller): string[] {
  return messages
    .filter((m) => m.poller === poller && m.type !== 'resize')
    .map((m) => {
      switch (m.type) {
        case 'start': return `start:${m.mode}`;
        case 'stop': return `stop:${m.mode}:${m.reason}`;
        case 'error': return `error:${m.source}`;
        default: return m.type;
      }
    });
}

function stopOf(messages: readonly PollerDiagnostic[]): Extract<PollerDiagnostic, { type: 'stop' }> {
  const stops = messages.filter((m) => m.type === 'stop');
  assert.is(stops.length, 1, 'one stop message');
  return stops[0] as Extract<PollerDiagnostic, { type: 'stop' }>;
}

// ---- stats() ----

test('a new poller\'s stats are all zero, with the initial event-list size and no batch yet', () => {
  using poller = openPoller();
  const s = poller.stats();
  assert.equal(s, {
    events: 0,
    batches: 0,
    tasks: { urgent: 0, normal: 0 },
    pendingTasks: { urgent: 0, normal: 0, remote: 0 },
    wakes: 0,
    eventListSize: InitPollEventsCap,
    registered: 0,
    lastBatchAt: null,
  });
  assert.is.not(poller.stats(), s, 'a fresh object each call');
  assert.equal(JSON.parse(JSON.stringify(s)), s, 'plain data');
});

test('registered counts the fds added through the poller: mod and failed calls leave it, delete takes one away, close() makes it 0', () => {
  const poller = openPoller();
  const [r1, w1] = pipe();
  const [r2, w2] = pipe();
  try {
    poller.addRead({ fd: r1 });
    poller.addWrite({ fd: w1 });
    poller.addRead({ fd: r2 });
    assert.is(poller.stats().registered, 3);
    poller.modReadWrite({ fd: r1 });
    assert.throws(() => poller.addRead({ fd: r1 }), /EEXIST/);
    assert.throws(() => poller.modRead({ fd: w2 }), /ENOENT/);
    assert.is(poller.stats().registered, 3);
    poller.delete(w1);
    assert.throws(() => poller.delete(w1), /ENOENT/);
    assert.is(poller.stats().registered, 2);
    poller.close();
    assert.is(poller.stats().registered, 0);
  } finally {
    poller.close();
    for (const fd of [r1, w1, r2, w2]) close(fd);
  }
});

test('events and batches count what each batch delivered, and lastBatchAt is the performance.now() time of the last batch, null until the first', async () => {
  using poller = openPoller();
  using _fds = readyPipes(poller, 3); // level-triggered and never read: every batch reports all three
  const before = performance.now();
  let calls = 0;
  let batches = 0;
  let inBatch = false;
  let lastCallbackAt = 0;
  const running = poller.polling(() => {
    calls++;
    lastCallbackAt = performance.now();
    if (inBatch) return;
    inBatch = true;
    queueMicrotask(() => {
      // Microtasks run after each batch: one per batch.
      inBatch = false;
      if (++batches === 5) void poller.trigger(Priority.High, () => ErrEngineShutdown);
    });
  });
  assert.is(poller.stats().lastBatchAt, null, 'no batch before the loop turns');
  assert.is(await within(running, 5000), ErrEngineShutdown);
  const s = poller.stats();
  assert.is(s.batches, batches);
  assert.is(s.batches, 6, 'five batches, then the one that carried the stop task');
  assert.is(s.events, calls);
  assert.is(s.events, 3 * s.batches);
  assert.is(s.wakes, 1);
  assert.equal(s.tasks, { urgent: 1, normal: 0 });
  assert.ok(s.lastBatchAt !== null && s.lastBatchAt > before, `lastBatchAt ${s.lastBatchAt} after polling() began at ${before}`);
  // Taken just before the batch went to JavaScript: a moment before its callbacks ran.
  assert.ok(s.lastBatchAt <= lastCallbackAt + 0.05 && s.lastBatchAt > lastCallbackAt - 50, `lastBatchAt ${s.lastBatchAt}, last callback at ${lastCallbackAt}`);
  poller.close();
  const after = poller.stats().lastBatchAt!;
  assert.ok(Math.abs(after - s.lastBatchAt) < 0.05, `after close() lastBatchAt is still the last batch's time: ${after} vs ${s.lastBatchAt}`);
});

test('events counts an event that a callback\'s delete() dropped later in the same batch', async () => {
  using poller = openPoller();
  using fds = readyPipes(poller, 2);
  let calls = 0;
  await within(
    poller.polling((fd) => {
      calls++;
      poller.delete(fd === fds[0] ? fds[2]! : fds[0]!); // the other one, later in this batch
      return ErrEngineShutdown;
    }),
    2000,
  );
  assert.is(calls, 1);
  const s = poller.stats();
  assert.is(s.batches, 1);
  assert.is(s.events, 2, 'both were read from the kernel');
  assert.is(s.registered, 1);
});

test('tasks count by the queue they ran from (a task that threw too), pendingTasks what waits, and one wake per round', async () => {
  const poller = openPoller();
  const low = MaxAsyncTasksAtOneTime + 44; // more than one round's share of the normal queue
  const threw = rejection(
    poller.trigger(Priority.High, () => {
      throw new Error('task failed');
    }),
  );
  for (let i = 1; i < MaxPollEventsCap; i++) void poller.trigger(Priority.High, () => undefined);
  for (let i = 0; i < low; i++) void poller.trigger(Priority.Low, () => (i === low - 1 ? ErrEngineShutdown : undefined));
  let s = poller.stats();
  assert.equal(s.pendingTasks, { urgent: MaxPollEventsCap, normal: low, remote: 0 });
  assert.equal(s.tasks, { urgent: 0, normal: 0 }, 'nothing runs until the poller polls');
  assert.is(s.wakes, 0);
  assert.is(await within(poller.polling(), 5000), ErrEngineShutdown);
  assert.is((await threw).message, 'task failed');
  s = poller.stats();
  assert.equal(s.tasks, { urgent: MaxPollEventsCap, normal: low });
  assert.equal(s.pendingTasks, { urgent: 0, normal: 0, remote: 0 });
  assert.is(s.wakes, 2, 'the first round left normal tasks, so it woke the loop once more');
  assert.is(s.batches, 2);
  assert.is(s.events, 0);
  // Tasks still queued at close() are rejected, not run.
  for (let i = 0; i < 5; i++) void poller.trigger(Priority.High, () => undefined);
  assert.is(poller.stats().pendingTasks.urgent, 5);
  poller.close();
  s = poller.stats();
  assert.equal(s.pendingTasks, { urgent: 0, normal: 0, remote: 0 });
  assert.equal(s.tasks, { urgent: MaxPollEventsCap, normal: low });
});

test('eventListSize follows the event list as it grows past InitPollEventsCap ready fds and shrinks back when quiet, and each change is one resize message', async () => {
  using messages = record();
  using poller = openPoller();
  const count = InitPollEventsCap + InitPollEventsCap / 2;
  using fds = readyPipes(poller, count);
  const seen = new Set<number>();
  const sizes: number[] = [];
  await within(
    poller.polling((fd) => {
      if (seen.size === 0 || sizes.at(-1) !== poller.stats().eventListSize) sizes.push(poller.stats().eventListSize);
      seen.add(fd);
      if (seen.size === count) return ErrEngineShutdown;
    }),
    5000,
  );
  // The first wait filled the list: the batch that carried it came with the doubled size.
  assert.equal(sizes, [2 * InitPollEventsCap]);
  assert.is(poller.stats().eventListSize, poller.eventListSize);
  for (let i = 0; i < fds.length; i += 2) poller.delete(fds[i]!);
  const [r, w] = pipe();
  fds.push(r, w);
  poller.addRead({ fd: r });
  write(w, Buffer.from('x'));
  let turns = 0;
  await within(poller.polling(() => (++turns === 12 ? ErrEngineShutdown : undefined)), 5000);
  assert.is(poller.stats().eventListSize, MinPollEventsCap);
  assert.is(poller.stats().eventListSize, poller.eventListSize);
  const expected: [number, number][] = [[InitPollEventsCap, 2 * InitPollEventsCap]];
  for (let size = 2 * InitPollEventsCap; size > MinPollEventsCap; size /= 2) expected.push([size, size / 2]);
  const resizes = messages.filter((m) => m.type === 'resize' && m.poller === poller) as Extract<PollerDiagnostic, { type: 'resize' }>[];
  assert.equal(resizes.map((m) => [m.from, m.to]), expected);
  poller.close();
  assert.is(poller.stats().eventListSize, MinPollEventsCap, 'the last size, after close()');
});

test('tasks triggered from another thread wait in pendingTasks.remote until a round takes them, then count in tasks, with their wakes', async () => {
  using poller = openPoller();
  const handle = poller.handle({ add: (x: number) => x + 1, stop: () => ErrEngineShutdown });
  const count = 20;
  const w = new Worker(
    `const np = require(${JSON.stringify(path.resolve(__dirname, '..', 'src', 'index.js'))});
     const { parentPort, workerData } = require('node:worker_threads');
     const remote = np.connectPoller(workerData.handle);
     const results = [];
     for (let i = 0; i < ${count}; i++) results.push(remote.trigger(np.Priority.Low, 'add', i));
     parentPort.postMessage('queued');
     Promise.all(results).then(async (r) => {
       parentPort.postMessage(r.length);
       await remote.trigger(np.Priority.High, 'stop');
     });`,
    { eval: true, workerData: { handle } },
  );
  const messages: unknown[] = [];
  w.on('message', (m) => messages.push(m));
  const exited = new Promise((resolve) => w.once('exit', resolve));
  // Not polling: the worker's triggers wait in the poller's request queue.
  for (let i = 0; i < 200 && poller.stats().pendingTasks.remote < count; i++) await new Promise((r) => setTimeout(r, 5));
  let s = poller.stats();
  assert.equal(s.pendingTasks, { urgent: 0, normal: 0, remote: count });
  assert.equal(s.tasks, { urgent: 0, normal: 0 });
  assert.is(await within(poller.polling(), 5000), ErrEngineShutdown);
  s = poller.stats();
  assert.equal(s.pendingTasks, { urgent: 0, normal: 0, remote: 0 });
  assert.equal(s.tasks, { urgent: count + 1, normal: 0 }, 'every remote task ran from the urgent queue (it was far from full)');
  assert.ok(s.wakes >= 2 && s.wakes === s.batches, `one wake for the ${count} queued tasks, one for the stop: ${s.wakes} wakes, ${s.batches} batches`);
  await within(exited, 5000);
  assert.ok(messages.includes(count), `the worker got its ${count} results: ${messages}`);
});

// ---- the diagnostics channel ----

test('the channel is named netpoll:poller', () => {
  assert.is(DiagnosticsChannel, 'netpoll:poller');
});

test('open, start, stop and close are published for polling stopped by a callback, with the stop error, before polling() settles', async () => {
  using messages = record();
  const poller = openPoller();
  using _fds = readyPipes(poller, 1);
  const order: string[] = [];
  const running = poller.polling(() => ErrEngineShutdown);
  assert.equal(steps(messages, poller), ['open', 'start:polling']);
  const open = messages.find((m) => m.poller === poller)!;
  assert.equal(Object.keys(open).sort(), ['poller', 'type']);
  const sub = (m: unknown): void => {
    if ((m as PollerDiagnostic).type === 'stop') order.push('stop message');
  };
  diagnosticsChannel.subscribe(DiagnosticsChannel, sub);
  try {
    await within(running.then(() => order.push('polling() resolved')), 2000);
  } finally {
    diagnosticsChannel.unsubscribe(DiagnosticsChannel, sub);
  }
  assert.equal(order, ['stop message', 'polling() resolved']);
  const stop = stopOf(messages);
  assert.equal(stop, { type: 'stop', poller, mode: 'polling', reason: 'stop', error: ErrEngineShutdown });
  poller.close();
  assert.equal(steps(messages, poller), ['open', 'start:polling', 'stop:polling:stop', 'close']);
  poller.close();
  assert.is(steps(messages, poller).length, 4, 'a second close() publishes nothing');
});

test('a task that stops polling is a stop with the error it returned', async () => {
  using messages = record();
  using poller = openPoller();
  const stopWith = new Error('done', { cause: ErrEngineShutdown });
  const running = poller.polling();
  void poller.trigger(Priority.Low, () => stopWith);
  assert.is(await within(running, 2000), stopWith);
  assert.equal(stopOf(messages), { type: 'stop', poller, mode: 'polling', reason: 'stop', error: stopWith });
});

test('close() while polling publishes a close stop (with ErrEngineShutdown, what polling() resolves with), then close', async () => {
  using messages = record();
  const poller = openPoller();
  const running = poller.polling();
  setTimeout(() => poller.close(), 10);
  assert.is(await within(running, 2000), ErrEngineShutdown);
  assert.equal(steps(messages, poller), ['open', 'start:polling', 'stop:polling:close', 'close']);
  assert.is(stopOf(messages).error, ErrEngineShutdown);
});

test('a callback that throws is an error message (source callback) and a throw stop, both with what it threw', async () => {
  using messages = record();
  using poller = openPoller();
  using _fds = readyPipes(poller, 1);
  const boom = new Error('boom');
  const err = await rejection(
    within(
      poller.polling(() => {
        throw boom;
      }),
      2000,
    ),
  );
  assert.is(err, boom);
  assert.equal(steps(messages, poller), ['open', 'start:polling', 'error:callback', 'stop:polling:throw']);
  const error = messages.find((m) => m.type === 'error');
  assert.equal(error, { type: 'error', poller, source: 'callback', error: boom });
  assert.is(stopOf(messages).error, boom);
});

test('a callback returning a value that is neither nothing nor a stop error is an error message (source return), and polling goes on', async () => {
  using messages = record();
  using poller = openPoller();
  const [r, w] = pipe();
  try {
    const bad = new Error('bad client');
    const hostile = new Proxy({}, { get() { throw new Error('trap'); }, getPrototypeOf() { throw new Error('trap'); } });
    const returned: unknown[] = [bad, 7, null, undefined, Promise.resolve(), hostile];
    let n = 0;
    poller.addRead({
      fd: r,
      // What the type refuses (test/types/handler-types.ts), as untyped code would return it.
      callback: (() => (n < returned.length ? returned[n++] : ErrEngineShutdown)) as unknown as PollEventHandler,
    });
    write(w, Buffer.from('x'));
    assert.is(await within(poller.polling(), 2000), ErrEngineShutdown);
    assert.is(n, returned.length, 'every event went on to the next');
    const errors = messages.filter((m) => m.poller === poller && m.type === 'error');
    assert.equal(
      errors.map((m) => (m as { source: string }).source),
      ['return', 'return', 'return', 'return'],
      'null and undefined are nothing; a value whose traps throw is reported too',
    );
    const reported = errors.map((m) => (m as { error: unknown }).error);
    assert.ok(reported[0] === bad && reported[1] === 7 && reported[2] === returned[4] && reported[3] === hostile);
    assert.equal(steps(messages, poller), ['open', 'start:polling', 'error:return', 'error:return', 'error:return', 'error:return', 'stop:polling:stop']);
  } finally {
    close(r);
    close(w);
  }
});

test('with no subscriber, returned values are ignored as before and polling goes on', async () => {
  using poller = openPoller();
  using _fds = readyPipes(poller, 1);
  let n = 0;
  const err = await within(poller.polling((() => (++n < 3 ? new Error('ignored') : ErrEngineShutdown)) as unknown as PollEventHandler), 2000);
  assert.is(err, ErrEngineShutdown);
  assert.is(n, 3);
});

test('a callback that closes the poller and then throws is still an error message, though no run is left to stop', async () => {
  using messages = record();
  const poller = openPoller();
  using _fds = readyPipes(poller, 1);
  const boom = new Error('thrown after close');
  const uncaught = new Promise<unknown>((resolve) => process.once('uncaughtException', resolve));
  void poller.polling(() => {
    poller.close();
    throw boom;
  });
  assert.is(await within(uncaught, 2000), boom);
  assert.equal(steps(messages, poller), ['open', 'start:polling', 'stop:polling:close', 'close', 'error:callback']);
});

test('an event for an fd without a callback is an error stop (ERR_NO_CALLBACK), not a callback error', async () => {
  using messages = record();
  using poller = openPoller();
  using _fds = readyPipes(poller, 1);
  const err = await rejection(within(poller.polling(), 2000));
  assert.is(err.code, 'ERR_NO_CALLBACK');
  assert.equal(steps(messages, poller), ['open', 'start:polling', 'stop:polling:error']);
  assert.is(stopOf(messages).error, err);
});

test('poller.fd closed behind the poller\'s back is an error stop with the EBADF polling() rejects with', async () => {
  using messages = record();
  using poller = openPoller();
  using _fds = readyPipes(poller, 1);
  const running = poller.polling(() => ErrEngineShutdown);
  fs.closeSync(poller.fd);
  const err = await rejection(within(running, 2000));
  assert.is(err.code, 'EBADF');
  assert.equal(steps(messages, poller), ['open', 'start:polling', 'stop:polling:error']);
  assert.is(stopOf(messages).error, err);
});

test('a task that throws is an error message (source task) and the loop goes on', async () => {
  using messages = record();
  using poller = openPoller();
  const boom = new Error('task boom');
  const running = poller.polling();
  const failed = rejection(
    poller.trigger(Priority.High, () => {
      throw boom;
    }),
  );
  assert.is(await failed, boom);
  assert.equal(steps(messages, poller), ['open', 'start:polling', 'error:task']);
  assert.equal(messages.find((m) => m.type === 'error'), { type: 'error', poller, source: 'task', error: boom });
  assert.is(await poller.trigger(Priority.High, () => 7), 7, 'still polling');
  void poller.trigger(Priority.High, () => ErrEngineShutdown);
  await within(running, 2000);
  assert.equal(steps(messages, poller), ['open', 'start:polling', 'error:task', 'stop:polling:stop']);
});

test('iteration publishes start and stop with the reason it ended: break, a stop task, abort, close', async () => {
  using messages = record();
  using ready = openPoller();
  using _fds = readyPipes(ready, 1);
  for await (const _ev of ready) break;
  assert.equal(steps(messages, ready), ['open', 'start:iteration', 'stop:iteration:break']);
  assert.is(stopOf(messages).error, undefined);
  messages.length = 0;

  // Nothing is ready on this one: each next() below waits until the iteration ends.
  using poller = openPoller();
  const it = poller.events();
  const stopped = it.next();
  void poller.trigger(Priority.High, () => ErrEngineShutdown);
  assert.equal(await within(stopped, 2000), { done: true, value: ErrEngineShutdown });
  assert.equal(steps(messages, poller), ['open', 'start:iteration', 'stop:iteration:stop']);
  assert.is(stopOf(messages).error, ErrEngineShutdown);
  messages.length = 0;

  const ac = new AbortController();
  const aborted = poller.events({ signal: ac.signal }).next();
  setTimeout(() => ac.abort(), 5);
  const err = await rejection(within(aborted, 2000));
  assert.is(err.name, 'AbortError');
  assert.equal(steps(messages, poller), ['start:iteration', 'stop:iteration:abort']);
  assert.is(stopOf(messages).error, err);
  messages.length = 0;

  const closing = poller.events().next();
  setTimeout(() => poller.close(), 5);
  assert.equal(await within(closing, 2000), { done: true, value: undefined });
  assert.equal(steps(messages, poller), ['start:iteration', 'stop:iteration:close', 'close']);
  assert.is(stopOf(messages).error, undefined);
});

for (const waiterThread of [false, true]) {
  test(`close() inside the start message ends an iteration and polling() cleanly, stop reason close (waiterThread: ${waiterThread})`, async () => {
    const closeOnStart = (m: unknown): void => {
      const msg = m as PollerDiagnostic;
      if (msg.type === 'start') msg.poller.close();
    };
    using messages = record();
    diagnosticsChannel.subscribe(DiagnosticsChannel, closeOnStart);
    try {
      const poller = openPoller({ waiterThread });
      const got: unknown[] = [];
      for await (const ev of poller) got.push(ev); // ends, done: no EBADF, no uv_thread_create
      assert.equal(got, []);
      assert.equal(steps(messages, poller), ['open', 'start:iteration', 'stop:iteration:close', 'close']);
      assert.is(stopOf(messages).error, undefined);
      assert.is(poller.running, false);
      assert.is(poller.closed, true);
      messages.length = 0;

      const polled = openPoller({ waiterThread });
      assert.is(await within(polled.polling(() => {}), 2000), ErrEngineShutdown);
      assert.equal(steps(messages, polled), ['open', 'start:polling', 'stop:polling:close', 'close']);
    } finally {
      diagnosticsChannel.unsubscribe(DiagnosticsChannel, closeOnStart);
    }
  });
}

test('nothing is published per event or per task: a long run is one start, one stop and the list\'s resizes', async () => {
  using messages = record();
  using poller = openPoller();
  using _fds = readyPipes(poller, 3);
  let events = 0;
  const timer = stopAfter(poller, 100);
  await within(
    poller.polling(() => {
      if (++events % 3 === 0) void poller.trigger(Priority.Low, () => undefined);
    }),
    5000,
  );
  clearTimeout(timer);
  const { tasks } = poller.stats();
  assert.ok(events > 30 && tasks.urgent > 10, `${events} events, ${tasks.urgent} tasks`);
  assert.equal(steps(messages, poller), ['open', 'start:polling', 'stop:polling:stop']);
  const resizes = messages.filter((m) => m.type === 'resize').length;
  assert.is(resizes, Math.log2(InitPollEventsCap / MinPollEventsCap), 'three events a batch: the list shrinks to the minimum, once per halving');
});

test('with no subscriber no message is built: the poller checks hasSubscribers, through a subscribe/unsubscribe cycle', async () => {
  const ch = diagnosticsChannel.channel(DiagnosticsChannel);
  const published: unknown[] = [];
  const original = Object.getOwnPropertyDescriptor(ch, 'publish');
  // Every message goes through the channel's publish(): counting its calls counts the messages built.
  Object.defineProperty(ch, 'publish', { configurable: true, writable: true, value: (m: unknown) => published.push(m) });
  // Every kind of message: open, start, a task's error, a resize, stop, close.
  const lifecycle = async (): Promise<void> => {
    const poller = openPoller();
    const failed = rejection(
      poller.trigger(Priority.High, () => {
        throw new Error('x');
      }),
    );
    void poller.trigger(Priority.High, () => ErrEngineShutdown);
    await within(poller.polling(), 2000);
    await failed;
    poller.close();
  };
  try {
    assert.is(ch.hasSubscribers, false, 'no subscriber left by earlier tests');
    await lifecycle();
    assert.is(published.length, 0, 'nothing built without a subscriber');
    const onMessage = (): void => {};
    diagnosticsChannel.subscribe(DiagnosticsChannel, onMessage);
    await lifecycle();
    // (No resize: a round of tasks alone is no kernel wait.)
    assert.equal(published.map((m) => (m as PollerDiagnostic).type).filter((t) => t !== 'resize'), ['open', 'start', 'error', 'stop', 'close']);
    diagnosticsChannel.unsubscribe(DiagnosticsChannel, onMessage);
    published.length = 0;
    await lifecycle();
    assert.is(published.length, 0, 'nothing built once the subscriber left');
  } finally {
    if (original) Object.defineProperty(ch, 'publish', original);
    else delete (ch as { publish?: unknown }).publish;
  }
});

test.run();
