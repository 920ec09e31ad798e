// The socket toolkit with real sockets: TCP over IPv4 and IPv6 loopback, Unix stream
// sockets, UDP, vectored I/O, options, names, Node's own sockets, and the errors
// bad input must give.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  Backend,
  ErrEngineShutdown,
  isErrorEvent,
  isReadEvent,
  isWriteEvent,
  openPoller,
  socket,
  type IOEvent,
  type IOFlags,
  type Poller,
} from '../src/index.js';
import { binding } from '../src/binding.js';
import { libkqueue, nodeCommand, nodeThroughLauncher, sleep, thrown, within } from './helpers.js';

const {
  accept,
  bindUDP,
  close,
  dialTCP,
  dialUnix,
  dup,
  fdOf,
  getSocketOption,
  listenTCP,
  listenUnix,
  localAddress,
  peerCredentials,
  read,
  readv,
  recvFrom,
  recvUrgent,
  remoteAddress,
  sendTo,
  sendUrgent,
  setKeepAlive,
  setNoDelay,
  setRecvBuffer,
  setSendBuffer,
  shutdown,
  socketError,
  socketpair,
  pipe,
  takeFd,
  write,
  writev,
} = socket;

const linux = process.platform === 'linux';
const EPOLLIN = 0x1, EPOLLPRI = 0x2;
const O_NONBLOCK = 0o4000, O_CLOEXEC = 0o2000000;

/** The open-file flags of `fd` as /proc reports them (Linux only). */
function fdFlags(fd: number): number {
  const info = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
  return parseInt(/flags:\s+([0-7]+)/.exec(info)![1], 8);
}

function assertNonblockingCloexec(fd: number): void {
  if (!linux) return;
  const flags = fdFlags(fd);
  assert.ok(flags & O_NONBLOCK, `fd ${fd} is nonblocking`);
  assert.ok(flags & O_CLOEXEC, `fd ${fd} is close-on-exec`);
}

function closeAll(...fds: number[]): void {
  for (const fd of fds) {
    try {
      close(fd);
    } catch {
      // already closed by the test
    }
  }
}

/** Polls until `pred` accepts an event for `fd`; resolves with that event. */
async function nextEvent(poller: Poller, fd: number, pred: (ev: IOEvent) => boolean, ms = 5000): Promise<IOEvent> {
  let seen: IOEvent | undefined;
  await within(
    poller.polling((efd, ev) => {
      if (efd === fd && pred(ev)) {
        seen = ev;
        return ErrEngineShutdown;
      }
    }),
    ms,
    `an event on fd ${fd}`,
  );
  return seen!;
}

/** Accepts one connection, waiting for it with a poller. */
async function acceptOne(lfd: number): Promise<{ fd: number; address: socket.SocketAddress }> {
  let c = accept(lfd);
  if (c !== null) return c;
  using poller = openPoller();
  poller.addRead({ fd: lfd });
  await nextEvent(poller, lfd, isReadEvent);
  c = accept(lfd);
  assert.ok(c, 'a connection after a read event on the listener');
  return c!;
}

/** Reads exactly `n` bytes, waiting with a poller when nothing is there. */
async function readExactly(fd: number, n: number): Promise<Buffer> {
  const out = Buffer.alloc(n);
  let got = 0;
  using poller = openPoller();
  poller.addRead({ fd });
  while (got < n) {
    const r = read(fd, out.subarray(got));
    if (r === 0) throw new Error(`end of stream after ${got} of ${n} bytes`);
    if (r > 0) got += r;
    else await nextEvent(poller, fd, isReadEvent);
  }
  return out;
}

/** Waits until `fd` is readable. */
async function readable(fd: number): Promise<void> {
  using poller = openPoller();
  poller.addRead({ fd });
  await nextEvent(poller, fd, isReadEvent);
}

function tmpPath(name: string): string {
  return path.join(os.tmpdir(), `netpoll-${process.pid}-${name}.sock`);
}

// ---- TCP ----

test('listenTCP + dialTCP + accept exchange bytes over IPv4 loopback; accept gives null when none waits', async () => {
  const lfd = listenTCP('127.0.0.1', 0);
  const fds = [lfd];
  try {
    const local = localAddress(lfd);
    assert.equal(local.family, 'IPv4');
    assert.is(local.address, '127.0.0.1');
    assert.ok(local.port > 0);
    assert.is(accept(lfd), null);
    const c = dialTCP('127.0.0.1', local.port);
    fds.push(c);
    const s = await acceptOne(lfd);
    fds.push(s.fd);
    assert.equal(s.address, localAddress(c));
    assert.equal(remoteAddress(c), local);
    assertNonblockingCloexec(lfd);
    assertNonblockingCloexec(c);
    assertNonblockingCloexec(s.fd);
    assert.is(write(c, Buffer.from('ping')), 4);
    assert.is((await readExactly(s.fd, 4)).toString(), 'ping');
    assert.is(write(s.fd, Buffer.from('pong')), 4);
    assert.is((await readExactly(c, 4)).toString(), 'pong');
    assert.is(accept(lfd), null);
  } finally {
    closeAll(...fds);
  }
});

test('TCP over IPv6 loopback: addresses are IPv6 in node:net\'s shape', async () => {
  const lfd = listenTCP('::1', 0);
  const fds = [lfd];
  try {
    const { port } = localAddress(lfd);
    assert.equal(localAddress(lfd), { address: '::1', family: 'IPv6', port });
    const c = dialTCP('::1', port);
    fds.push(c);
    const s = await acceptOne(lfd);
    fds.push(s.fd);
    assert.is(s.address.family, 'IPv6');
    assert.is(s.address.address, '::1');
    assert.is(s.address.port, localAddress(c).port);
    assert.equal(remoteAddress(c), { address: '::1', family: 'IPv6', port });
    write(c, Buffer.from('six'));
    assert.is((await readExactly(s.fd, 3)).toString(), 'six');
  } finally {
    closeAll(...fds);
  }
});

test('a dual-stack listener on :: takes IPv4 clients as ::ffff: addresses; ipv6Only refuses them', async () => {
  const dual = listenTCP('::', 0);
  const fds = [dual];
  try {
    assert.is(getSocketOption(dual, 'ipv6Only'), 0);
    const c = dialTCP('127.0.0.1', localAddress(dual).port);
    fds.push(c);
    const s = await acceptOne(dual);
    fds.push(s.fd);
    assert.is(s.address.address, '::ffff:127.0.0.1');
    assert.is(s.address.family, 'IPv6');

    const v6 = listenTCP('::', 0, { ipv6Only: true });
    fds.push(v6);
    assert.is(getSocketOption(v6, 'ipv6Only'), 1);
    const err = thrown(() => fds.push(dialTCP('127.0.0.1', localAddress(v6).port)));
    assert.is(err.code, 'ECONNREFUSED');
  } finally {
    closeAll(...fds);
  }
});

test('a nonblocking dial completes with a write event, and socketError tells it succeeded', async () => {
  const lfd = listenTCP('127.0.0.1', 0);
  const c = dialTCP('127.0.0.1', localAddress(lfd).port, { nonblocking: true });
  try {
    using poller = openPoller();
    poller.addWrite({ fd: c });
    assert.ok(isWriteEvent(await nextEvent(poller, c, isWriteEvent)));
    assert.is(socketError(c), undefined);
    assert.is(remoteAddress(c).port, localAddress(lfd).port);
  } finally {
    closeAll(c, lfd);
  }
});

