// Workers terminated in the middle of a call into the binding. worker.terminate() lands
// at any instant: once it has, every Node-API call that needs JavaScript (coercing a
// value, reading an array element, creating a buffer, unwrapping an object) fails, and
// the binding must take that as "the environment is going away", never as a value it
// can use. Two such places aborted the process on every Node version: a boolean read
// through node-addon-api's ToBoolean (setRef, endRound: "FATAL ERROR: Error::New
// napi_get_last_error_info") and an unwrap in RemoteChannel.connect (a segfault).
//
// Each round starts workers that call every entry point of the binding in a tight loop,
// with real fds (pipes, socketpairs, loopback TCP and UDP), a poller on the waiter-thread
// path, and remote tasks and replies of every value kind (numbers, strings, Buffers,
// ArrayBuffers, typed arrays, serialized values) flowing through a poller's queue, and
// terminates them after a few milliseconds.
//
// NETPOLL_TERMINATE_ROUNDS sets the rounds (default 120; 24 under AddressSanitizer, where a
// worker takes over a second to start and stop).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { openPoller } from '../../src/index.js';
import { libkqueue, sleep, within } from '../helpers.js';
import { trapProcessFailures } from './support.js';

const ASAN = /asan/i.test(process.env.LD_PRELOAD ?? '');
const ROUNDS = Number(process.env.NETPOLL_TERMINATE_ROUNDS ?? (ASAN ? 24 : 120));
const WORKERS = 2;
const bindingPath = path.resolve(__dirname, '..', '..', 'src', 'binding.js');
const indexPath = path.resolve(__dirname, '..', '..', 'src', 'index.js');

/**
 * Every entry point, with arguments it accepts; 'ready' is posted after the first full
 * pass, so a call that throws on its own (a wrong argument here) fails the test instead
 * of ending the loop unseen.
 */
