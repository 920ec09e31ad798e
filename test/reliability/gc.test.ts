// Garbage collection: pollers dropped without close() release their fds.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ErrEngineShutdown, openPoller, pipe, close, write } from '../../src/index.js';
import { openFdCount, sleep } from '../helpers.js';
import { fdLimit } from './support.js';

const POLLERS = 10_000;

async function collect(gc: () => void, until: () => boolean): Promise<void> {
  for (let i = 0; i < 50 && !until(); i++) {
    gc();
    await sleep(10); // finalizers run after the collection, on the loop
  }
}

test(`${POLLERS} pollers dropped without close() give back every fd`, async () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  assert.ok(gc, 'run with --expose-gc (the test runner does)');
  const baseline = openFdCount();
  // Each open poller holds three fds on epoll (two on libkqueue); stay well inside the fd
  // limit however it is set.
  const chunk = Math.max(10, Math.min(1000, Math.floor((fdLimit() - baseline - 256) / 3)));
  if (chunk < 1000) console.log(`  [gc] ulimit -n is ${fdLimit()}: dropping pollers ${chunk} at a time`);
  const started = Date.now();
  let peak = 0;
  for (let made = 0; made < POLLERS; ) {
    const n = Math.min(chunk, POLLERS - made);
    for (let i = 0; i < n; i++) {
      const p = openPoller();
      // Some of them with registrations, a running loop or queued tasks.
      if (i % 10 === 0) {
        const [r, w] = pipe();
        p.addRead({ fd: r });
        close(r);
        close(w);
      }
      if (i % 25 === 0) void p.trigger(0, () => 1);
    }
    made += n;
    peak = Math.max(peak, openFdCount() - baseline);
    await collect(gc!, () => openFdCount() - baseline < 2 * chunk);
  }
  await collect(gc!, () => openFdCount() - baseline <= 2);
  const left = openFdCount() - baseline;
  console.log(`  [gc] ${POLLERS} pollers dropped in ${((Date.now() - started) / 1000).toFixed(1)} s; peak +${peak} fds, after GC +${left}`);
  assert.ok(peak >= 2 * Math.min(chunk, 100), 'the pollers did hold fds while alive');
  assert.ok(left <= 2, `fds left after GC: +${left}`);
});

test('a polling poller nobody references is not collected while it polls, and is once it stops', async () => {
  const gc = (globalThis as { gc?: () => void }).gc!;
  const [r, w] = pipe();
  // Let what earlier tests dropped be finalized first, so that the count moves only for this poller.
  let previous = -1;
  for (let i = 0; i < 20 && openFdCount() !== previous; i++) {
    previous = openFdCount();
    gc();
    await sleep(20);
  }
  const baseline = openFdCount();
  // Only the running loop holds the poller: the test keeps nothing but the promise.
  const stopped = ((): Promise<Error> => {
    const p = openPoller();
    p.addRead({ fd: r });
    return p.polling(() => ErrEngineShutdown);
  })();
  for (let i = 0; i < 5; i++) {
    gc();
    await sleep(10);
  }
  // At least the backend fd and the waker (libkqueue's kqueue opens a few more of its own).
  assert.ok(openFdCount() - baseline >= 2, `still open (and polling) after collections: +${openFdCount() - baseline}`);
  write(w, Buffer.from('stop')); // the callback stops the loop
  assert.is(await stopped, ErrEngineShutdown);
  await collect(gc, () => openFdCount() - baseline <= 0);
  assert.is(openFdCount() - baseline, 0, 'released once it stopped and was collected');
  close(r);
  close(w);
});

test.run();