test('a nonblocking dial to a closed port ends with ECONNREFUSED from socketError', async () => {
  const lfd = listenTCP('127.0.0.1', 0);
  const { port } = localAddress(lfd);
  close(lfd);
  let c: number;
  try {
    c = dialTCP('127.0.0.1', port, { nonblocking: true });
  } catch (e) {
    // Loopback may refuse within connect() itself: the same error, thrown.
    assert.is((e as NodeJS.ErrnoException).code, 'ECONNREFUSED');
    return;
  }
  try {
    using poller = openPoller();
    poller.addWrite({ fd: c });
    let flags = 0 as IOFlags;
    const event = await within(
      new Promise<IOEvent>((resolve, reject) => {
        poller.polling((efd, ev, fl) => {
          if (efd !== c) return;
          flags = fl;
          resolve(ev);
          return ErrEngineShutdown;
        }).catch(reject);
      }),
      5000,
      'the end of the connect',
    );
    if (libkqueue) {
      // libkqueue reads SO_ERROR itself to build the event, which clears it: there the
      // refusal shows only as EV_EOF on the write event (kernels' kqueue leave SO_ERROR set).
      assert.ok(isErrorEvent(event, flags));
      return;
    }
    const err = socketError(c) as NodeJS.ErrnoException;
    assert.instance(err, Error);
    assert.is(err.code, 'ECONNREFUSED');
    assert.is(err.syscall, 'connect');
    assert.is(socketError(c), undefined, 'reading SO_ERROR clears it');
  } finally {
    closeAll(c);
  }
});

test('EADDRINUSE and ECONNREFUSED are SystemErrors with code, errno, syscall, address and port', () => {
  const lfd = listenTCP('127.0.0.1', 0, { reuseAddr: false });
  const { port } = localAddress(lfd);
  try {
    const inUse = thrown(() => listenTCP('127.0.0.1', port));
    assert.is(inUse.code, 'EADDRINUSE');
    assert.is(inUse.errno, -os.constants.errno.EADDRINUSE);
    assert.is(inUse.syscall, 'listen');
    assert.is(inUse.address, '127.0.0.1');
    assert.is(inUse.port, port);
    assert.match(inUse.message, /EADDRINUSE/);
  } finally {
    close(lfd);
  }
  const refused = thrown(() => dialTCP('127.0.0.1', port));
  assert.is(refused.code, 'ECONNREFUSED');
  assert.is(refused.syscall, 'connect');
  assert.is(refused.port, port);
});

test('reusePort lets two listeners share a port; without it the second gets EADDRINUSE', async () => {
  const a = listenTCP('127.0.0.1', 0, { reusePort: true });
  const { port } = localAddress(a);
  const fds = [a];
  try {
    assert.is(getSocketOption(a, 'reusePort'), 1);
    const b = listenTCP('127.0.0.1', port, { reusePort: true });
    fds.push(b);
    assert.is(localAddress(b).port, port);
    assert.is(thrown(() => listenTCP('127.0.0.1', port)).code, 'EADDRINUSE');
    // Connections reach one of the two: every one is accepted by someone.
    const clients = [dialTCP('127.0.0.1', port), dialTCP('127.0.0.1', port), dialTCP('127.0.0.1', port)];
    fds.push(...clients);
    let accepted = 0;
    const deadline = Date.now() + 5000;
    while (accepted < clients.length && Date.now() < deadline) {
      for (const l of [a, b]) {
        const c = accept(l);
        if (c !== null) {
          accepted++;
          fds.push(c.fd);
        }
      }
      if (accepted < clients.length) await sleep(5);
    }
    assert.is(accepted, clients.length);
  } finally {
    closeAll(...fds);
  }
});

test('bad addresses, ports and options are TypeError/RangeError with codes, never a crash', () => {
  for (const host of ['example.com', '999.1.1.1', '[::1]', '', '127.0.0.1:80']) {
    const err = thrown(() => dialTCP(host, 80));
    assert.instance(err, TypeError);
    assert.is(err.code, 'ERR_INVALID_IP_ADDRESS');
    assert.is(thrown(() => listenTCP(host, 0)).code, 'ERR_INVALID_IP_ADDRESS');
    assert.is(thrown(() => bindUDP(host, 0)).code, 'ERR_INVALID_IP_ADDRESS');
  }
  for (const port of [-1, 65536, 1.5, NaN, Infinity]) {
    const err = thrown(() => listenTCP('127.0.0.1', port));
    assert.instance(err, RangeError);
    assert.is(err.code, 'ERR_OUT_OF_RANGE');
    assert.is(thrown(() => sendTo(0, Buffer.alloc(1), '127.0.0.1', port)).code, 'ERR_OUT_OF_RANGE');
  }
  assert.is(thrown(() => dialTCP('127.0.0.1', 0)).code, 'ERR_OUT_OF_RANGE');
  assert.is(thrown(() => dialTCP('127.0.0.1', '80' as never)).code, 'ERR_INVALID_ARG_TYPE');
  assert.is(thrown(() => dialTCP(1 as never, 80)).code, 'ERR_INVALID_ARG_TYPE');
  assert.is(thrown(() => dialTCP('127.0.0.1', 80, { nonblocking: 1 as never })).code, 'ERR_INVALID_ARG_TYPE');
  assert.is(thrown(() => listenTCP('127.0.0.1', 0, { backlog: -1 })).code, 'ERR_OUT_OF_RANGE');
  assert.is(thrown(() => listenTCP('127.0.0.1', 0, { reusePort: 'yes' as never })).code, 'ERR_INVALID_ARG_TYPE');
  assert.is(thrown(() => listenTCP('127.0.0.1', 0, null as never)).code, 'ERR_INVALID_ARG_TYPE');
});

test('an address net.isIP accepts but the system cannot use is a TypeError wherever an address is taken', () => {
  // A zone that names no interface, and a zone on an address that takes none.
  for (const host of ['fe80::1%no-such-interface0', '::1%lo']) {
    const udp = bindUDP('::1', 0);
    try {
      for (const take of [() => dialTCP(host, 80), () => listenTCP(host, 0), () => bindUDP(host, 0), () => sendTo(udp, Buffer.from('x'), host, 9)]) {
        const err = thrown(take);
        assert.instance(err, TypeError, `${host}: ${err.message}`);
        assert.is(err.code, 'ERR_INVALID_IP_ADDRESS');
        assert.match(err.message, host);
      }
    } finally {
      close(udp);
    }
  }
  // A zone the system knows is no argument error: the kernel decides (no such address here).
  assert.not.instance(thrown(() => listenTCP('fe80::1%1', 0)), TypeError);
});

