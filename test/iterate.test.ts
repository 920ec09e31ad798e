// for await iteration: PollEvents, batches, backpressure, AbortSignal, using,
// exclusivity with polling(), tasks and async context.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as net from 'node:net';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { AsyncLocalStorage } from 'node:async_hooks';
import {
  ErrEngineShutdown,
  ErrPollerClosed,
  MaxPollEventsCap,
  PollEvent,
  Priority,
  close,
  dialTCP,
  isReadEvent,
  openPoller,
  pipe,
  read,
  write,
} from '../src/index.js';
import { readyPipes, rejection, sleep, thrown, within } from './helpers.js';

test('for await yields PollEvents with the values a polling() callback gets; break stops polling and the poller polls again', async () => {
  using poller = openPoller();
  const [r, w] = pipe();
  try {
    poller.addRead({ fd: r });
    write(w, Buffer.from('x'));
    const got: PollEvent[] = [];
    for await (const ev of poller) {
      got.push(ev);
      if (got.length === 3) break;
    }
    assert.is(got.length, 3, 'level-triggered: reported again on each pull');
    for (const ev of got) {
      assert.instance(ev, PollEvent);
      assert.is(ev.fd, r);
      assert.ok(isReadEvent(ev.event));
      assert.is(ev.flags, 0);
    }
    assert.is(poller.running, false);
    assert.is(poller.closed, false);
    assert.is(await within(poller.polling(() => ErrEngineShutdown), 2000), ErrEngineShutdown);
    // and iterate again
    for await (const ev of poller.events()) {
      assert.is(ev.fd, r);
      break;
    }
  } finally {
    close(r);
    close(w);
  }
});

test('batch: true yields one array per kernel wait', async () => {
  using poller = openPoller();
  using _pipes = readyPipes(poller, 10);
  for await (const batch of poller.events({ batch: true })) {
    assert.ok(Array.isArray(batch));
    assert.is(batch.length, 10);
    assert.equal(new Set(batch.map((e) => e.fd)).size, 10);
    break;
  }
});

test('an AbortSignal ends the iteration with an AbortError; an aborted one throws at once', async () => {
  using poller = openPoller();
  const ac = new AbortController();
  setTimeout(() => ac.abort(new Error('enough')), 30);
  const err = await within(
    (async () => {
      try {
        for await (const _ of poller.events({ signal: ac.signal })) void _;
      } catch (e) {
        return e as Error & { code?: string; cause?: unknown };
      }
      throw new Error('expected an AbortError');
    })(),
    2000,
  );
  assert.is(err.name, 'AbortError');
  assert.is(err.code, 'ABORT_ERR');
  assert.is((err.cause as Error).message, 'enough');
  assert.is(poller.running, false);
  assert.is(thrown(() => poller.events({ signal: AbortSignal.abort() })).name, 'AbortError');
});

test('close() ends a running iteration normally', async () => {
  const poller = openPoller();
  setTimeout(() => poller.close(), 20);
  let count = 0;
  for await (const _ of poller) count++;
  assert.is(count, 0);
  assert.is(poller.closed, true);
  assert.is(await rejection(poller.events().next()), ErrPollerClosed);
});

test('iteration and polling() exclude each other, and two iterators cannot run at once', async () => {
  using poller = openPoller();
  const running = poller.polling(() => undefined);
  assert.is((await rejection(poller.events().next())).code, 'ERR_POLLER_BUSY');
  poller.trigger(Priority.High, () => ErrEngineShutdown);
  await running;

  const first = poller.events();
  const pending = first.next(); // claims the poller
  assert.is((await rejection(poller.events().next())).code, 'ERR_POLLER_BUSY');
  assert.is((await rejection(poller.polling())).code, 'ERR_POLLER_BUSY');
  await first.return!();
  assert.equal(await pending, { done: true, value: undefined });
  assert.is(poller.running, false);
});