const body = `
const { parentPort } = require('node:worker_threads');
const { binding: b } = require(${JSON.stringify(bindingPath)});
const np = require(${JSON.stringify(indexPath)});
const codes = b.remoteCodes;
const k = b.socketConstants;
const check = (what, v) => { if (typeof v === 'number' && v < 0 && v !== -11) throw new Error(what + ' failed: ' + v); return v; };
const events = new Int32Array(new SharedArrayBuffer(4 * (3 * b.backend.MaxPollEventsCap + 2)));
const native = new b.NativePoller();
check('open', native.open(false, events));
// A second poller on the waiter-thread path: its thread is armed by start() and joined by
// the teardown of a terminated worker.
const threaded = new b.NativePoller();
check('open threaded', threaded.open(true, new Int32Array(new SharedArrayBuffer(events.byteLength))));
const id = check('remoteOpen', native.remoteOpen(2, '["a","b"]', 'token'));
const hdr = new Float64Array(codes.ENTRY * 16);
const values = [];
const channel = new b.RemoteChannel(() => {}, new Float64Array(codes.ENTRY * 16), []);
const staging = new Uint8Array(16384).fill(65);
const listener = check('listenTCP', b.listenTCP('127.0.0.1', 0, 64, 0));
const port = b.localAddress(listener).port;
const udp = check('bindUDP', b.bindUDP('127.0.0.1', 0, 0));
const udpPort = b.localAddress(udp).port;
const buf = Buffer.alloc(64, 1);
const bufs = [Buffer.alloc(8, 2), new Uint8Array(8), new ArrayBuffer(8)];
const handle = np.openPoller().handle({ echo: (x) => x });
const remote = np.connectPoller(handle);
let first = true;
for (;;) {
  native.setRef(true); native.setRef(false);
  native.wake(); native.endRound(false); native.endRound(true);
  native.start(() => {}, {}); native.pause(); native.resume(); native.stop();
  threaded.start(() => {}, {}); threaded.setRef(false); threaded.wake(); threaded.pause(); threaded.resume(); threaded.stop();
  void native.fd; void native.capacity; void native.lastBatchTime; void native.remoteQueued; void native.events;
  const [r, w] = check('pipe', b.pipe());
  check('ctl add', native.ctl(b.CTL_ADD, r, b.INTEREST_READ));
  check('ctl mod', native.ctl(b.CTL_MOD, r, b.INTEREST_READ | b.INTEREST_WRITE));
  check('ctl del', native.ctl(b.CTL_DEL, r, 0));
  check('write', b.write(w, buf)); check('writev', b.writev(w, bufs));
  check('read', b.read(r, buf)); check('readv', b.readv(r, bufs));
  b.close(r); b.close(w);
  const [s1, s2] = check('socketpair', b.socketpair());
  b.peerCredentials(s1); b.shutdown(s1, k.SHUT_WR); b.close(s1); b.close(s2);
  const c = check('dialTCP', b.dialTCP('127.0.0.1', port, 1));
  const a = b.accept(listener);
  if (typeof a === 'object') { b.remoteAddress(a.fd); b.setKeepAlive(a.fd, 1, 5); b.sendUrgent(a.fd, buf); b.close(a.fd); }
  b.setSockOpt(c, k.options.noDelay, 1); b.getSockOpt(c, k.options.noDelay); b.socketError(c); b.recvUrgent(c, buf);
  const d = b.dup(c); b.close(d); b.close(c);
  b.sendTo(udp, buf, '127.0.0.1', udpPort); b.recvFrom(udp, buf);
  const link = channel.connect(id, 'token');
  if (typeof link !== 'object') throw new Error('connect failed: ' + link);
  // Every kind of value a delivery makes in JavaScript (napi_create_buffer for the shared
  // chunk, napi_create_arraybuffer for a payload of its own, strings, napi_set_element),
  // both ways: tasks taken by the owner, and replies sent back with payloads.
  const E = codes.ENTRY;
  const task = new Float64Array(E * 6);
  task.set([1, 0, codes.NUMBER, 7, 0], 0);
  task.set([2, 1 | (1 << 1), codes.STRING, 0, 64], E);
  task.set([3, 0, codes.BUFFER, 64, 100], 2 * E);
  task.set([4, 1 << 1, codes.ARRAYBUFFER, 200, 9000], 3 * E);
  task.set([5, 0, codes.TYPED + 8, 9200, 64], 4 * E);
  task.set([6, 0, codes.SERIALIZED, 9300, 32], 5 * E);
  check('flush', link.flush(task, 6, staging));
  link.close();
  const n = native.remoteTake(hdr, values, true);
  for (let i = 0; i < n; i++) { hdr[i * E + 1] = 0; hdr[i * E + 2] = [codes.NUMBER, codes.STRING, codes.ARRAYBUFFER][i % 3]; hdr[i * E + 3] = 0; hdr[i * E + 4] = [0, 4000, 9000][i % 3]; }
  native.remoteReply(hdr, n, staging);
  void remote.trigger(np.Priority.High, 'echo', 1).catch(() => {});
  np.openPoller().close();
  if (first) { first = false; parentPort.postMessage('ready'); }
}`;

/** Poller descriptors: a terminated worker's cleanup hook must have closed all of them. */
const POLLER_FD = /^anon_inode:\[?(eventpoll|eventfd)\]?$/;

/**
 * How long a terminated worker's poller descriptors may take to close. On epoll (and a
 * kernel's kqueue) they are closed before the worker's 'exit' event: the addon's
 * teardown hook closes them synchronously, and the test reads the table at once.
 * libkqueue frees a kqueue asynchronously: close(kq) only closes the write end of its
 * close-detect pipe, and libkqueue's monitoring thread, woken by the pipe's hang-up,
 * closes the kqueue's epoll fd, its filters' eventfds and the pipe's read end later,
 * whenever that thread gets a CPU. Under load that is after 'exit'; a leak is what is
 * still open after this bound.
 */
const SETTLE_MS = libkqueue ? 15000 : 0;

/** The fds that `fdinfo` of an epoll fd lists as watched (its `tfd:` lines). */
function watchedBy(epollFd: number): number[] {
  try {
    return [...fs.readFileSync(`/proc/self/fdinfo/${epollFd}`, 'utf8').matchAll(/^tfd:\s+(\d+)/gm)].map((m) => Number(m[1]));
  } catch {
    return [];
  }
}