test('wrong fd kinds give SystemErrors: accept on a pipe or a connected socket, names of a pipe', () => {
  const [r, w] = pipe();
  const [a, b] = socketpair();
  try {
    const notSock = thrown(() => accept(r));
    assert.is(notSock.code, 'ENOTSOCK');
    assert.is(notSock.syscall, 'accept');
    assert.is(thrown(() => accept(a)).code, 'EINVAL');
    assert.is(thrown(() => localAddress(r)).code, 'ENOTSOCK');
    assert.is(thrown(() => remoteAddress(w)).code, 'ENOTSOCK');
    assert.is(thrown(() => socketError(r)).code, 'ENOTSOCK');
    const nodelay = thrown(() => setNoDelay(a));
    assert.is(nodelay.syscall, 'setsockopt');
    // Linux's EOPNOTSUPP is ENOTSUP's number, which Node names ENOTSUP.
    assert.ok(['EOPNOTSUPP', 'ENOTSUP', 'ENOPROTOOPT', 'EINVAL'].includes(nodelay.code), nodelay.code);
    assert.is(thrown(() => sendUrgent(r, Buffer.from('!'))).code, 'ENOTSOCK');
    const udp = bindUDP('127.0.0.1', 0);
    try {
      // Urgent data is TCP's (recent Linux has it on Unix sockets too, so UDP shows the refusal).
      assert.ok(['EOPNOTSUPP', 'ENOTSUP'].includes(thrown(() => sendUrgent(udp, Buffer.from('!'))).code));
    } finally {
      close(udp);
    }
    assert.is(thrown(() => shutdown(r, 'write')).code, 'ENOTSOCK');
    assert.is(thrown(() => shutdown(a, 'sideways' as never)).code, 'ERR_INVALID_ARG_VALUE');
    assert.is(thrown(() => getSocketOption(a, 'colour' as never)).code, 'ERR_INVALID_ARG_VALUE');
    assert.equal(localAddress(a), { address: '', family: 'Unix', port: 0 });
  } finally {
    closeAll(r, w, a, b);
  }
  // Closed and impossible descriptors.
  assert.is(thrown(() => read(r, Buffer.alloc(1))).code, 'EBADF');
  assert.is(thrown(() => accept(r)).code, 'EBADF');
  assert.is(thrown(() => dup(r)).code, 'EBADF');
  assert.is(thrown(() => read(-1, Buffer.alloc(1))).code, 'ERR_OUT_OF_RANGE');
  assert.is(thrown(() => read(2 ** 31, Buffer.alloc(1))).code, 'ERR_OUT_OF_RANGE');
  assert.is(thrown(() => write('3' as never, Buffer.alloc(1))).code, 'ERR_INVALID_ARG_TYPE');
  assert.is(thrown(() => write(0, 'text' as never)).code, 'ERR_INVALID_ARG_TYPE');
});

// ---- Unix stream sockets ----

test('listenUnix + dialUnix + accept exchange bytes; names carry the path', async () => {
  const p = tmpPath('unix');
  fs.rmSync(p, { force: true });
  const lfd = listenUnix(p);
  const fds = [lfd];
  try {
    assert.equal(localAddress(lfd), { address: p, family: 'Unix', port: 0 });
    const c = dialUnix(p);
    fds.push(c);
    assertNonblockingCloexec(c);
    const s = await acceptOne(lfd);
    fds.push(s.fd);
    assertNonblockingCloexec(s.fd);
    assert.equal(s.address, { address: '', family: 'Unix', port: 0 });
    assert.equal(remoteAddress(c), { address: p, family: 'Unix', port: 0 });
    write(c, Buffer.from('over unix'));
    assert.is((await readExactly(s.fd, 9)).toString(), 'over unix');
    const inUse = thrown(() => listenUnix(p));
    assert.is(inUse.code, 'EADDRINUSE');
    assert.is(inUse.address, p);
  } finally {
    closeAll(...fds);
    fs.rmSync(p, { force: true });
  }
  // The file outlives the listener: nobody answers there any more.
  const q = tmpPath('stale');
  fs.rmSync(q, { force: true });
  close(listenUnix(q));
  try {
    assert.is(thrown(() => dialUnix(q)).code, 'ECONNREFUSED');
  } finally {
    fs.rmSync(q, { force: true });
  }
  assert.is(thrown(() => dialUnix(tmpPath('missing'))).code, 'ENOENT');
  assert.is(thrown(() => listenUnix(path.join(os.tmpdir(), 'x'.repeat(200)))).code, 'ENAMETOOLONG');
  assert.is(thrown(() => listenUnix('')).code, 'ERR_INVALID_ARG_VALUE');
  assert.is(thrown(() => dialUnix('/tmp/a\0b')).code, 'ERR_INVALID_ARG_VALUE');
  assert.is(thrown(() => dialUnix(7 as never)).code, 'ERR_INVALID_ARG_TYPE');
});

/** The uid and gid of the user `nobody`, from /etc/passwd; undefined when there is none. */
function nobody(): { uid: number; gid: number } | undefined {
  const line = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('nobody:'));
  if (line === undefined) return undefined;
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/**
 * Connects to the Unix socket `p` from a new node process (as `user` when given): resolves
 * with 'connected' (the child then waits until the server closes the connection) or the
 * connect error's code, and the child itself.
 */
/**
 * A node that `user` may run: this one, unless a directory on its path is closed to them
 * (as the Node matrix's cache under /root is), then a copy in `dir`.
 */
function nodeFor(user: { uid: number; gid: number }, dir: string): string {
  const probe = spawnSync(process.execPath, ['-e', ''], { ...user, cwd: dir });
  if (probe.error === undefined && probe.status === 0) return process.execPath;
  const copy = path.join(dir, 'node');
  fs.copyFileSync(process.execPath, copy);
  fs.chmodSync(copy, 0o755);
  return copy;
}

function unixClient(p: string, cwd: string, user?: { uid: number; gid: number }, node = process.execPath): { child: ChildProcess; result: Promise<string> } {
  const script = `const c = require('node:net').connect(process.argv[1]);
c.on('connect', () => process.stdout.write('connected'));
c.on('error', (e) => { process.stdout.write(e.code); process.exit(0); });
c.on('close', () => process.exit(0));`;
  const [file, args] = node === process.execPath ? nodeCommand(['-e', script, p]) : [node, ['-e', script, p]];
  const child = spawn(file, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'], ...user });
  const result = new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (out === 'connected') resolve(out);
    });
    child.on('error', reject);
    child.on('close', () => resolve(out));
  });
  return { child, result: within(result, 10000, 'the client') };
}

test('listenUnix gives the socket file exactly the mode asked for, whatever the umask', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netpoll-mode-'));
  const before = process.umask();
  try {
    for (const [umask, mode] of [[0, 0o600], [0o022, 0o660], [0o077, 0o666], [0o022, 0o000], [0o002, 0o755]] as const) {
      process.umask(umask);
      const p = path.join(dir, `m${mode.toString(8)}-u${umask.toString(8)}.sock`);
      const lfd = listenUnix(p, { mode });
      try {
        assert.is(fs.statSync(p).mode & 0o777, mode, `mode 0o${mode.toString(8)} under umask 0o${umask.toString(8)}`);
        assert.equal(localAddress(lfd), { address: p, family: 'Unix', port: 0 });
      } finally {
        close(lfd);
      }
    }
    process.umask(0o027);
    const p = path.join(dir, 'default.sock');
    close(listenUnix(p));
    assert.is(fs.statSync(p).mode & 0o777, 0o750, 'without a mode, the umask decides');
    assert.equal(fs.readdirSync(dir).filter((f) => !f.endsWith('.sock')), [], 'nothing else is left in the directory');
  } finally {
    process.umask(before);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.is(thrown(() => listenUnix(path.join(dir, 'x.sock'), { mode: 0o1777 })).code, 'ERR_OUT_OF_RANGE');
  assert.is(thrown(() => listenUnix(path.join(dir, 'x.sock'), { mode: -1 })).code, 'ERR_OUT_OF_RANGE');
  assert.is(thrown(() => listenUnix(path.join(dir, 'x.sock'), { mode: '600' as never })).code, 'ERR_INVALID_ARG_TYPE');
  // null is named as what it is, not as an internal placeholder.
  const nul = thrown(() => listenUnix(path.join(dir, 'x.sock'), { mode: null as never }));
  assert.is(nul.code, 'ERR_INVALID_ARG_TYPE');
  assert.match(nul.message, 'Received null');
  // A decimal 600 where 0o600 was meant says so.
  const decimal = thrown(() => listenUnix(path.join(dir, 'x.sock'), { mode: 600 }));
  assert.is(decimal.code, 'ERR_OUT_OF_RANGE');
  assert.match(decimal.message, 'write 0o600');
});

