// Errors: the sentinels, errorIs, SystemError shape, and the bad-input table:
// every wrong argument is a TypeError/RangeError/ErrPollerClosed, never a crash.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as util from 'node:util';
import {
  ErrAcceptSocket,
  ErrEngineShutdown,
  ErrPollerClosed,
  errorIs,
  errors,
  isSystemError,
  close,
  dialTCP,
  openPoller,
  pipe,
  read,
  write,
  Priority,
  type PollAttachment,
} from '../src/index.js';
import { rejection, thrown } from './helpers.js';

test('the sentinels are gnet\'s errors, grouped as errors.*', () => {
  assert.is(errors.ErrEngineShutdown, ErrEngineShutdown);
  assert.is(errors.ErrAcceptSocket, ErrAcceptSocket);
  assert.is(errors.ErrPollerClosed, ErrPollerClosed);
  assert.is(ErrEngineShutdown.message, 'server is going to be shutdown');
  assert.is(ErrAcceptSocket.message, 'accept a new connection error');
  assert.ok(ErrEngineShutdown instanceof Error);
  assert.is(ErrPollerClosed.code, 'ERR_POLLER_CLOSED');
});

test('errorIs follows cause chains and AggregateErrors, and survives cycles', () => {
  const a = new Error('a', { cause: ErrAcceptSocket });
  assert.ok(errorIs(a, ErrAcceptSocket));
  assert.not.ok(errorIs(a, ErrEngineShutdown));
  assert.ok(errorIs(new AggregateError([new Error('x'), a]), ErrAcceptSocket));
  const cyclic = new Error('c') as Error & { cause?: unknown };
  cyclic.cause = cyclic;
  assert.not.ok(errorIs(cyclic, ErrEngineShutdown));
  assert.not.ok(errorIs(undefined, ErrEngineShutdown));
  assert.ok(errorIs(ErrEngineShutdown, ErrEngineShutdown));
});

test('SystemErrors have a code, a negative errno Node can name, and the syscall', () => {
  using poller = openPoller();
  const err = thrown(() => poller.delete(999_999));
  assert.instance(err, Error);
  assert.is(err.code, 'EBADF');
  assert.is(util.getSystemErrorName(err.errno), 'EBADF');
  assert.type(err.syscall, 'string');
  assert.match(err.message, 'EBADF');
});

test('isSystemError is true for netpoll\'s kernel errors and Node\'s own, and narrows the type', () => {
  using poller = openPoller();
  const ours: unknown = thrown(() => poller.delete(999_999));
  const nodes: unknown = thrown(() => fs.readFileSync('/nonexistent/netpoll'));
  for (const e of [ours, nodes]) {
    assert.ok(isSystemError(e));
    if (!isSystemError(e)) continue;
    const code: string = e.code; // compiles only because the guard narrowed `unknown`
    const errno: number = e.errno;
    const syscall: string = e.syscall;
    assert.is(util.getSystemErrorName(errno), code);
    assert.type(syscall, 'string');
  }
});

test('isSystemError is false for errors without code, errno and syscall, and for look-alikes that are not Errors', () => {
  using poller = openPoller();
  const typeErr = thrown(() => poller.addRead({ fd: -1 }));
  assert.is(typeErr.code, 'ERR_OUT_OF_RANGE');
  for (const e of [typeErr, ErrEngineShutdown, ErrPollerClosed, new Error('plain'), Object.assign(new Error('half'), { code: 'EX', errno: -1 }),
    { code: 'ENOENT', errno: -2, syscall: 'open', message: 'not an Error' }, null, undefined, 'ENOENT', -2]) {
    assert.not.ok(isSystemError(e), util.inspect(e));
  }
});

test('registration errors name the fd: EEXIST says it is registered, ENOENT that it is not', () => {
  using poller = openPoller();
  const [r, w] = pipe();
  try {
    poller.addRead({ fd: r });
    const eexist = thrown(() => poller.addWrite({ fd: r }));
    assert.is(eexist.code, 'EEXIST');
    assert.ok(eexist.message.startsWith(`${eexist.syscall} EEXIST (`), eexist.message);
    assert.match(eexist.message, `fd ${r} is already registered with this poller`);
    for (const op of [() => poller.modRead({ fd: w }), () => poller.modWrite({ fd: w }), () => poller.modReadWrite({ fd: w }), () => poller.delete(w)]) {
      const enoent = thrown(op);
      assert.is(enoent.code, 'ENOENT');
      assert.match(enoent.message, `fd ${w} is not registered with this poller`);
    }
  } finally {
    close(r);
    close(w);
  }
});

test('EPERM for a regular file or a directory says it cannot be polled, on both backends', () => {
  using poller = openPoller();
  const file = fs.openSync(__filename, 'r');
  const dir = fs.openSync(os.tmpdir(), 'r');
  try {
    const onFile = thrown(() => poller.addRead({ fd: file }));
    assert.is(onFile.code, 'EPERM');
    assert.is(onFile.fd, file);
    assert.match(onFile.message, `fd ${file} is a regular file, and regular files and directories cannot be polled`);
    const onDir = thrown(() => poller.addReadWrite({ fd: dir }));
    assert.is(onDir.code, 'EPERM');
    assert.match(onDir.message, `fd ${dir} is a directory`);
  } finally {
    fs.closeSync(file);
    fs.closeSync(dir);
  }
});

