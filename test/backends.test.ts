// The portable behaviour of the two backends, row by row as docs/backends.md
// tables it. Every test runs on both; an expectation is per backend only where
// the table says epoll and kqueue differ.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import {
  Backend,
  ErrEngineShutdown,
  ErrEvents,
  InitPollEventsCap,
  MaxAsyncTasksAtOneTime,
  MaxPollEventsCap,
  MinPollEventsCap,
  ReadEvents,
  ReadWriteEvents,
  WriteEvents,
  isErrorEvent,
  isErrorOnlyEvent,
  isReadEvent,
  isWriteEvent,
  openPoller,
  socket,
  type IOEvent,
  type IOFlags,
  type Poller,
} from '../src/index.js';
import { binding } from '../src/binding.js';
import { libkqueue, stopAfter, thrown, within } from './helpers.js';

const { close, pipe, socketpair, write } = socket;
const epoll = Backend === 'epoll';
const syscalls = binding.backend.syscalls;

type Seen = Array<[fd: number, event: IOEvent, flags: IOFlags]>;

/** Every event of one polling() run that a task stops after `ms`. */
async function eventsFor(poller: Poller, ms: number): Promise<Seen> {
  const seen: Seen = [];
  const timer = stopAfter(poller, ms);
  try {
    await within(poller.polling((fd, event, flags) => { seen.push([fd, event, flags]); }), ms + 2000);
  } finally {
    clearTimeout(timer);
  }
  return seen;
}

/** The events of the first batch that has any. */
async function firstBatch(poller: Poller): Promise<Seen> {
  for await (const batch of poller.events({ batch: true })) {
    return batch.map((e): [number, IOEvent, IOFlags] => [e.fd, e.event, e.flags]);
  }
  throw new Error('the iteration ended without a batch');
}

test('kqueue exports gnet\'s kqueue numbers, all read from the binding', () => {
  assert.is(binding.backend.name, Backend);
  assert.is(binding.backend.eventsAreFilters, !epoll);
  if (epoll) return; // the epoll numbers: poller.test.ts
  assert.is(InitPollEventsCap, 64);
  assert.is(MaxPollEventsCap, 512);
  assert.is(MinPollEventsCap, 16);
  assert.is(MaxAsyncTasksAtOneTime, 128);
  assert.is(ErrEvents, 0x8000 | 0x4000, 'EV_EOF | EV_ERROR');
  assert.ok(ReadEvents !== WriteEvents);
  // gnet's ReadEvents | WriteEvents, although filters are not masks.
  assert.is(ReadWriteEvents, ReadEvents | WriteEvents);
  assert.equal(syscalls, { add: 'kevent add', modRead: 'kevent delete', modReadWrite: 'kevent add', del: 'kevent delete', wait: 'kevent wait' });
});

test('an fd ready both ways is one event with both bits on epoll, one event per filter on kqueue', async () => {
  using poller = openPoller();
  const [a, b] = socketpair();
  try {
    write(b, Buffer.from('to read'));
    poller.addReadWrite({ fd: a });
    const batch = (await within(firstBatch(poller), 2000)).filter(([fd]) => fd === a);
    if (epoll) {
      assert.is(batch.length, 1);
      assert.ok(isReadEvent(batch[0][1]) && isWriteEvent(batch[0][1]));
    } else {
      assert.is(batch.length, 2, 'a read event and a write event');
      assert.equal(batch.map(([, ev]) => ev).sort(), [ReadEvents, WriteEvents].sort());
      for (const [, ev] of batch) assert.ok(isReadEvent(ev) !== isWriteEvent(ev));
    }
  } finally {
    close(a);
    close(b);
  }
});

test('a second add of a registered fd fails with EEXIST whatever it asks for, and changes nothing', async () => {
  using poller = openPoller();
  const [a, b] = socketpair(); // a is writable at once
  try {
    poller.addRead({ fd: a });
    for (const add of [() => poller.addRead({ fd: a }), () => poller.addWrite({ fd: a }), () => poller.addReadWrite({ fd: a }, true)]) {
      const err = thrown(add);
      assert.is(err.code, 'EEXIST');
      assert.is(err.syscall, syscalls.add);
    }
    // Still read-only and level-triggered: the writable socket reports nothing yet...
    assert.equal(await eventsFor(poller, 100), []);
    write(b, Buffer.from('x'));
    // ...and unread data is reported on every turn.
    const seen = await eventsFor(poller, 100);
    assert.ok(seen.length >= 2, `level-triggered: ${seen.length} events`);
    assert.ok(seen.every(([fd, ev]) => fd === a && isReadEvent(ev) && !isWriteEvent(ev)));
  } finally {
    close(a);
    close(b);
  }
});