test('trigger() tasks run while iterating, and a task returning ErrEngineShutdown ends the iteration with it', async () => {
  using poller = openPoller();
  const results: number[] = [];
  const it = poller.events();
  const first = it.next();
  const a = poller.trigger(Priority.High, () => { results.push(1); return 1; });
  const b = poller.trigger(Priority.Low, () => { results.push(2); return ErrEngineShutdown; });
  assert.equal(await within(first, 2000), { done: true, value: ErrEngineShutdown });
  assert.is(await a, 1);
  assert.is(await b, ErrEngineShutdown);
  assert.equal(results, [1, 2]);
  assert.equal(await it.next(), { done: true, value: undefined });
});

test('a loop body awaiting a trigger() task on the iterated poller gets its answer: tasks run while the body is suspended', async () => {
  using poller = openPoller();
  const [r, w] = pipe();
  try {
    poller.addRead({ fd: r });
    write(w, Buffer.from('x'));
    const answers: number[] = [];
    await within(
      (async () => {
        for await (const ev of poller) {
          assert.is(ev.fd, r);
          // The poller is paused now (the consumer is busy): the task must run anyway.
          answers.push(await poller.trigger(Priority.High, () => answers.length + 1));
          answers.push(await poller.trigger(Priority.Low, () => answers.length + 1));
          if (answers.length === 6) break;
        }
      })(),
      5000,
      'the loop body\'s awaited tasks',
    );
    assert.equal(answers, [1, 2, 3, 4, 5, 6]);
    assert.is(poller.bufferedEvents, 0);
  } finally {
    close(r);
    close(w);
  }
});

test('while the body is suspended, tasks run but fd events stay in the kernel until the next next()', async () => {
  using poller = openPoller();
  const [r, w] = pipe();
  const [r2, w2] = pipe();
  try {
    poller.addRead({ fd: r });
    write(w, Buffer.from('x'));
    const it = poller.events();
    const first = await within(it.next(), 2000);
    assert.is((first.value as PollEvent).fd, r);
    poller.addRead({ fd: r2 });
    write(w2, Buffer.from('y'));
    for (let i = 0; i < 3; i++) assert.is(await within(poller.trigger(Priority.High, () => i), 2000), i);
    assert.is(poller.bufferedEvents, 0, 'the rounds read no fd readiness');
    const stats = poller.stats();
    await sleep(20);
    assert.is(poller.stats().events, stats.events, 'nothing read from the kernel while the consumer is busy');
    await it.return!();
  } finally {
    for (const fd of [r, w, r2, w2]) close(fd);
  }
});

test('a loop body awaiting a remote trigger from a worker, whose task runs on the iterated poller, gets its answer', async () => {
  using poller = openPoller();
  const [r, w] = pipe();
  const indexPath = path.resolve(__dirname, '..', 'src', 'index.js');
  const handle = poller.handle({ double: (x: number) => x * 2 });
  const worker = new Worker(
    `const np = require(${JSON.stringify(indexPath)});
     const { parentPort, workerData } = require('node:worker_threads');
     const remote = np.connectPoller(workerData.handle);
     parentPort.on('message', async (x) => {
       if (x === null) { remote.close?.(); parentPort.close(); return; }
       try { parentPort.postMessage(await remote.trigger(np.Priority.High, 'double', x)); }
       catch (e) { parentPort.postMessage({ error: String(e && e.stack || e) }); }
     });`,
    { eval: true, workerData: { handle } },
  );
  const ask = (x: number): Promise<unknown> =>
    new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.postMessage(x);
    });
  try {
    poller.addRead({ fd: r });
    write(w, Buffer.from('x'));
    const answers: unknown[] = [];
    await within(
      (async () => {
        for await (const ev of poller) {
          assert.is(ev.fd, r);
          answers.push(await ask(answers.length + 1));
          if (answers.length === 3) break;
        }
      })(),
      10000,
      'the remote answers awaited in the loop body',
    );
    assert.equal(answers, [2, 4, 6]);
  } finally {
    worker.postMessage(null);
    await worker.terminate();
    close(r);
    close(w);
  }
});

test('the consumer\'s AsyncLocalStorage context holds across the iteration', async () => {
  const als = new AsyncLocalStorage<string>();
  using poller = openPoller();
  const [r, w] = pipe();
  try {
    poller.addRead({ fd: r });
    write(w, Buffer.from('x'));
    const stores = await als.run('consumer', async () => {
      const seen: Array<string | undefined> = [];
      for await (const _ of poller) {
        void _;
        seen.push(als.getStore());
        await sleep(1);
        seen.push(als.getStore());
        if (seen.length >= 6) break;
      }
      return seen;
    });
    assert.equal(stores, Array(6).fill('consumer'));
  } finally {
    close(r);
    close(w);
  }
});