const notFds: unknown[] = [-1, 1.5, NaN, Infinity, -Infinity, 2 ** 31, 2 ** 53, Number.MAX_VALUE];
const notNumbers: unknown[] = ['3', null, undefined, {}, [], () => 3, 3n, Symbol('fd'), true];

test('bad fds in attachments: RangeError for numbers out of range, TypeError for non-numbers', () => {
  using poller = openPoller();
  const methods = ['addRead', 'addWrite', 'addReadWrite', 'modRead', 'modWrite', 'modReadWrite'] as const;
  for (const m of methods) {
    for (const fd of notFds) {
      const err = thrown(() => poller[m]({ fd } as PollAttachment));
      assert.instance(err, RangeError, `${m} fd=${String(fd)}`);
      assert.is(err.code, 'ERR_OUT_OF_RANGE');
    }
    for (const fd of notNumbers) {
      const err = thrown(() => poller[m]({ fd } as PollAttachment));
      assert.instance(err, TypeError, `${m} fd=${String(fd)}`);
    }
  }
  for (const fd of notFds) assert.instance(thrown(() => poller.delete(fd as number)), RangeError);
  for (const fd of notNumbers) assert.instance(thrown(() => poller.delete(fd as number)), TypeError);
});

test('missing or malformed attachments and flags are TypeErrors', () => {
  using poller = openPoller();
  const [r, w] = pipe();
  try {
    const bad: unknown[] = [undefined, null, 3, 'fd', [], () => undefined];
    for (const pa of bad) assert.instance(thrown(() => poller.addRead(pa as PollAttachment)), TypeError, String(pa));
    assert.instance(thrown(() => poller.addRead({ fd: r, callback: 'not a function' } as unknown as PollAttachment)), TypeError);
    assert.instance(thrown(() => poller.addRead({ fd: r }, 'yes' as unknown as boolean)), TypeError);
    assert.instance(thrown(() => poller.addRead({ fd: r }, 1 as unknown as boolean)), TypeError);
    // Nothing was registered by the failed calls.
    poller.addRead({ fd: r });
  } finally {
    close(r);
    close(w);
  }
});

test('polling() and trigger() reject bad arguments instead of throwing', async () => {
  using poller = openPoller();
  assert.instance(await rejection(poller.polling('cb' as unknown as undefined)), TypeError);
  assert.instance(await rejection(poller.polling(null as unknown as undefined)), TypeError);
  assert.instance(await rejection(poller.trigger(Priority.High, 'fn' as unknown as () => void)), TypeError);
  assert.instance(await rejection(poller.trigger(2 as Priority, () => 1)), RangeError);
  assert.instance(await rejection(poller.trigger(-1 as Priority, () => 1)), RangeError);
  assert.instance(await rejection(poller.trigger('0' as unknown as Priority, () => 1)), TypeError);
  assert.instance(await rejection(poller.trigger(NaN as Priority, () => 1)), RangeError);
  assert.is(poller.running, false);
});

test('events() rejects bad options', () => {
  using poller = openPoller();
  assert.instance(thrown(() => poller.events(null as unknown as undefined)), TypeError);
  assert.instance(thrown(() => poller.events({ batch: 'yes' as unknown as boolean })), TypeError);
  assert.instance(thrown(() => poller.events({ signal: {} as AbortSignal })), TypeError);
});

test('fd helpers reject bad input with TypeError/RangeError and kernel errors with SystemErrors', () => {
  assert.instance(thrown(() => read(-1, Buffer.alloc(1))), RangeError);
  assert.instance(thrown(() => read(0, 'buf' as unknown as Buffer)), TypeError);
  assert.instance(thrown(() => write(1.5, Buffer.alloc(1))), RangeError);
  assert.instance(thrown(() => write(1, {} as Buffer)), TypeError);
  assert.is(thrown(() => read(999_999, Buffer.alloc(1))).code, 'EBADF');
  assert.is(thrown(() => write(999_999, Buffer.alloc(1))).code, 'EBADF');
  assert.is(thrown(() => close(999_999)).code, 'EBADF');
  assert.instance(thrown(() => dialTCP('not an address', 80)), TypeError);
  assert.instance(thrown(() => dialTCP('127.0.0.1', 0)), RangeError);
  assert.instance(thrown(() => dialTCP('127.0.0.1', 70000)), RangeError);
  assert.instance(thrown(() => dialTCP(42 as unknown as string, 80)), TypeError);
  // A detached buffer reads nothing rather than crashing.
  const [r, w] = pipe();
  try {
    const ab = new ArrayBuffer(8);
    const view = new Uint8Array(ab);
    structuredClone(ab, { transfer: [ab] });
    write(w, Buffer.from('x'));
    assert.is(read(r, view), 0);
    assert.is(read(r, new Uint16Array(2)), 1, 'typed arrays of any element size are byte buffers');
  } finally {
    close(r);
    close(w);
  }
});

test.run();