test('a rejected add of an edge-triggered fd queues no second edge: EEXIST asks no kernel', async () => {
  // On FreeBSD and macOS any change to a live filter (the EV_ENABLE an EEXIST probe
  // would use) evaluates it again and queues an EV_CLEAR event once more; the
  // registration records answer instead. libkqueue and epoll cannot show that
  // re-queue; this pins the contract on every backend.
  using poller = openPoller();
  const [r, w] = pipe();
  const [a, b] = socketpair();
  try {
    poller.addRead({ fd: r }, true);
    poller.addReadWrite({ fd: a }, true);
    write(w, Buffer.from('x'));
    write(b, Buffer.from('x'));
    const first = await eventsFor(poller, 100);
    assert.ok(first.some(([fd]) => fd === r) && first.some(([fd]) => fd === a), 'the first edges');
    for (const fd of [r, a]) {
      for (const add of [() => poller.addRead({ fd }, true), () => poller.addRead({ fd }), () => poller.addWrite({ fd }, true), () => poller.addReadWrite({ fd }, true)]) {
        assert.is(thrown(add).code, 'EEXIST');
      }
    }
    assert.equal(await eventsFor(poller, 100), [], 'data left unread and a rejected add: no edge again');
    write(w, Buffer.from('y'));
    const next = await eventsFor(poller, 100);
    assert.is(next.length, 1, 'a new arrival is one new edge');
    assert.is(next[0][0], r);
  } finally {
    for (const fd of [r, w, a, b]) close(fd);
  }
});

test('mod and delete of an fd never added fail with ENOENT; every operation on a closed fd fails with EBADF', () => {
  using poller = openPoller();
  const [r, w] = pipe();
  try {
    for (const [op, syscall] of [[() => poller.modRead({ fd: r }), syscalls.modRead], [() => poller.modWrite({ fd: r }), syscalls.modRead], [() => poller.modReadWrite({ fd: r }), syscalls.modReadWrite], [() => poller.delete(r), syscalls.del]] as const) {
      const err = thrown(op);
      assert.is(err.code, 'ENOENT');
      assert.is(err.syscall, syscall);
      assert.is(err.fd, r);
    }
  } finally {
    close(r);
    close(w);
  }
  for (const op of [() => poller.addRead({ fd: r }), () => poller.addReadWrite({ fd: r }), () => poller.modRead({ fd: r }), () => poller.modWrite({ fd: r }), () => poller.modReadWrite({ fd: r }), () => poller.delete(r)]) {
    assert.is(thrown(op).code, 'EBADF');
  }
});

test('delete() removes read and write interest alike: no event afterwards, and the fd can be added again', async () => {
  using poller = openPoller();
  const [a, b] = socketpair();
  try {
    poller.addReadWrite({ fd: a }, true);
    poller.delete(a);
    write(b, Buffer.from('x'));
    assert.equal(await eventsFor(poller, 100), []);
    assert.is(thrown(() => poller.delete(a)).code, 'ENOENT');
    poller.addRead({ fd: a });
    const seen = await eventsFor(poller, 50);
    assert.ok(seen.length > 0 && seen.every(([fd, ev]) => fd === a && isReadEvent(ev)));
  } finally {
    close(a);
    close(b);
  }
});

test('modRead drops write interest and modReadWrite restores it', async () => {
  using poller = openPoller();
  const [a, b] = socketpair();
  try {
    poller.addReadWrite({ fd: a });
    assert.ok((await eventsFor(poller, 50)).some(([, ev]) => isWriteEvent(ev)));
    poller.modRead({ fd: a });
    assert.equal(await eventsFor(poller, 100), []);
    poller.modReadWrite({ fd: a });
    const seen = await eventsFor(poller, 50);
    assert.ok(seen.length > 0 && seen.every(([fd, ev]) => fd === a && isWriteEvent(ev) && !isReadEvent(ev)));
  } finally {
    close(a);
    close(b);
  }
});

test('a mod sets the trigger mode it is given, and reports current readiness once more', async () => {
  using poller = openPoller();
  const [r, w] = pipe();
  try {
    poller.addRead({ fd: r }, true);
    write(w, Buffer.from('left unread'));
    assert.is((await eventsFor(poller, 100)).length, 1, 'edge-triggered: one event for one arrival');
    assert.is((await eventsFor(poller, 100)).length, 0);
    // Edge-triggered again: the data still there is reported once more (EPOLL_CTL_MOD re-arms).
    poller.modRead({ fd: r }, true);
    assert.is((await eventsFor(poller, 100)).length, 1);
    // Level-triggered: reported on every turn.
    poller.modRead({ fd: r }, false);
    assert.ok((await eventsFor(poller, 100)).length >= 2);
    // And back.
    poller.modRead({ fd: r }, true);
    assert.is((await eventsFor(poller, 100)).length, 1);
  } finally {
    close(r);
    close(w);
  }
});

