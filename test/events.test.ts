// IOEvent constants and the is*Event helpers, per backend.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Backend, ErrEvents, ReadEvents, ReadWriteEvents, WriteEvents, isErrorEvent, isReadEvent, isWriteEvent } from '../src/index.js';

test('on epoll the helpers test masks, as gnet\'s defs_poller_epoll.go', () => {
  if (Backend !== 'epoll') return;
  const EPOLLIN = 0x1, EPOLLPRI = 0x2, EPOLLOUT = 0x4, EPOLLERR = 0x8, EPOLLHUP = 0x10, EPOLLRDHUP = 0x2000;
  assert.is(ReadWriteEvents, ReadEvents | WriteEvents);
  assert.is(ErrEvents, EPOLLERR | EPOLLHUP);
  assert.ok(isReadEvent(EPOLLIN));
  assert.ok(isReadEvent(EPOLLPRI));
  assert.ok(isReadEvent(EPOLLIN | EPOLLOUT));
  assert.not.ok(isReadEvent(EPOLLOUT));
  assert.not.ok(isReadEvent(EPOLLRDHUP));
  assert.ok(isWriteEvent(EPOLLOUT | EPOLLHUP));
  assert.not.ok(isWriteEvent(EPOLLIN));
  assert.ok(isErrorEvent(EPOLLERR, 0));
  assert.ok(isErrorEvent(EPOLLHUP | EPOLLIN, 0));
  assert.not.ok(isErrorEvent(EPOLLIN | EPOLLRDHUP, 0));
  assert.not.ok(isErrorEvent(EPOLLIN, 0xffff), 'flags are ignored on epoll');
});

test('on kqueue the helpers compare filters and test flags, as gnet\'s defs_poller_kqueue.go', () => {
  if (Backend !== 'kqueue') return;
  assert.ok(isReadEvent(ReadEvents));
  assert.not.ok(isReadEvent(WriteEvents));
  assert.ok(isWriteEvent(WriteEvents));
  assert.not.ok(isWriteEvent(ReadEvents));
  assert.ok(isErrorEvent(ReadEvents, ErrEvents));
  assert.not.ok(isErrorEvent(ReadEvents, 0));
});

test.run();