test('backpressure: thousands of always-ready fds and a slow consumer keep the buffer within one wait and the heap flat', async () => {
  using poller = openPoller();
  using _pipes = readyPipes(poller, 3000);
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  let maxBuffered = 0;
  let count = 0;
  const started = Date.now();
  for await (const _ of poller) {
    void _;
    maxBuffered = Math.max(maxBuffered, poller.bufferedEvents);
    if (++count % 500 === 0) await sleep(2); // a slow consumer
    if (count === 12000 || Date.now() - started > 8000) break;
  }
  gc?.();
  const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
  assert.ok(count >= 3000, `consumed ${count}`);
  assert.ok(maxBuffered <= MaxPollEventsCap, `buffered at most ${maxBuffered}`);
  assert.ok(heapGrowth < 8 * 1024 * 1024, `heap grew ${heapGrowth} bytes`);
});

test('a consumer that stops asking leaves new events in the kernel until it asks again', async () => {
  using poller = openPoller();
  const [r, w] = pipe();
  try {
    poller.addRead({ fd: r });
    write(w, Buffer.from('x')); // never read: the fd stays readable (level-triggered)
    const it = poller.events();
    const first = await within(it.next(), 2000, 'the first event');
    assert.is(first.value.fd, r);
    // The consumer is busy elsewhere for a while: had the kernel been read again,
    // the event would wait in the iterator's buffer.
    await sleep(50);
    assert.is(poller.bufferedEvents, 0);
    const second = await within(it.next(), 2000, 'the event after asking again');
    assert.is(second.value.fd, r);
    // Asking within the same turn, as a for-await loop does, keeps events coming.
    let more = 0;
    for await (const ev of { [Symbol.asyncIterator]: () => it }) {
      if (ev.fd === r && ++more === 5) break;
    }
    assert.is(more, 5);
  } finally {
    close(r);
    close(w);
  }
});

test('events of an fd deleted while buffered are not yielded', async () => {
  using poller = openPoller();
  using fds = readyPipes(poller, 4);
  const readers = fds.filter((_, i) => i % 2 === 0);
  const yielded: number[] = [];
  for await (const ev of poller) {
    yielded.push(ev.fd);
    if (yielded.length === 1) {
      assert.is(poller.bufferedEvents, 3, 'the other three are buffered');
      for (const fd of readers) if (fd !== ev.fd) poller.delete(fd);
      assert.is(poller.bufferedEvents, 0);
    }
    if (yielded.length === 3) break;
  }
  assert.equal(yielded, [yielded[0], yielded[0], yielded[0]]);
});

test('using and await using close the poller at the end of the scope', async () => {
  let outer: ReturnType<typeof openPoller>;
  {
    using poller = openPoller();
    outer = poller;
    assert.is(poller.closed, false);
  }
  assert.is(outer.closed, true);
  {
    await using poller = openPoller();
    outer = poller;
  }
  assert.is(outer.closed, true);
});

test('a real TCP workload consumed with for await', async () => {
  const server = net.createServer((c) => {
    let i = 0;
    const timer = setInterval(() => {
      c.write(`msg${i++};`);
      if (i === 20) { clearInterval(timer); c.end(); }
    }, 2);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  using poller = openPoller();
  const fd = dialTCP('127.0.0.1', port);
  try {
    poller.addRead({ fd }, true);
    const buf = Buffer.alloc(4096);
    let text = '';
    let eof = false;
    await within(
      (async () => {
        for await (const ev of poller) {
          assert.is(ev.fd, fd);
          for (;;) { // edge-triggered: drain
            const n = read(fd, buf);
            if (n > 0) text += buf.toString('utf8', 0, n);
            else { eof = n === 0; break; }
          }
          if (eof) break;
        }
      })(),
      5000,
    );
    assert.ok(eof);
    assert.is(text, Array.from({ length: 20 }, (_, i) => `msg${i};`).join(''));
  } finally {
    close(fd);
    server.close();
  }
});

test.run();
