// IOEvent constants and the is*Event helpers, per backend, and the event-handling pattern
// the docs teach, run against real fds with data still unread when the peer is done.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  Backend,
  ErrEngineShutdown,
  ErrEvents,
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
  type PollEventHandler,
  type Poller,
  type StopError,
} from '../src/index.js';
import { within } from './helpers.js';

const { close, dialTCP, listenTCP, localAddress, accept, pipe, read, shutdown, socketpair, write } = socket;

/** Raw masks and flags, as the kernel's headers spell them, typed as the poller reports them. */
const ev = (n: number): IOEvent => n as IOEvent;
const fl = (n: number): IOFlags => n as IOFlags;

test('on epoll the helpers test masks, as gnet\'s defs_poller_epoll.go', () => {
  if (Backend !== 'epoll') return;
  const EPOLLIN = 0x1, EPOLLPRI = 0x2, EPOLLOUT = 0x4, EPOLLERR = 0x8, EPOLLHUP = 0x10, EPOLLRDHUP = 0x2000;
  assert.is(ReadWriteEvents, ReadEvents | WriteEvents);
  assert.is(ErrEvents, EPOLLERR | EPOLLHUP);
  assert.ok(isReadEvent(ev(EPOLLIN)));
  assert.ok(isReadEvent(ev(EPOLLPRI)));
  assert.ok(isReadEvent(ev(EPOLLIN | EPOLLOUT)));
  assert.not.ok(isReadEvent(ev(EPOLLOUT)));
  assert.not.ok(isReadEvent(ev(EPOLLRDHUP)));
  assert.ok(isWriteEvent(ev(EPOLLOUT | EPOLLHUP)));
  assert.not.ok(isWriteEvent(ev(EPOLLIN)));
  assert.ok(isErrorEvent(ev(EPOLLERR), fl(0)));
  assert.ok(isErrorEvent(ev(EPOLLHUP | EPOLLIN), fl(0)));
  assert.not.ok(isErrorEvent(ev(EPOLLIN | EPOLLRDHUP), fl(0)));
  assert.not.ok(isErrorEvent(ev(EPOLLIN), fl(0xffff)), 'flags are ignored on epoll');
});

test('on epoll isErrorOnlyEvent is an error or hang-up bit with no readiness bit beside it', () => {
  if (Backend !== 'epoll') return;
  const EPOLLIN = 0x1, EPOLLPRI = 0x2, EPOLLOUT = 0x4, EPOLLERR = 0x8, EPOLLHUP = 0x10, EPOLLRDHUP = 0x2000;
  for (const lone of [EPOLLERR, EPOLLHUP, EPOLLRDHUP, EPOLLERR | EPOLLHUP, EPOLLHUP | EPOLLRDHUP]) {
    assert.ok(isErrorOnlyEvent(ev(lone), fl(0)), `0x${lone.toString(16)} is error-only`);
  }
  for (const withData of [EPOLLIN | EPOLLHUP, EPOLLIN | EPOLLRDHUP, EPOLLPRI | EPOLLERR, EPOLLOUT | EPOLLERR, EPOLLIN | EPOLLERR | EPOLLHUP, EPOLLIN, EPOLLOUT]) {
    assert.not.ok(isErrorOnlyEvent(ev(withData), fl(0)), `0x${withData.toString(16)} carries readiness`);
  }
  assert.not.ok(isErrorOnlyEvent(ev(0), fl(0)));
});

test('on kqueue the helpers compare filters and test flags, as gnet\'s defs_poller_kqueue.go', () => {
  if (Backend !== 'kqueue') return;
  assert.ok(isReadEvent(ReadEvents));
  assert.not.ok(isReadEvent(WriteEvents));
  assert.ok(isWriteEvent(WriteEvents));
  assert.not.ok(isWriteEvent(ReadEvents));
  assert.ok(isErrorEvent(ReadEvents, fl(ErrEvents)));
  assert.not.ok(isErrorEvent(ReadEvents, fl(0)));
  // A read or write filter's event is never error-only, EV_EOF or not: reading tells.
  assert.not.ok(isErrorOnlyEvent(ReadEvents, fl(ErrEvents)));
  assert.not.ok(isErrorOnlyEvent(WriteEvents, fl(ErrEvents)));
  assert.not.ok(isErrorOnlyEvent(ReadEvents, fl(0)));
});