test('a Unix socket with mode 0o600 refuses another user with EACCES; peerCredentials names who connected', async () => {
  const other = nobody();
  // Running a client as another user takes root (which itself passes every permission check).
  if (!linux || process.getuid?.() !== 0 || other === undefined || nodeThroughLauncher) {
    console.log('  (needs root on Linux, a user nobody, and a node binary that user can run, to run a client as another user: skipped)');
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netpoll-peer-'));
  fs.chmodSync(dir, 0o755); // anyone may enter: the socket's own mode is what decides
  const fds: number[] = [];
  try {
    const privateSock = path.join(dir, 'private.sock');
    fds.push(listenUnix(privateSock, { mode: 0o600 }));
    const theirNode = nodeFor(other, dir);
    assert.is((await unixClient(privateSock, dir, other, theirNode).result), 'EACCES', 'nobody is refused');

    // The same user gets in, and the credentials are the client process's own.
    const mine = unixClient(privateSock, dir);
    assert.is(await mine.result, 'connected');
    const s = await acceptOne(fds[0]!);
    fds.push(s.fd);
    assert.equal(peerCredentials(s.fd), { pid: mine.child.pid, uid: process.getuid!(), gid: process.getgid!() });
    close(fds.pop()!);

    // Open to everyone: nobody connects, and is named as such.
    const openSock = path.join(dir, 'open.sock');
    fds.push(listenUnix(openSock, { mode: 0o666 }));
    const theirs = unixClient(openSock, dir, other, theirNode);
    assert.is(await theirs.result, 'connected');
    const t = await acceptOne(fds[1]!);
    fds.push(t.fd);
    assert.equal(peerCredentials(t.fd), { pid: theirs.child.pid, uid: other.uid, gid: other.gid });
  } finally {
    closeAll(...fds);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('peerCredentials gives pid null for a peer whose pid has no number in this pid namespace', async () => {
  if (!linux || process.getuid?.() !== 0 || nodeThroughLauncher || spawnSync('unshare', ['--pid', '--fork', 'true']).status !== 0) {
    console.log('  (needs root on Linux and unshare --pid: skipped)');
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netpoll-pidns-'));
  const where = path.join(dir, 's.sock');
  // The server runs in a new pid namespace: this process (its client) has no pid there.
  const script = `const { socket } = require(process.argv[1]);
const lfd = socket.listenUnix(process.argv[2]);
process.stdout.write('ready\\n');
const wait = () => { const c = socket.accept(lfd); if (c === null) return setTimeout(wait, 5);
  process.stdout.write(JSON.stringify({ peer: socket.peerCredentials(c.fd), self: process.pid }) + '\\n'); socket.close(c.fd); socket.close(lfd); };
wait();`;
  const child = spawn('unshare', ['--pid', '--fork', process.execPath, '-e', script, path.resolve(__dirname, '..', 'src', 'index.js'), where], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  let fd = -1;
  try {
    await within((async () => { while (!out.includes('ready')) await sleep(5); })(), 10000, 'the server in its own pid namespace');
    fd = dialUnix(where);
    await within((async () => { while (!out.includes('peer')) await sleep(5); })(), 10000, 'the server\'s report');
    const report = JSON.parse(out.split('\n')[1]!) as { peer: socket.PeerCredentials; self: number };
    assert.is(report.self, 1, 'the server is pid 1 of its own namespace');
    assert.equal(report.peer, { pid: null, uid: process.getuid!(), gid: process.getgid!() });
  } finally {
    if (fd >= 0) close(fd);
    child.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('peerCredentials: a socketpair peer is this process; TCP, listeners and pipes are refused', async () => {
  const [a, b] = socketpair();
  const lfd = listenTCP('127.0.0.1', 0);
  const c = dialTCP('127.0.0.1', localAddress(lfd).port);
  const [r, w] = pipe();
  const p = tmpPath('creds');
  fs.rmSync(p, { force: true });
  const ul = listenUnix(p);
  try {
    const creds = peerCredentials(a);
    if (linux) assert.equal(creds, { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
    else assert.is(creds.uid, process.getuid!());
    const tcp = thrown(() => peerCredentials(c));
    assert.is(tcp.code, 'EAFNOSUPPORT');
    assert.is(tcp.syscall, 'getsockopt');
    assert.is(thrown(() => peerCredentials(ul)).code, 'ENOTCONN');
    assert.is(thrown(() => peerCredentials(r)).code, 'ENOTSOCK');
    assert.is(thrown(() => peerCredentials(-1)).code, 'ERR_OUT_OF_RANGE');
  } finally {
    closeAll(a, b, c, lfd, r, w, ul);
    fs.rmSync(p, { force: true });
  }
});

test('on Linux an abstract name reads back as node:net writes it, with a leading null byte, and dials back to node:net\'s server', async () => {
  if (!linux) return;
  // node:net listens on an abstract name from libuv 1.46 (Node 20) on; before, it bound a
  // name of all zeros instead.
  const [major, minor] = process.versions.uv.split('.').map(Number) as [number, number];
  if (major === 1 && minor < 46) {
    console.log(`  (libuv ${process.versions.uv} cannot listen on an abstract name: skipped)`);
    return;
  }
  const name = `\0netpoll-abstract-${process.pid}`;
  let reached = 0;
  const server = net.createServer((c) => {
    reached++;
    c.destroy();
  });
  await new Promise<void>((resolve) => server.listen(name, resolve));
  const client = net.connect(name);
  let fd = -1;
  try {
    await within(new Promise((resolve, reject) => client.on('connect', resolve).on('error', reject)), 5000, 'the connect');
    // libuv 1.46 binds the name padded with null bytes to the whole sun_path; later
    // versions bind it as given. Either way, what is reported is the kernel's name.
    const reported = localAddress(fdOf(server));
    assert.ok(reported.address.startsWith(name), JSON.stringify(reported.address));
    assert.equal(reported, { address: reported.address, family: 'Unix', port: 0 });
    assert.is(remoteAddress(fdOf(client)).address, reported.address);
    assert.is(localAddress(fdOf(client)).address, '', 'a client that never bound is unnamed');
    // The report goes back into dialUnix unchanged, and reaches that server.
    fd = dialUnix(reported.address);
    await within(
      (async () => {
        while (reached < 2) await sleep(5);
      })(),
      5000,
      'node:net accepting the dialUnix connection',
    );
  } finally {
    if (fd >= 0) close(fd);
    client.destroy();
    server.close();
  }
});

test('an abstract name round-trips: dialUnix(localAddress(fd).address) reaches the abstract server, never a file of a look-alike name', async () => {
  if (!linux) {
    assert.is(thrown(() => listenUnix('\0netpoll-abstract')).code, 'ERR_INVALID_ARG_VALUE', 'only Linux has abstract names');
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netpoll-abstract-'));
  const name = `netpoll-rt-${process.pid}`;
  const fds: number[] = [];
  try {
    const abstract = listenUnix(`\0${name}`);
    fds.push(abstract);
    // Planted file sockets spelled the way other tools write the same name ('@name', as ss(8)
    // and Go do), in the directory a relative path would resolve in.
    const decoyAt = listenUnix(path.join(dir, `@${name}`));
    fds.push(decoyAt);
    const reported = localAddress(abstract);
    assert.equal(reported, { address: `\0${name}`, family: 'Unix', port: 0 });
    const c = dialUnix(reported.address);
    fds.push(c);
    assert.is(remoteAddress(c).address, `\0${name}`);
    const s = await acceptOne(abstract);
    fds.push(s.fd);
    assert.is(accept(decoyAt), null, 'the planted file socket got nothing');
    // A name with null bytes inside it and one of the full 108 bytes come back whole.
    for (const odd of [`\0a\0b\0${process.pid}`, `\0${'x'.repeat(107 - String(process.pid).length)}${process.pid}`]) {
      const lfd = listenUnix(odd);
      fds.push(lfd);
      assert.is(localAddress(lfd).address, odd);
      const d = dialUnix(localAddress(lfd).address);
      fds.push(d);
      assert.ok((await acceptOne(lfd)).fd >= 0);
    }
    assert.is(thrown(() => listenUnix(`\0${'y'.repeat(108)}`)).code, 'ENAMETOOLONG');
    // An abstract name has no file: a mode would promise what it cannot keep.
    assert.is(thrown(() => listenUnix(`\0${name}-m`, { mode: 0o600 })).code, 'ERR_INVALID_ARG_VALUE');
    // A null byte anywhere but first is still refused.
    assert.is(thrown(() => dialUnix(`${dir}/a\0b`)).code, 'ERR_INVALID_ARG_VALUE');
  } finally {
    closeAll(...fds);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// ---- UDP ----

for (const host of ['127.0.0.1', '::1']) {
  test(`UDP over ${host}: sendTo and recvFrom carry datagrams and their senders; a poller sees them`, async () => {
    const a = bindUDP(host, 0);
    const b = bindUDP(host, 0);
    try {
      assertNonblockingCloexec(a);
      const aAddr = localAddress(a);
      const bAddr = localAddress(b);
      assert.is(aAddr.family, host === '::1' ? 'IPv6' : 'IPv4');
      const buf = Buffer.alloc(64);
      assert.is(recvFrom(b, buf), null);
      using poller = openPoller();
      poller.addRead({ fd: b });
      assert.is(sendTo(a, Buffer.from('datagram one'), host, bAddr.port), 12);
      assert.is(sendTo(a, new Uint8Array([1, 2, 3]), host, bAddr.port), 3);
      await nextEvent(poller, b, isReadEvent);
      const first = recvFrom(b, buf)!;
      assert.is(first.bytes, 12);
      assert.is(buf.toString('latin1', 0, 12), 'datagram one');
      assert.equal(first.address, aAddr);
      // Datagram boundaries hold: the second arrives alone, even into a larger buffer.
      let second = recvFrom(b, buf);
      for (let i = 0; second === null && i < 100; i++) {
        await sleep(5);
        second = recvFrom(b, buf);
      }
      assert.is(second!.bytes, 3);
      assert.equal([...buf.subarray(0, 3)], [1, 2, 3]);
      // A datagram longer than the buffer is cut to it.
      sendTo(a, Buffer.from('0123456789'), host, bAddr.port);
      await nextEvent(poller, b, isReadEvent);
      assert.is(recvFrom(b, Buffer.alloc(4))!.bytes, 4);
    } finally {
      closeAll(a, b);
    }
  });
}

test('recvFrom on a socket that gives no sender (TCP, a socketpair) reports an empty address of the socket\'s own family', async () => {
  const [a, b] = socketpair();
  const fds = [a, b];
  try {
    for (const host of ['127.0.0.1', '::1']) {
      const lfd = listenTCP(host, 0);
      const c = dialTCP(host, localAddress(lfd).port);
      const s = (await acceptOne(lfd)).fd;
      fds.push(lfd, c, s);
      write(c, Buffer.from('tcp'));
      await readable(s);
      const got = recvFrom(s, Buffer.alloc(8))!;
      assert.is(got.bytes, 3);
      assert.equal(got.address, { address: '', family: host === '::1' ? 'IPv6' : 'IPv4', port: 0 });
    }
    write(a, Buffer.from('unix'));
    await readable(b);
    assert.equal(recvFrom(b, Buffer.alloc(8)), { bytes: 4, address: { address: '', family: 'Unix', port: 0 } });
  } finally {
    closeAll(...fds);
  }
});

test('bindUDP reports EADDRINUSE; reusePort lets two sockets share the port', () => {
  const a = bindUDP('127.0.0.1', 0);
  const { port } = localAddress(a);
  const fds = [a];
  try {
    const err = thrown(() => bindUDP('127.0.0.1', port));
    assert.is(err.code, 'EADDRINUSE');
    assert.is(err.syscall, 'bind');
    const r1 = bindUDP('127.0.0.1', 0, { reusePort: true });
    fds.push(r1);
    fds.push(bindUDP('127.0.0.1', localAddress(r1).port, { reusePort: true }));
  } finally {
    closeAll(...fds);
  }
});

// ---- I/O ----

test('read and write use any TypedArray, DataView or ArrayBuffer in place, honouring its offset', async () => {
  const [a, b] = socketpair();
  try {
    const backing = new ArrayBuffer(16);
    const bytes = new Uint8Array(backing);
    bytes.set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    assert.is(write(a, new Uint16Array(backing, 2, 2)), 4); // bytes 2..5
    assert.is(write(a, new DataView(backing, 10, 3)), 3); // bytes 10..12
    assert.is(write(a, Buffer.from(backing).subarray(14)), 2); // bytes 14, 15
    const into = new Uint8Array(32);
    const view = new Uint8Array(into.buffer, 8, 9);
    assert.is(read(b, view), 9);
    assert.equal([...into.subarray(8, 17)], [2, 3, 4, 5, 10, 11, 12, 14, 15]);
    assert.ok(into.subarray(0, 8).every((x) => x === 0), 'nothing written before the view');
    assert.is(read(b, into), -1, 'an empty nonblocking socket reads -1');
    assert.is(write(a, new ArrayBuffer(5)), 5);
    assert.is(read(b, new ArrayBuffer(8)), 5);
  } finally {
    closeAll(a, b);
  }
});

test('writev gathers and readv scatters in order; both give -1 when they would block', () => {
  const [a, b] = socketpair();
  try {
    const n = writev(a, [Buffer.from('Hello'), new Uint8Array([44, 32]), Buffer.from('World'), Buffer.alloc(0)]);
    assert.is(n, 12);
    const x = Buffer.alloc(4), y = Buffer.alloc(3), z = Buffer.alloc(10);
    assert.is(readv(b, [x, y, z]), 12);
    assert.is(x.toString(), 'Hell');
    assert.is(y.toString(), 'o, ');
    assert.is(z.toString('latin1', 0, 5), 'World');
    assert.is(readv(b, [x]), -1);
    assert.is(writev(a, []), 0);
    // Only IOV_MAX buffers go out in one call: a short write, as writev(2) allows.
    const many = Array.from({ length: socket.IOV_MAX + 50 }, (_, i) => Buffer.from([i & 0xff]));
    assert.is(writev(a, many), socket.IOV_MAX);
    const back = Buffer.alloc(socket.IOV_MAX + 50);
    assert.is(read(b, back), socket.IOV_MAX);
    assert.is(back[socket.IOV_MAX - 1], (socket.IOV_MAX - 1) & 0xff);
    // Fill the socket: writev then reports -1, as write does.
    const chunk = Buffer.alloc(65536);
    let filled = false;
    for (let i = 0; i < 10000 && !filled; i++) filled = writev(a, [chunk, chunk]) === -1;
    assert.ok(filled, 'writev returned -1 once the socket buffer was full');
    assert.is(write(a, chunk), -1);
    assert.is(thrown(() => writev(a, 'no' as never)).code, 'ERR_INVALID_ARG_TYPE');
    assert.is(thrown(() => readv(b, [x, 'no' as never])).code, 'ERR_INVALID_ARG_TYPE');
  } finally {
    closeAll(a, b);
  }
});

/** Detaches `buf`'s memory and lets the collector free it, as a hostile getter would. */
function detach(buf: ArrayBufferView): void {
  structuredClone(buf.buffer, { transfer: [buf.buffer as ArrayBuffer] });
  globalThis.gc?.();
}

test('readv and writev read each element of bufs before using any: a getter that frees an earlier buffer cannot make them touch freed memory', () => {
  // The issue's attack: the getter of index 1 transfers index 0's buffer (1 KiB) and
  // forces a collection on its second call, after the first call passed the checks.
  const [a, b] = socketpair();
  try {
    write(a, Buffer.alloc(4096, 7));
    const buf = new Uint8Array(1024);
    const bufs: Uint8Array[] = [buf];
    let calls = 0;
    Object.defineProperty(bufs, 1, {
      enumerable: true,
      get() {
        if (++calls === 2) detach(buf);
        return new Uint8Array(16);
      },
    });
    assert.is(readv(b, bufs), 1040);
    assert.is(calls, 1, 'readv reads each element once, so the one it checked is the one it uses');
    assert.is(buf.byteLength, 1024, 'and nothing was detached under it');
    assert.ok(buf.every((x) => x === 7));

    // The binding's own contract, for any caller: every element is read (running the
    // getter) before any pointer is taken, and a detached buffer counts as empty.
    const native = binding as unknown as Record<'readv' | 'writev', (fd: number, bufs: unknown) => number>;
    for (const io of ['readv', 'writev'] as const) {
      const victim = new Uint8Array(1024);
      const small = new Uint8Array(16);
      const list: Uint8Array[] = [victim];
      Object.defineProperty(list, 1, {
        enumerable: true,
        get() {
          detach(victim);
          return small;
        },
      });
      assert.is(native[io](io === 'readv' ? b : a, list), 16, `${io} used the 16 live bytes only`);
      assert.is(victim.byteLength, 0);
    }
    // A hole reads through Array.prototype, where a getter may hide as well.
    const victim = new Uint8Array(1024);
    const holey: Uint8Array[] = [victim];
    holey.length = 3;
    holey[2] = new Uint8Array(8);
    Object.defineProperty(Array.prototype, 1, { configurable: true, get: () => (detach(victim), new Uint8Array(8)) });
    try {
      assert.is(native.readv(b, holey), 16);
    } finally {
      delete (Array.prototype as unknown as Record<number, unknown>)[1];
    }
    // A detached buffer passed as such is empty too, never memory that was freed.
    const gone = new Uint8Array(64);
    detach(gone);
    assert.is(readv(b, [gone, new Uint8Array(4)]), 4);
    assert.is(writev(a, [gone]), 0);
    assert.is(read(b, gone), 0);
    assert.is(write(a, gone), 0);
  } finally {
    closeAll(a, b);
  }
});

test('reads give 0 at end of stream after the peer shuts down its writing side', async () => {
  const lfd = listenTCP('127.0.0.1', 0);
  const c = dialTCP('127.0.0.1', localAddress(lfd).port);
  const s = (await acceptOne(lfd)).fd;
  try {
    write(c, Buffer.from('last words'));
    shutdown(c, 'write');
    assert.is((await readExactly(s, 10)).toString(), 'last words');
    using poller = openPoller();
    poller.addRead({ fd: s });
    await nextEvent(poller, s, isReadEvent);
    assert.is(read(s, Buffer.alloc(8)), 0);
    // The other direction still works: a half-close.
    assert.is(write(s, Buffer.from('reply')), 5);
    assert.is((await readExactly(c, 5)).toString(), 'reply');
    assert.is(thrown(() => write(c, Buffer.from('x'))).code, 'EPIPE');
    shutdown(c, 'both');
    const udp = bindUDP('127.0.0.1', 0);
    try {
      assert.is(thrown(() => shutdown(udp, 'write')).code, 'ENOTCONN');
    } finally {
      close(udp);
    }
  } finally {
    closeAll(c, s, lfd);
  }
});

test('writing to a vanished peer gives EPIPE as an error and never raises SIGPIPE', async () => {
  let sigpipes = 0;
  const onSigpipe = (): void => {
    sigpipes++;
  };
  // A listener replaces Node's SIG_IGN with a real handler, so a raised SIGPIPE would be seen.
  process.on('SIGPIPE', onSigpipe);
  try {
    // The detector works: a SIGPIPE sent on purpose is counted.
    process.kill(process.pid, 'SIGPIPE');
    for (let i = 0; i < 100 && sigpipes === 0; i++) await sleep(5);
    assert.is(sigpipes, 1, 'the SIGPIPE handler sees a real SIGPIPE');

    const [a, b] = socketpair();
    close(b);
    const err = thrown(() => write(a, Buffer.from('anyone?')));
    assert.is(err.code, 'EPIPE');
    assert.is(err.syscall, 'write');
    assert.is(thrown(() => writev(a, [Buffer.from('anyone?')])).code, 'EPIPE');
    close(a);

    const lfd = listenTCP('127.0.0.1', 0);
    const c = dialTCP('127.0.0.1', localAddress(lfd).port);
    close((await acceptOne(lfd)).fd);
    close(lfd);
    const codes = new Set<string>();
    for (let i = 0; i < 200 && !codes.has('EPIPE'); i++) {
      try {
        write(c, Buffer.from('still there?'));
      } catch (e) {
        codes.add((e as NodeJS.ErrnoException).code!);
      }
      await sleep(2);
    }
    close(c);
    assert.ok(codes.has('EPIPE'), `EPIPE among ${[...codes].join(', ')}`);
    await sleep(50);
    assert.is(sigpipes, 1, 'no SIGPIPE beyond the one sent on purpose');
  } finally {
    process.off('SIGPIPE', onSigpipe);
  }
});

// A child that writes 1 MiB with netpoll to a blocking FIFO, with SIGPIPE at its default
// disposition (which kills): Node ignores SIGPIPE, a listener would catch it, and removing
// the last listener restores the default, as an embedder that never ignored it has.
const fifoWriter = `
const fs = require('node:fs');
const netpoll = require(process.argv[2]);
const fifo = process.argv[3], how = process.argv[4];
const noop = () => {};
process.on('SIGPIPE', noop);
process.off('SIGPIPE', noop);
const status = fs.readFileSync('/proc/self/status', 'utf8');
const bit = 1n << 12n; // SIGPIPE is 13
for (const name of ['SigIgn', 'SigCgt']) {
  if ((BigInt('0x' + new RegExp(name + ':\\\\s+(\\\\w+)').exec(status)[1]) & bit) !== 0n) throw new Error('SIGPIPE is not at its default disposition: ' + name);
}
const fd = fs.openSync(fifo, 'w'); // blocking: write() waits for the reader, which leaves midway
const big = Buffer.alloc(1 << 20, 0x61);
const n = how === 'writev' ? netpoll.socket.writev(fd, [big.subarray(0, 1 << 19), big.subarray(1 << 19)]) : netpoll.write(fd, big);
process.stdout.write(JSON.stringify({ n }));
`;
// Reads 200000 bytes from the FIFO, then exits without reading more.
const fifoReader = `
const fs = require('node:fs');
const fd = fs.openSync(process.argv[1], 'r');
const buf = Buffer.alloc(65536);
for (let got = 0; got < 200000; ) got += fs.readSync(fd, buf, 0, Math.min(buf.length, 200000 - got), null);
`;

for (const how of ['write', 'writev'] as const) {
  test(`a ${how} cut short by a reader that leaves mid-write returns the partial count and raises no SIGPIPE`, async () => {
    if (!linux) return; // the child reads /proc; Linux is where a partial write raises SIGPIPE
    if (nodeThroughLauncher) {
      // Under qemu-user the child's /proc signal state and SIGPIPE itself are the emulator's.
      console.log('  (children start through a launcher (qemu-user): skipped)');
      return;
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netpoll-fifo-'));
    try {
      const fifo = path.join(dir, 'fifo');
      assert.is(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
      const script = path.join(dir, 'writer.js');
      fs.writeFileSync(script, fifoWriter);
      const reader = spawn(...nodeCommand(['-e', fifoReader, fifo]), { stdio: 'ignore' });
      const writer = spawn(...nodeCommand([script, path.resolve(__dirname, '..', 'src', 'index.js'), fifo, how]), { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      writer.stdout!.on('data', (d) => (out += d));
      writer.stderr!.on('data', (d) => (err += d));
      const [code, signal] = await within(
        new Promise<[number | null, NodeJS.Signals | null]>((resolve) => writer.on('close', (c, s) => resolve([c, s]))),
        20000,
        'the writer',
      ).finally(() => reader.kill());
      assert.is(signal, null, `the writer was killed by ${signal}`);
      assert.is(code, 0, err);
      const { n } = JSON.parse(out) as { n: number };
      assert.ok(n >= 200000 && n < 1 << 20, `a partial count: ${n}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('TCP urgent data is reported to the poller as an exceptional read event (EPOLLPRI)', async () => {
  const lfd = listenTCP('127.0.0.1', 0);
  const c = dialTCP('127.0.0.1', localAddress(lfd).port);
  const s = (await acceptOne(lfd)).fd;
  try {
    using poller = openPoller();
    poller.addRead({ fd: s });
    assert.is(sendUrgent(c, Buffer.from('!')), 1);
    const one = Buffer.alloc(1);
    let got: number;
    if (Backend === 'epoll') {
      const ev = await nextEvent(poller, s, isReadEvent);
      assert.ok(ev & EPOLLPRI, 'EPOLLPRI is set');
      assert.not.ok(ev & EPOLLIN, 'no normal data, so no EPOLLIN');
      // Read the urgent byte before a normal read passes its mark (which would drop it).
      got = recvUrgent(s, one);
    } else {
      // kqueue has no portable report of urgent data (FreeBSD and libkqueue report
      // nothing, macOS flags a read event EV_OOBAND; docs/backends.md): ask for the
      // byte until it is there (EINVAL or EAGAIN until then), for at most 2 s.
      got = -1;
      for (let i = 0; i < 200 && got < 0; i++) {
        try {
          got = recvUrgent(s, one);
        } catch {
          got = -1;
        }
        if (got < 0) await sleep(10);
      }
    }
    assert.is(got, 1);
    assert.is(one.toString(), '!');
    assert.is(read(s, Buffer.alloc(4)), -1, 'the urgent byte is not in the normal stream');
    assert.is(thrown(() => recvUrgent(s, one)).code, 'EINVAL', 'an urgent byte reads once');
  } finally {
    closeAll(c, s, lfd);
  }
});

// ---- options ----

test('setNoDelay and setKeepAlive set what getSocketOption reads back', async () => {
  const lfd = listenTCP('127.0.0.1', 0);
  const c = dialTCP('127.0.0.1', localAddress(lfd).port);
  try {
    assert.is(getSocketOption(c, 'noDelay'), 0);
    setNoDelay(c);
    assert.is(getSocketOption(c, 'noDelay'), 1);
    setNoDelay(c, false);
    assert.is(getSocketOption(c, 'noDelay'), 0);
    assert.is(getSocketOption(c, 'keepAlive'), 0);
    setKeepAlive(c, true);
    assert.is(getSocketOption(c, 'keepAlive'), 1);
    setKeepAlive(c, true, 60);
    assert.is(getSocketOption(c, 'keepAliveIdle'), 60);
    if (linux) {
      assert.is(getSocketOption(c, 'keepAliveInterval'), 12);
      assert.is(getSocketOption(c, 'keepAliveCount'), 5);
    }
    setKeepAlive(c, false);
    assert.is(getSocketOption(c, 'keepAlive'), 0);
    assert.is(getSocketOption(lfd, 'reuseAddr'), 1);
    assert.is(thrown(() => setKeepAlive(c, true, 0)).code, 'ERR_OUT_OF_RANGE');
    assert.is(thrown(() => setKeepAlive(c, 'on' as never)).code, 'ERR_INVALID_ARG_TYPE');
    assert.is(thrown(() => setNoDelay(c, 1 as never)).code, 'ERR_INVALID_ARG_TYPE');
  } finally {
    closeAll(c, lfd);
  }
});

test('setRecvBuffer and setSendBuffer change the kernel buffers', () => {
  const [a, b] = socketpair();
  try {
    setRecvBuffer(a, 65536);
    const bigRecv = getSocketOption(a, 'recvBuffer');
    assert.ok(bigRecv >= 65536, `recvBuffer ${bigRecv}`);
    setRecvBuffer(a, 4096);
    assert.ok(getSocketOption(a, 'recvBuffer') < bigRecv);
    setSendBuffer(a, 65536);
    const bigSend = getSocketOption(a, 'sendBuffer');
    assert.ok(bigSend >= 65536, `sendBuffer ${bigSend}`);
    setSendBuffer(a, 4096);
    assert.ok(getSocketOption(a, 'sendBuffer') < bigSend);
    assert.is(thrown(() => setRecvBuffer(a, 0)).code, 'ERR_OUT_OF_RANGE');
    assert.is(thrown(() => setSendBuffer(a, 2 ** 31)).code, 'ERR_OUT_OF_RANGE');
  } finally {
    closeAll(a, b);
  }
});

// ---- dup and Node's own sockets ----

test('dup gives a close-on-exec fd for the same socket, which outlives the original', async () => {
  const [a, b] = socketpair();
  const copy = dup(a);
  try {
    assert.is.not(copy, a);
    assertNonblockingCloexec(copy);
    close(a);
    write(copy, Buffer.from('via dup'));
    assert.is((await readExactly(b, 7)).toString(), 'via dup');
  } finally {
    closeAll(copy, b);
  }
});

test('takeFd moves a listening net.Server into a poller: it accepts node:net clients', async () => {
  const server = net.createServer(() => assert.unreachable('Node no longer accepts'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  assert.is(fdOf(server), (server as unknown as { _handle: { fd: number } })._handle.fd);
  const lfd = takeFd(server);
  assert.not.ok(server.listening, 'the server is closed');
  assertNonblockingCloexec(lfd);
  assert.is(localAddress(lfd).port, port);
  const client = net.connect(port, '127.0.0.1');
  const fds = [lfd];
  try {
    const received = new Promise<string>((resolve, reject) => {
      client.on('data', (d) => resolve(d.toString()));
      client.on('error', reject);
    });
    const s = await acceptOne(lfd);
    fds.push(s.fd);
    write(s.fd, Buffer.from('from the poller'));
    assert.is(await within(received, 5000, 'the reply'), 'from the poller');
  } finally {
    client.destroy();
    closeAll(...fds);
  }
});

test('takeFd of a net.Server on a Unix path keeps the path: clients still reach the taken listener', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netpoll-take-'));
  const p = path.join(dir, 'server.sock');
  const server = net.createServer(() => assert.unreachable('Node no longer accepts'));
  await new Promise<void>((resolve) => server.listen(p, resolve));
  const fds: number[] = [];
  try {
    fds.push(takeFd(server));
    assert.not.ok(server.listening, 'the server is closed');
    assert.equal(fs.readdirSync(dir), ['server.sock'], 'the path is there, and no spare name is left');
    assert.equal(localAddress(fds[0]!), { address: p, family: 'Unix', port: 0 });
    const c = dialUnix(p);
    fds.push(c);
    const s = await acceptOne(fds[0]!);
    fds.push(s.fd);
    write(c, Buffer.from('still here'));
    assert.is((await readExactly(s.fd, 10)).toString(), 'still here');
  } finally {
    closeAll(...fds);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  if (!linux) return;
  // An abstract name (Linux) has no file to lose.
  const name = `\0netpoll-take-${process.pid}`;
  const abstract = net.createServer(() => assert.unreachable('Node no longer accepts'));
  await new Promise<void>((resolve) => abstract.listen(name, resolve));
  const lfd = takeFd(abstract);
  const client = net.connect(name);
  try {
    await within(new Promise((resolve, reject) => client.on('connect', resolve).on('error', reject)), 5000, 'the connect');
    close((await acceptOne(lfd)).fd);
  } finally {
    client.destroy();
    close(lfd);
  }
});

test('takeFd moves a connected net.Socket: its bytes come through the poller from then on', async () => {
  let taken: number | undefined;
  const got = new Promise<number>((resolve) => {
    const server = net.createServer((conn) => {
      taken = takeFd(conn);
      server.close();
      resolve(taken);
    });
    server.listen(0, '127.0.0.1', () => {
      const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1', () => {
        client.write('after the handover');
        client.end();
      });
    });
  });
  const fd = await within(got, 5000, 'a connection');
  try {
    assertNonblockingCloexec(fd);
    assert.is((await readExactly(fd, 18)).toString(), 'after the handover');
  } finally {
    closeAll(fd);
  }
  const err = thrown(() => fdOf(new net.Socket()));
  assert.instance(err, TypeError);
  assert.is(err.code, 'ERR_INVALID_ARG_VALUE');
  assert.is(thrown(() => fdOf(null as never)).code, 'ERR_INVALID_ARG_TYPE');
});

// ---- packaging ----

test('the package exports the toolkit as `socket` and as the subpath netpoll/socket', () => {
  const require = createRequire(__filename);
  const root = require('netpoll') as typeof import('../src/index.js');
  const sub = require('netpoll/socket') as typeof socket;
  assert.is(sub.listenTCP, socket.listenTCP);
  assert.is(root.socket.accept, sub.accept);
  assert.is(root.read, sub.read);
  assert.is(root.dialTCP, sub.dialTCP);
  assert.is(typeof root.openPoller, 'function');
});

test('read and write take an offset and a length, as fs.readSync/writeSync do, and refuse ranges outside the buffer', () => {
  const [a, b] = socket.socketpair();
  try {
    assert.is(write(a, Buffer.from('abcdef'), 2, 3), 3);
    const buf = Buffer.alloc(8, '.');
    assert.is(read(b, buf, 4, 2), 2);
    assert.is(buf.toString(), '....cd..');
    assert.is(read(b, buf, 7), 1, 'length defaults to the rest of the buffer');
    assert.is(buf.toString(), '....cd.e');
    assert.is(write(a, new Uint16Array([0x4241, 0x4443]), 2), 2, 'offsets count bytes, whatever the element size');
    assert.is(read(b, buf), 2);
    assert.is(buf.toString('latin1', 0, 2), 'CD');
    assert.instance(thrown(() => write(a, buf, 9)), RangeError);
    assert.instance(thrown(() => write(a, buf, 4, 5)), RangeError);
    assert.instance(thrown(() => read(b, buf, -1, 1)), RangeError);
    assert.instance(thrown(() => read(b, buf, 1.5, 1)), RangeError);
    assert.instance(thrown(() => read(b, buf, '1' as unknown as number)), TypeError);
  } finally {
    close(a);
    close(b);
  }
});

test('the native read and write refuse bad arguments with TypeError/RangeError, even called directly', () => {
  // src/socket.ts validates first; the addon checks again so that nothing reaching it
  // (a future caller, a bug) can read or write outside a buffer or crash the process.
  const native = binding as unknown as Record<'read' | 'write', (...args: unknown[]) => number>;
  const [a, b] = socket.socketpair();
  try {
    const buf = Buffer.alloc(8);
    assert.instance(thrown(() => native.read()), TypeError);
    assert.instance(thrown(() => native.read('3', buf)), TypeError);
    assert.instance(thrown(() => native.read(b)), TypeError);
    assert.instance(thrown(() => native.read(b, {})), TypeError);
    assert.instance(thrown(() => native.write(a, buf, 'x', 1)), TypeError);
    assert.instance(thrown(() => native.write(a, buf, 0)), TypeError);
    assert.instance(thrown(() => native.write(a, buf, 4, 5)), RangeError);
    assert.instance(thrown(() => native.write(a, buf, -1, 1)), RangeError);
    assert.instance(thrown(() => native.write(a, buf, NaN, 1)), RangeError);
    assert.is(native.write(a, Buffer.from('xyz'), undefined, undefined), 3, 'undefined offset and length: the whole buffer');
    assert.is(native.write(a, new Float64Array(1)), 8, 'a TypedArray counts bytes');
    assert.is(native.read(b, new DataView(new ArrayBuffer(16)), 0, 11), 11);
    assert.is(native.read(b, new ArrayBuffer(4)), -os.constants.errno.EAGAIN, 'nothing left: -EAGAIN');
  } finally {
    close(a);
    close(b);
  }
});

test.run();