test('an fd closed without delete is forgotten: delete gives EBADF, and its reused number starts unregistered', async () => {
  using poller = openPoller();
  const [r1, w1] = pipe();
  poller.addReadWrite({ fd: r1 });
  poller.addWrite({ fd: w1 });
  close(r1);
  assert.is(thrown(() => poller.delete(r1)).code, 'EBADF');
  close(w1);
  const [r2, w2] = pipe();
  try {
    assert.is(r2, r1, 'the lowest free numbers come back');
    assert.is(w2, w1);
    assert.is(thrown(() => poller.modRead({ fd: w2 })).code, 'ENOENT');
    assert.is(thrown(() => poller.delete(w2)).code, 'ENOENT');
    poller.addRead({ fd: r2 });
    assert.equal(await eventsFor(poller, 100), [], 'nothing of the old write interest');
    write(w2, Buffer.from('x'));
    const seen = await eventsFor(poller, 50);
    assert.ok(seen.length > 0 && seen.every(([fd, ev]) => fd === r2 && isReadEvent(ev)));
  } finally {
    close(r2);
    close(w2);
  }
});

test('regular files and directories are refused with EPERM by every operation (they are always ready)', () => {
  using poller = openPoller();
  const file = fs.openSync(__filename, 'r');
  const dir = fs.openSync(os.tmpdir(), 'r');
  try {
    for (const fd of [file, dir]) {
      const err = thrown(() => poller.addRead({ fd }));
      assert.is(err.code, 'EPERM');
      assert.is(err.syscall, syscalls.add);
      for (const op of [() => poller.modRead({ fd }), () => poller.modWrite({ fd }), () => poller.delete(fd)]) assert.is(thrown(op).code, 'EPERM');
    }
  } finally {
    fs.closeSync(file);
    fs.closeSync(dir);
  }
});

test('a hang-up is an error event on both: EPOLLHUP in the mask on epoll, EV_EOF in the flags of the read filter on kqueue', async () => {
  using poller = openPoller();
  const [r, w] = pipe();
  try {
    poller.addRead({ fd: r });
    close(w);
    const [[fd, event, flags]] = await within(firstBatch(poller), 2000);
    assert.is(fd, r);
    assert.ok(isErrorEvent(event, flags));
    if (epoll) {
      assert.is(flags, 0, 'epoll has no flags');
      assert.ok(event & ErrEvents);
    } else {
      assert.is(event, ReadEvents, 'kqueue reports the filter that saw the end');
      assert.ok(flags & 0x8000, 'EV_EOF');
    }
  } finally {
    close(r);
  }
});

test('data sent just before the end comes with the read event, while isErrorEvent may already be true; isErrorOnlyEvent never is', async () => {
  using poller = openPoller();
  const [a, b] = socketpair();
  const [r, w] = pipe();
  try {
    write(b, Buffer.from('last'));
    socket.shutdown(b, 'write'); // a half-close: kqueue flags the read filter EV_EOF at once
    write(w, Buffer.from('last'));
    close(w); // a pipe: EPOLLIN | EPOLLHUP on epoll
    poller.addRead({ fd: a });
    poller.addRead({ fd: r });
    const seen = await eventsFor(poller, 100);
    for (const fd of [a, r]) {
      const mine = seen.filter(([efd]) => efd === fd);
      assert.ok(mine.length > 0, `fd ${fd} is reported`);
      for (const [, event, flags] of mine) {
        assert.ok(isReadEvent(event), `fd ${fd}: a read event (${event})`);
        assert.not.ok(isErrorOnlyEvent(event, flags), `fd ${fd}: not error-only (${event}/${flags})`);
      }
    }
    const errorWithData = (fd: number): boolean => seen.some(([efd, event, flags]) => efd === fd && isErrorEvent(event, flags));
    assert.ok(errorWithData(r), 'the pipe: isErrorEvent with the data still unread');
    assert.is(errorWithData(a), !epoll, 'the socket: EV_EOF on kqueue; on epoll no error bit until both sides are shut');
    const buf = Buffer.alloc(8);
    for (const fd of [a, r]) {
      assert.is(socket.read(fd, buf), 4, 'the bytes are all there');
      assert.is(socket.read(fd, buf), 0, 'then the end');
    }
  } finally {
    for (const fd of [a, b, r]) close(fd);
  }
});

test('an event carries no error flags while the fd is healthy', async () => {
  using poller = openPoller();
  const [a, b] = socketpair();
  try {
    write(b, Buffer.from('x'));
    poller.addReadWrite({ fd: a });
    const batch = await within(firstBatch(poller), 2000);
    assert.ok(batch.length > 0);
    for (const [, event, flags] of batch) assert.not.ok(isErrorEvent(event, flags), `event ${event} flags ${flags}`);
  } finally {
    close(a);
    close(b);
  }
});

test('a poller\'s own fd turns readable while it has events, so another poller can watch it', async () => {
  // Not under libkqueue, whose descriptor is a pipe's write end (docs/backends.md).
  if (libkqueue) return;
  using outer = openPoller();
  using inner = openPoller();
  const [r, w] = pipe();
  try {
    inner.addRead({ fd: r });
    write(w, Buffer.from('x'));
    outer.addRead({ fd: inner.fd });
    const [[fd, event]] = await within(firstBatch(outer), 2000);
    assert.is(fd, inner.fd);
    assert.ok(isReadEvent(event));
    assert.is(await within(inner.polling(() => ErrEngineShutdown), 2000), ErrEngineShutdown);
  } finally {
    close(r);
    close(w);
  }
});

test.run();