// ---- the documented pattern, with data in flight at EOF ----

interface Outcome {
  /** Everything read, in order. */
  text: string;
  /** How the handler ended the fd: 'eof' (read 0), 'error-only', 'threw <code>'. */
  closedBy: string;
}

/**
 * The handler docs/guide.md teaches for a reading fd: close on an error-only event;
 * otherwise, on a read event, read until -1 (drained) or 0 (the end: close), closing
 * too when read throws. It stops polling once it has closed the fd.
 */
function documentedHandler(poller: Poller, out: Outcome): PollEventHandler {
  const buf = Buffer.alloc(2); // small on purpose: several reads per event
  const drop = (fd: number, why: string): StopError => {
    out.closedBy = why;
    poller.delete(fd);
    close(fd);
    return ErrEngineShutdown;
  };
  return (fd, event, flags) => {
    if (isErrorOnlyEvent(event, flags)) return drop(fd, 'error-only');
    if (!isReadEvent(event)) return undefined;
    try {
      for (let n = read(fd, buf); n !== -1; n = read(fd, buf)) {
        if (n === 0) return drop(fd, 'eof');
        out.text += buf.toString('latin1', 0, n);
      }
    } catch (e) {
      return drop(fd, `threw ${(e as NodeJS.ErrnoException).code}`);
    }
    return undefined;
  };
}

/** Registers `fd` (whose peer already sent "hello" and finished) and runs the documented handler on it. */
async function handleToTheEnd(fd: number, edgeTriggered: boolean): Promise<Outcome> {
  using poller = openPoller();
  const out: Outcome = { text: '', closedBy: '' };
  poller.addRead({ fd }, edgeTriggered);
  await within(poller.polling(documentedHandler(poller, out)), 5000, 'the handler closing the fd');
  return out;
}

/** Ways a peer can send "hello" and be done before the reader has read anything. */
const peersThatFinish: Record<string, () => number> = {
  'a TCP peer that shuts down its writing side': () => {
    const lfd = listenTCP('127.0.0.1', 0);
    const c = dialTCP('127.0.0.1', localAddress(lfd).port);
    const s = accept(lfd)!.fd; // dialTCP waited for the handshake: it is queued
    close(lfd);
    write(c, Buffer.from('hello'));
    shutdown(c, 'write');
    closeLater.push(c); // still reading, as a half-closing client does
    return s;
  },
  'a TCP peer that closes': () => {
    const lfd = listenTCP('127.0.0.1', 0);
    const c = dialTCP('127.0.0.1', localAddress(lfd).port);
    const s = accept(lfd)!.fd;
    close(lfd);
    write(c, Buffer.from('hello'));
    close(c);
    return s;
  },
  'a Unix socket peer that shuts down its writing side': () => {
    const [a, b] = socketpair();
    write(a, Buffer.from('hello'));
    shutdown(a, 'write');
    closeLater.push(a);
    return b;
  },
  'a pipe whose writer closes': () => {
    const [r, w] = pipe();
    write(w, Buffer.from('hello'));
    close(w);
    return r;
  },
};
const closeLater: number[] = [];

for (const [peer, open] of Object.entries(peersThatFinish)) {
  for (const edgeTriggered of [false, true]) {
    test(`the documented handler reads every byte from ${peer}, then closes (${edgeTriggered ? 'edge' : 'level'}-triggered)`, async () => {
      try {
        const out = await handleToTheEnd(open(), edgeTriggered);
        assert.equal(out, { text: 'hello', closedBy: 'eof' });
      } finally {
        for (const fd of closeLater.splice(0)) close(fd);
      }
    });
  }
}

test('the documented handler closes a pipe whose writer left nothing, on the error-only hang-up or at read 0', async () => {
  const [r, w] = pipe();
  close(w);
  const out = await handleToTheEnd(r, false);
  assert.is(out.text, '');
  // epoll: EPOLLHUP alone (error-only); kqueue: EVFILT_READ with EV_EOF, and read gives 0.
  assert.is(out.closedBy, Backend === 'epoll' ? 'error-only' : 'eof');
});

test.run();