/**
 * The fds opened since `before` and still open once the table has settled: no poller
 * descriptor among them, none of them still watched by an epoll fd that predates the
 * round (under libkqueue: the read end of a freed kqueue's close-detect pipe, which the
 * monitoring thread watches until it closes it, and which the sweep below must not
 * close under it), and the same list twice in a row. Gives up after SETTLE_MS and
 * returns what is left, for the assertion to name.
 */
async function settledLeftovers(before: Map<number, string>): Promise<{ left: Array<[number, string]>; waitedMs: number }> {
  const started = Date.now();
  let previous = '';
  for (let pause = 1; ; pause = Math.min(2 * pause, 50)) {
    const now = openFds();
    const left = [...now].filter(([fd, link]) => before.get(fd) !== link);
    const waitedMs = Date.now() - started;
    if (waitedMs >= SETTLE_MS) return { left, waitedMs };
    const watched = new Set<number>();
    for (const [fd, link] of now) if (before.get(fd) === link && POLLER_FD.test(link)) for (const w of watchedBy(fd)) watched.add(w);
    const busy = left.some(([fd, link]) => POLLER_FD.test(link) || watched.has(fd));
    const key = JSON.stringify(left);
    if (!busy && key === previous) return { left, waitedMs };
    previous = busy ? '' : key;
    await sleep(pause);
  }
}

/** This process's fds and what each is (its /proc link), without the listing's own fd. */
function openFds(): Map<number, string> {
  const fds = new Map<number, string>();
  for (const name of fs.readdirSync('/proc/self/fd')) {
    try {
      const link = fs.readlinkSync(`/proc/self/fd/${name}`);
      if (!link.startsWith('/proc/')) fds.set(Number(name), link);
    } catch {
      // the listing's own fd, closed by now
    }
  }
  return fds;
}

test(`workers terminated mid-call into the binding, ${ROUNDS} rounds x ${WORKERS} workers: the process never aborts`, async () => {
  const trap = trapProcessFailures();
  const started = Date.now();
  let terminated = 0;
  let swept = 0;
  let slowest = 0;
  const errors: unknown[] = [];
  // libkqueue keeps process-wide descriptors of its own (an epoll fd and an eventfd)
  // from the first kqueue() on: open one here, so that they predate the rounds.
  openPoller().close();
  for (let round = 0; round < ROUNDS; round++) {
    const before = openFds();
    const workers = Array.from({ length: WORKERS }, () => new Worker(body, { eval: true }));
    const exits = workers.map((w) => new Promise<number>((resolve) => w.once('exit', resolve)));
    for (const w of workers) w.on('error', (e) => errors.push(e));
    await within(
      Promise.all(
        workers.map(
          (w) =>
            new Promise<void>((resolve, reject) => {
              w.once('message', () => resolve());
              w.once('error', reject);
            }),
        ),
      ),
      20000,
      `round ${round}: workers ready`,
    );
    await new Promise((resolve) => setTimeout(resolve, round % 4));
    await Promise.all(workers.map((w) => w.terminate()));
    const codes = await Promise.all(exits);
    assert.equal(codes, workers.map(() => 1), `round ${round}: every worker ended by terminate()`);
    assert.equal(errors, [], `round ${round}: no worker failed on its own`);
    terminated += workers.length;
    // The pipes and sockets a worker had open when it was stopped are its own leak, not
    // the binding's: close them, so that the rounds do not run out of fds.
    const { left, waitedMs } = await settledLeftovers(before);
    slowest = Math.max(slowest, waitedMs);
    assert.equal(left.filter(([, link]) => POLLER_FD.test(link)), [], `round ${round}: the pollers of terminated workers were closed (after ${waitedMs} ms)`);
    for (const [fd] of left) fs.closeSync(fd);
    swept += left.length;
  }
  console.log(`  [terminate] ${terminated} workers terminated mid-call in ${((Date.now() - started) / 1000).toFixed(1)} s; ${swept} of their socket and pipe fds swept${SETTLE_MS ? `; their pollers closed ${slowest} ms after exit at the latest` : ''}`);
  assert.equal(trap.failures, []);
});

test.run();
