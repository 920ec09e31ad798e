// The smoke subset: open, register, poll a socketpair, trigger, close. It runs with the
// rest of the suite, and on its own under qemu against the arm prebuilds
// (scripts/test-arm.sh), where it is the proof that those binaries work.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  Backend,
  ErrEngineShutdown,
  ErrPollerClosed,
  Priority,
  close,
  isReadEvent,
  openPoller,
  read,
  socketpair,
  write,
} from '../src/index.js';
import { within } from './helpers.js';

// Generous: under qemu-user every JavaScript instruction is emulated.
const LIMIT_MS = 20000;

test('openPoller opens a backend fd, and close() releases it and is idempotent', () => {
  const poller = openPoller();
  assert.ok(poller.fd >= 0, `fd ${poller.fd}`);
  assert.is(poller.backend, Backend);
  assert.is(poller.closed, false);
  poller.close();
  assert.is(poller.closed, true);
  assert.is(poller.fd, -1);
  poller.close();
});

test('a registered socketpair end is reported readable when its peer writes, and reads back the bytes', async () => {
  const poller = openPoller();
  const [a, b] = socketpair();
  try {
    const received: string[] = [];
    poller.addRead({ fd: a });
    const stopped = poller.polling((fd, event) => {
      assert.is(fd, a);
      assert.ok(isReadEvent(event), `event ${event} is not a read event`);
      const buf = Buffer.alloc(64);
      const n = read(fd, buf);
      received.push(buf.subarray(0, n).toString());
      return ErrEngineShutdown;
    });
    assert.is(write(b, Buffer.from('ping')), 4);
    assert.is(await within(stopped, LIMIT_MS, 'polling'), ErrEngineShutdown);
    assert.equal(received, ['ping']);
  } finally {
    poller.close();
    close(a);
    close(b);
  }
});

test('trigger runs tasks inside polling, resolves with their results, and a task can stop the loop', async () => {
  const poller = openPoller();
  try {
    const stopped = poller.polling();
    const order: string[] = [];
    const low = poller.trigger(Priority.Low, (x: number) => {
      order.push('low');
      return x * 2;
    }, 21);
    const high = poller.trigger(Priority.High, () => {
      order.push('high');
      return 'done';
    });
    assert.is(await within(low, LIMIT_MS, 'low task'), 42);
    assert.is(await within(high, LIMIT_MS, 'high task'), 'done');
    // Both fit the urgent queue, so they run in the order they were queued.
    assert.equal(order, ['low', 'high']);
    void poller.trigger(Priority.High, () => ErrEngineShutdown);
    assert.is(await within(stopped, LIMIT_MS, 'polling'), ErrEngineShutdown);
  } finally {
    poller.close();
  }
  assert.is(await poller.trigger(Priority.High, () => 1).catch((e: unknown) => e), ErrPollerClosed);
});

test.run();
