// Model-based property test: random sequences of registration, data, peer-close,
// trigger (local, and remote from a second thread), polling, iteration and close steps
// over a real pipe (both ends), a socketpair and a loopback TCP connection, each step
// checked against a model of what the kernel must report through the poller: which
// fds, which event bits, which errors, which callback, which tasks.
//
// Bounded in `npm test` (NETPOLL_MODEL_RUNS sequences of at most NETPOLL_MODEL_STEPS
// steps, 1,000 x 12 by default); `npm run fuzz` raises both. A failure prints
// fast-check's seed and path and the shrunk step list; replay it with
// NETPOLL_MODEL_SEED=<seed> NETPOLL_MODEL_PATH=<path>.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type * as net from 'node:net';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import * as fc from 'fast-check';
import {
  Backend,
  ErrEngineShutdown,
  ErrPollerClosed,
  Priority,
  close,
  openPoller,
  pipe,
  read,
  socketpair,
  write,
  type PollAttachment,
  type PollEventHandler,
  type Poller,
  type PollerHandle,
} from '../../src/index.js';
import { openFdCount, sleep } from '../helpers.js';
import { TcpPeers, trapProcessFailures } from './support.js';

const RUNS = Number(process.env.NETPOLL_MODEL_RUNS ?? 1000);
const STEPS = Number(process.env.NETPOLL_MODEL_STEPS ?? 12);
const SEED = process.env.NETPOLL_MODEL_SEED === undefined ? undefined : Number(process.env.NETPOLL_MODEL_SEED);
const PATH = process.env.NETPOLL_MODEL_PATH;
/** How long an expected event may take to show up (TCP segments cross the loopback asynchronously). */
const DEADLINE_MS = 3000;

// The epoll bits the model predicts (the kernel's poll masks as epoll reports them).
const IN = 0x1, PRI = 0x2, OUT = 0x4, ERR = 0x8, HUP = 0x10, RDHUP = 0x2000;

type Kind = 'pipeR' | 'pipeW' | 'unix' | 'tcp';
/** What the model's four endpoints are: the registered fd is always ours; its peer is what gets closed. */
const KINDS: readonly Kind[] = ['pipeR', 'pipeW', 'unix', 'tcp'];
type Interest = 'r' | 'w' | 'rw';
type PeerState = 'open' | 'fin' | 'rst' | 'closed';
/** Edge-triggered bookkeeping: whether an edge since the last wait must, may or must not be reported. */
const enum Arm {
  None = 0,
  May = 1,
  Must = 2,
}

interface Reg {
  interest: Interest;
  et: boolean;
  cb: number | undefined;
}

interface EndModel {
  kind: Kind;
  rx: number; // bytes waiting to be read at this end
  peerUnread: number; // bytes this end sent that the peer never read
  peer: PeerState;
  err: boolean; // a pending socket error (ECONNRESET) not yet consumed
  reg: Reg | undefined;
  arm: Arm;
}

interface TaskModel {
  id: number;
  throws: boolean;
  /** Triggered from the second thread: FIFO among remote tasks, in no fixed order with local ones. */
  remote: boolean;
  /** Posted (RemotePoller#post): runs as a remote trigger does, and nobody hears its outcome. */
  posted?: boolean;
}

interface Model {
  open: boolean;
  ends: EndModel[];
  tasks: TaskModel[];
}

interface RealEnd {
  fd: number;
  peerFd: number; // -1 for TCP (the peer is a node:net socket) and once closed
  peerSocket: net.Socket | undefined;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

interface Real {
  poller: Poller;
  ends: RealEnd[];
  callbacks: PollEventHandler[];
  /** Where callbacks report: (fd, event, which callback: 0..2 attachments, -1 polling()'s). */
  sink: ((fd: number, event: number, via: number) => void) | undefined;
  ran: number[];
  outcomes: Map<number, Promise<Outcome>>;
  nextTaskId: number;
  /** The current poller's handle, once a remote trigger asked for it. */
  handle: PollerHandle<RemoteTasks> | undefined;
}

// ---- the second thread: triggers tasks on the poller through its handle ----

const indexPath = path.resolve(__dirname, '..', '..', 'src', 'index.js');
/** What the poller offers the second thread. */
type RemoteTasks = { task: (p: { id: number; throws: boolean }) => number };

/**
 * A worker that, asked to, triggers `task` on the poller whose handle it is sent. It
 * answers 'sent' once the trigger has left it (its flush is queued before its answer),
 * and later the outcome.
 */
class SecondThread {
  readonly #worker = new Worker(
    `const np = require(${JSON.stringify(indexPath)});
     const { parentPort } = require('node:worker_threads');
     const remotes = new Map();
     parentPort.on('message', ({ call, id, priority, throws, handle, post }) => {
       // Two RemotePollers of one handle, taking turns: FIFO holds per thread, not per RemotePoller.
       let pair = remotes.get(handle.id);
       if (pair === undefined) remotes.set(handle.id, (pair = [np.connectPoller(handle), np.connectPoller(handle)]));
       const remote = pair[call & 1];
       if (post) {
         const queued = remote.post(priority, 'task', { id, throws });
         queueMicrotask(() => parentPort.postMessage({ call, sent: true, queued }));
         return;
       }
       remote.trigger(priority, 'task', { id, throws }).then(
         (value) => parentPort.postMessage({ call, ok: true, value }),
         (e) => parentPort.postMessage({ call, ok: false, closed: e === np.ErrPollerClosed, message: e && e.message }),
       );
       queueMicrotask(() => parentPort.postMessage({ call, sent: true }));
     });`,
    { eval: true },
  );
  /** By call: task ids start again with each sequence, and a late answer must not be taken for a new one's. */
  readonly #waiting = new Map<number, { sent: (queued?: boolean) => void; outcome: (o: Outcome) => void }>();
  #calls = 0;

  constructor() {
    this.#worker.on('message', (m: { call: number; sent?: true; queued?: boolean; ok?: boolean; value?: unknown; closed?: boolean; message?: string }) => {
      const w = this.#waiting.get(m.call);
      if (w === undefined) return;
      if (m.sent) return w.sent(m.queued);
      // A trigger refused at once (no poller) is answered before it would have been sent.
      w.sent();
      this.#waiting.delete(m.call);
      w.outcome(m.ok ? { ok: true, value: m.value } : { ok: false, error: m.closed ? ErrPollerClosed : new Error(m.message) });
    });
  }

  /** Triggers task `id` remotely; resolves once it left the worker, with its outcome to come. */
  trigger(handle: PollerHandle<RemoteTasks>, id: number, priority: 0 | 1, throws: boolean): Promise<{ outcome: Promise<Outcome> }> {
    const call = ++this.#calls;
    return new Promise((sentResolve) => {
      const outcome = new Promise<Outcome>((outcomeResolve) => {
        this.#waiting.set(call, { sent: () => sentResolve({ outcome }), outcome: outcomeResolve });
      });
      this.#worker.postMessage({ call, id, priority, throws, handle });
    });
  }

  /** Posts task `id` remotely; resolves once it left the worker, with what post() returned. */
  post(handle: PollerHandle<RemoteTasks>, id: number, priority: 0 | 1, throws: boolean): Promise<boolean> {
    const call = ++this.#calls;
    return new Promise((sentResolve) => {
      this.#waiting.set(call, {
        sent: (queued) => {
          this.#waiting.delete(call);
          sentResolve(queued === true);
        },
        outcome: () => undefined,
      });
      this.#worker.postMessage({ call, id, priority, throws, handle, post: true });
    });
  }

  terminate(): Promise<number> {
    return this.#worker.terminate();
  }
}

let second: SecondThread | undefined;

// ---- what the kernel must report ----

function readyMask(e: EndModel): { must: number; may: number } {
  switch (e.kind) {
    case 'pipeR':
      return { must: (e.rx > 0 ? IN : 0) | (e.peer === 'closed' ? HUP : 0), may: 0 };
    case 'pipeW':
      // Never filled by the model (writes are bounded far below the pipe's capacity).
      return { must: OUT | (e.peer === 'closed' ? ERR : 0), may: 0 };
    case 'unix': {
      const gone = e.peer === 'closed';
      return { must: (e.rx > 0 || gone ? IN : 0) | (gone ? RDHUP | HUP : 0) | (e.err ? ERR : 0) | OUT, may: 0 };
    }
    case 'tcp':
      if (e.peer === 'rst') return { must: IN | RDHUP | OUT | HUP, may: ERR };
      if (e.peer === 'fin') return { must: IN | RDHUP | OUT, may: 0 };
      return { must: OUT | (e.rx > 0 ? IN : 0), may: 0 };
  }
}

function interestMask(reg: Reg): number {
  return (reg.interest !== 'w' ? IN | PRI : 0) | (reg.interest !== 'r' ? OUT : 0) | (reg.et ? RDHUP : 0) | ERR | HUP;
}

/** The bits a registered end must (and, for TCP's asynchronous states, may) be reported with. */
function expected(e: EndModel): { must: number; may: number } {
  if (e.reg === undefined) return { must: 0, may: 0 };
  const im = interestMask(e.reg);
  const r = readyMask(e);
  return { must: r.must & im, may: r.may & im };
}

/** Must the end be reported in the next wait? */
function certain(e: EndModel): boolean {
  if (e.reg === undefined) return false;
  return expected(e).must !== 0 && (!e.reg.et || e.arm === Arm.Must);
}

/** May the end be reported in the next wait? */
function allowed(e: EndModel): boolean {
  if (e.reg === undefined) return false;
  const x = expected(e);
  if ((x.must | x.may) === 0) return false;
  return !e.reg.et || e.kind === 'tcp' || e.arm !== Arm.None;
}

function bump(e: EndModel, to: Arm): void {
  if (to > e.arm) e.arm = to;
}

const hex = (n: number): string => `0x${n.toString(16)}`;

// ---- one polling window: what was seen, checked against the model ----

class Observation {
  readonly seen = new Map<number, number[]>(); // end index -> masks reported
  readonly violations: string[] = [];

  constructor(
    private readonly m: Model,
    private readonly r: Real,
    private readonly dispatch: boolean,
  ) {}

  record = (fd: number, event: number, via: number): void => {
    const i = this.r.ends.findIndex((x) => x.fd === fd);
    if (i < 0) {
      this.violations.push(`event ${hex(event)} for fd ${fd}, which is not one of the model's ends`);
      return;
    }
    const e = this.m.ends[i];
    const what = `end ${i} (${e.kind}, fd ${fd})`;
    if (e.reg === undefined) {
      this.violations.push(`event ${hex(event)} for unregistered ${what}`);
      return;
    }
    if (this.dispatch && via !== e.reg.cb) this.violations.push(`${what}: dispatched to callback ${via}, attachment has ${e.reg.cb}`);
    const list = this.seen.get(i) ?? [];
    list.push(event);
    this.seen.set(i, list);
    const x = expected(e);
    if (e.kind === 'tcp') {
      if ((event & ~(x.must | x.may)) !== 0) this.violations.push(`${what}: reported ${hex(event)}, allowed only ${hex(x.must | x.may)}`);
    } else {
      if (event !== x.must) this.violations.push(`${what}: reported ${hex(event)}, expected exactly ${hex(x.must)}`);
      if (e.reg.et && e.arm === Arm.None) this.violations.push(`${what}: edge-triggered without an edge, reported ${hex(event)}`);
      if (e.reg.et && list.length > 1) this.violations.push(`${what}: edge-triggered, reported ${list.length} times for one edge`);
    }
  };

  /** Whether end `i` was reported with all its bits, if it must be. */
  #endSatisfied(i: number): boolean {
    const e = this.m.ends[i];
    if (!certain(e)) return true;
    const must = expected(e).must;
    return (this.seen.get(i) ?? []).some((ev) => (ev & must) === must);
  }

  /** Every end that must be reported was, with all its bits. */
  satisfied(): boolean {
    return this.m.ends.every((_, i) => this.#endSatisfied(i));
  }

  missing(): string {
    return this.m.ends
      .map((e, i) => {
        if (this.#endSatisfied(i)) return '';
        const seen = this.seen.get(i) ?? [];
        return `end ${i} (${e.kind}) expected ${hex(expected(e).must)}, saw [${[...new Set(seen)].map(hex).join(',')}] in ${seen.length} reports`;
      })
      .filter(Boolean)
      .join('; ');
  }

  assertClean(step: string): void {
    if (this.violations.length > 0) throw new Error(`${step}: ${this.violations.slice(0, 5).join('; ')}`);
  }

  /** After any wait, edges have been consumed (or dropped by an iterator's break). */
  static consumeEdges(m: Model): void {
    for (const e of m.ends) e.arm = Arm.None;
  }
}

/** Resolves after at least one pass through the loop's poll phase. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(() => setImmediate(resolve)));

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setImmediate(resolve));
  }
  return true;
}

async function settle<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: did not settle within ${DEADLINE_MS} ms (hang)`)), DEADLINE_MS);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

// ---- tasks ----

/** Checks that the tasks that ran are the model's queue head, in order, with their results. */
async function checkTasksRan(m: Model, r: Real, all: boolean, step: string): Promise<void> {
  const ran = r.ran.splice(0);
  // Local tasks run in trigger order, and so do remote ones; a remote task joins the
  // queues at the start of the round after it arrived, so the two interleave freely.
  const remote = new Set(m.tasks.filter((t) => t.remote).map((t) => t.id));
  const ranLocal = ran.filter((id) => !remote.has(id));
  const ranRemote = ran.filter((id) => remote.has(id));
  const local = m.tasks.filter((t) => !t.remote);
  const remotes = m.tasks.filter((t) => t.remote);
  assert.equal(ranLocal, local.slice(0, ranLocal.length).map((t) => t.id), `${step}: local tasks ran out of order`);
  assert.equal(ranRemote, remotes.slice(0, ranRemote.length).map((t) => t.id), `${step}: remote tasks ran out of order`);
  if (all) assert.is(ran.length, m.tasks.length, `${step}: ${m.tasks.length - ran.length} queued tasks did not run`);
  const done = [...local.slice(0, ranLocal.length), ...remotes.slice(0, ranRemote.length)];
  m.tasks = [...local.slice(ranLocal.length), ...remotes.slice(ranRemote.length)].sort((a, b) => a.id - b.id);
  for (const t of done) {
    if (t.posted) continue; // nobody hears a posted task's outcome
    const out = await settle(r.outcomes.get(t.id)!, `${step}: task ${t.id}`);
    r.outcomes.delete(t.id);
    if (t.throws) assert.ok(!out.ok && (out.error as Error).message === `task ${t.id} threw`, `${step}: task ${t.id} should reject with its error`);
    else assert.ok(out.ok && out.value === t.id * 10, `${step}: task ${t.id} should resolve with its value, got ${JSON.stringify(out)} ${String((out as any).error)}`);
  }
}

/** Every task still queued rejects with ErrPollerClosed. */
async function checkTasksRejected(m: Model, r: Real, step: string): Promise<void> {
  for (const t of m.tasks.splice(0)) {
    if (t.posted) continue; // dropped at close, and nobody told
    const out = await settle(r.outcomes.get(t.id)!, `${step}: task ${t.id}`);
    r.outcomes.delete(t.id);
    assert.ok(!out.ok && out.error === ErrPollerClosed, `${step}: queued task ${t.id} should reject with ErrPollerClosed`);
  }
  assert.equal(r.ran.splice(0), [], `${step}: no task may run after close`);
}

function markClosed(m: Model): void {
  m.open = false;
  for (const e of m.ends) {
    e.reg = undefined;
    e.arm = Arm.None;
  }
}

// ---- commands ----

type Cmd = fc.AsyncCommand<Model, Real>;

function expectThrow(fn: () => unknown, check: (e: any) => boolean, what: string): void {
  let threw: unknown = undefined;
  try {
    fn();
  } catch (e) {
    threw = e;
  }
  assert.ok(threw !== undefined && check(threw), `${what}: expected an error, got ${threw === undefined ? 'success' : String(threw)}`);
}

const isClosedErr = (e: unknown): boolean => e === ErrPollerClosed;
const hasCode = (code: string) => (e: any): boolean => e instanceof Error && (e as Error & { code?: string }).code === code;

type RegOp = 'addRead' | 'addWrite' | 'addReadWrite' | 'modRead' | 'modWrite' | 'modReadWrite';
const REG_INTEREST: Record<RegOp, Interest> = { addRead: 'r', addWrite: 'w', addReadWrite: 'rw', modRead: 'r', modWrite: 'w', modReadWrite: 'rw' };

class Register implements Cmd {
  constructor(readonly op: RegOp, readonly end: number, readonly et: boolean, readonly cb: number | undefined) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    const e = m.ends[this.end];
    const fd = r.ends[this.end].fd;
    const pa: PollAttachment = { fd, callback: this.cb === undefined ? undefined : r.callbacks[this.cb] };
    const call = (): void => r.poller[this.op](pa, this.et);
    const isAdd = this.op.startsWith('add');
    if (!m.open) return expectThrow(call, isClosedErr, String(this));
    if (isAdd && e.reg) return expectThrow(call, hasCode('EEXIST'), String(this));
    if (!isAdd && !e.reg) return expectThrow(call, hasCode('ENOENT'), String(this));
    call();
    e.reg = { interest: REG_INTEREST[this.op], et: this.et, cb: this.cb };
    // ADD and MOD both test readiness at once: an edge-triggered fd that is ready is reported once.
    e.arm = this.et ? Arm.Must : Arm.None;
    assert.is(r.poller.attachment(fd), pa, `${this}: attachment replaced`);
  }
  toString = (): string => `${this.op}(end ${this.end}${this.et ? ', ET' : ''}, cb ${this.cb ?? 'none'})`;
}

class Delete implements Cmd {
  constructor(readonly end: number) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    const e = m.ends[this.end];
    const fd = r.ends[this.end].fd;
    const call = (): void => r.poller.delete(fd);
    if (!m.open) return expectThrow(call, isClosedErr, String(this));
    if (!e.reg) return expectThrow(call, hasCode('ENOENT'), String(this));
    call();
    e.reg = undefined;
    e.arm = Arm.None;
    assert.is(r.poller.attachment(fd), undefined, `${this}: attachment forgotten`);
  }
  toString = (): string => `delete(end ${this.end})`;
}

const LIMIT = 8192; // per-direction bytes in flight: far below every buffer, so nothing ever fills

class PeerWrite implements Cmd {
  constructor(readonly end: number, readonly n: number) {}
  check = (m: Readonly<Model>): boolean => {
    const e = m.ends[this.end];
    return e.kind !== 'pipeW' && e.peer === 'open' && e.rx + this.n <= LIMIT;
  };
  async run(m: Model, r: Real): Promise<void> {
    const e = m.ends[this.end];
    const re = r.ends[this.end];
    const data = Buffer.alloc(this.n, 0x61 + this.end);
    if (e.kind === 'tcp') {
      await settle(new Promise<void>((resolve, reject) => re.peerSocket!.write(data, (err) => (err ? reject(err) : resolve()))), String(this));
    } else {
      assert.is(write(re.peerFd, data), this.n, `${this}: short write`);
    }
    // A write into an empty buffer is always a new edge; into a non-empty one it is on
    // current kernels (pipes that are polled, sockets) but was not on older pipes.
    const readable = e.reg !== undefined && e.reg.interest !== 'w';
    bump(e, readable && e.rx === 0 ? Arm.Must : Arm.May);
    e.rx += this.n;
  }
  toString = (): string => `peerWrite(end ${this.end}, ${this.n} bytes)`;
}

class Send implements Cmd {
  constructor(readonly end: number, readonly n: number) {}
  check = (m: Readonly<Model>): boolean => m.ends[this.end].peerUnread + this.n <= LIMIT;
  async run(m: Model, r: Real): Promise<void> {
    const e = m.ends[this.end];
    const fd = r.ends[this.end].fd;
    const call = (): number => write(fd, Buffer.alloc(this.n, 0x7a));
    bump(e, Arm.May);
    if (e.kind === 'pipeR') return expectThrow(call, hasCode('EBADF'), String(this));
    if (e.peer === 'closed') return expectThrow(call, hasCode('EPIPE'), String(this)); // and no SIGPIPE kills us
    if (e.peer === 'rst') {
      expectThrow(call, (x) => hasCode('EPIPE')(x) || hasCode('ECONNRESET')(x), String(this));
      e.err = false;
      return;
    }
    assert.is(call(), this.n, `${this}: short write`);
    if (e.kind !== 'pipeW') e.peerUnread += this.n;
  }
  toString = (): string => `send(end ${this.end}, ${this.n} bytes)`;
}

class Drain implements Cmd {
  constructor(readonly end: number) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    const e = m.ends[this.end];
    const fd = r.ends[this.end].fd;
    const buf = Buffer.alloc(4096);
    bump(e, Arm.May);
    if (e.kind === 'pipeW') return expectThrow(() => read(fd, buf), hasCode('EBADF'), String(this));
    let got = 0;
    let end: string | undefined;
    const deadline = Date.now() + DEADLINE_MS;
    // TCP data and FIN/RST cross the loopback asynchronously: keep reading until the model's
    // state has arrived. Pipes and socketpairs are synchronous: one pass must see everything.
    const want = (): boolean => {
      if (e.kind !== 'tcp') return true;
      if (e.peer === 'open') return got >= e.rx;
      return end === 'eof' || end === 'ECONNRESET';
    };
    for (;;) {
      let n: number;
      try {
        n = read(fd, buf);
      } catch (x) {
        end = (x as { code?: string }).code ?? String(x);
        break;
      }
      if (n > 0) {
        got += n;
        continue;
      }
      end = n === 0 ? 'eof' : 'again';
      if (want() || Date.now() > deadline) break;
      await sleep(1);
    }
    if (e.kind === 'tcp' && e.peer === 'rst') {
      assert.ok(got <= e.rx && (end === 'eof' || end === 'ECONNRESET'), `${this}: after RST read ${got} bytes then ${end}`);
    } else {
      assert.is(got, e.rx, `${this}: bytes read`);
      const expectEnd = e.err ? 'ECONNRESET' : e.peer === 'open' ? 'again' : 'eof';
      assert.is(end, expectEnd, `${this}: how reading ended`);
    }
    e.rx = 0;
    e.err = false;
  }
  toString = (): string => `drain(end ${this.end})`;
}

class ClosePeer implements Cmd {
  constructor(readonly end: number, readonly how: 'fin' | 'rst') {}
  check = (m: Readonly<Model>): boolean => {
    const e = m.ends[this.end];
    // (libuv refuses an RST once the socket was shut down: FIN then RST is not on offer.)
    return e.peer === 'open';
  };
  async run(m: Model, r: Real): Promise<void> {
    const e = m.ends[this.end];
    const re = r.ends[this.end];
    if (e.kind === 'tcp') {
      if (this.how === 'fin') re.peerSocket!.end();
      else re.peerSocket!.resetAndDestroy(); // SO_LINGER 0: an RST
      e.peer = this.how;
    } else {
      close(re.peerFd);
      re.peerFd = -1;
      // A Unix stream socket closed with unread data resets its peer.
      if (e.kind === 'unix' && e.peerUnread > 0) e.err = true;
      e.peer = 'closed';
    }
    e.peerUnread = 0;
    bump(e, Arm.Must); // a close wakes every waiter
  }
  toString = (): string => `closePeer(end ${this.end}${KINDS[this.end] === 'tcp' ? `, ${this.how}` : ''})`;
}

class Trigger implements Cmd {
  constructor(readonly priority: 0 | 1, readonly throws: boolean) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    const id = r.nextTaskId++;
    const throws = this.throws;
    const p = r.poller.trigger(this.priority, () => {
      r.ran.push(id);
      if (throws) throw new Error(`task ${id} threw`);
      return id * 10;
    });
    const outcome = p.then(
      (value): Outcome => ({ ok: true, value }),
      (error): Outcome => ({ ok: false, error }),
    );
    if (!m.open) {
      const out = await settle(outcome, String(this));
      assert.ok(!out.ok && out.error === ErrPollerClosed, `${this}: trigger after close must reject with ErrPollerClosed`);
      return;
    }
    r.outcomes.set(id, outcome);
    m.tasks.push({ id, throws, remote: false });
  }
  toString = (): string => `trigger(${this.priority === 0 ? 'High' : 'Low'}${this.throws ? ', throws' : ''})`;
}

/** A trigger from the second thread, through the poller's handle (made on first use). */
class RemoteTrigger implements Cmd {
  constructor(readonly priority: 0 | 1, readonly throws: boolean) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    const id = r.nextTaskId++;
    if (m.open && r.handle === undefined) {
      r.handle = r.poller.handle({
        task: ({ id: ran, throws }: { id: number; throws: boolean }) => {
          r.ran.push(ran);
          if (throws) throw new Error(`task ${ran} threw`);
          return ran * 10;
        },
      });
    }
    // Closed before any handle was made: a handle no poller has.
    const handle = r.handle ?? ({ id: Number.MAX_SAFE_INTEGER, token: 'none', tasks: ['task'] } as PollerHandle<RemoteTasks>);
    const { outcome } = await settle(second!.trigger(handle, id, this.priority, this.throws), `${this}: sent`);
    if (!m.open) {
      const out = await settle(outcome, String(this));
      assert.ok(!out.ok && out.error === ErrPollerClosed, `${this}: a remote trigger after close must reject with ErrPollerClosed`);
      return;
    }
    r.outcomes.set(id, outcome);
    m.tasks.push({ id, throws: this.throws, remote: true });
  }
  toString = (): string => `remoteTrigger(${this.priority === 0 ? 'High' : 'Low'}${this.throws ? ', throws' : ''})`;
}

/** A post from the second thread (no reply), through the poller's handle. */
class RemotePost implements Cmd {
  constructor(readonly priority: 0 | 1, readonly throws: boolean) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    const id = r.nextTaskId++;
    if (m.open && r.handle === undefined) return; // RemoteTrigger makes the handle; a post needs one
    const handle = r.handle ?? ({ id: Number.MAX_SAFE_INTEGER, token: 'none', tasks: ['task'] } as PollerHandle<RemoteTasks>);
    const queued = await settle(second!.post(handle, id, this.priority, this.throws), `${this}: sent`);
    if (!m.open) return; // true (not known closed yet) or false: either is right; it never runs
    assert.ok(queued, `${this}: a post to an open poller must be queued`);
    m.tasks.push({ id, throws: this.throws, remote: true, posted: true });
  }
  toString = (): string => `remotePost(${this.priority === 0 ? 'High' : 'Low'}${this.throws ? ', throws' : ''})`;
}

class Close implements Cmd {
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    r.poller.close();
    r.poller.close(); // idempotent
    assert.ok(r.poller.closed);
    assert.is(r.poller.fd, -1);
    await checkTasksRejected(m, r, String(this));
    markClosed(m);
  }
  toString = (): string => 'close()';
}

class Reopen implements Cmd {
  /** `waiterThread`: the poller waits on a thread of its own and hands batches to the loop. */
  constructor(readonly waiterThread: boolean) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    r.poller.close();
    await checkTasksRejected(m, r, String(this));
    r.poller = openPoller({ waiterThread: this.waiterThread });
    r.handle = undefined;
    markClosed(m);
    m.open = true;
  }
  toString = (): string => (this.waiterThread ? 'openPoller({ waiterThread: true })' : 'openPoller()');
}

/** polling() until every expected event was seen, then stop it from a task. */
class Poll implements Cmd {
  constructor(readonly mode: 'callback' | 'dispatch') {}
  check = (m: Readonly<Model>): boolean => {
    if (this.mode === 'callback' || !m.open) return true;
    // Dispatch to attachments: an fd without a callback that only *might* be reported
    // makes the outcome a coin toss; the model does not generate that.
    const lacking = m.ends.filter((e) => e.reg !== undefined && e.reg.cb === undefined);
    return lacking.every((e) => !allowed(e) || certain(e));
  };
  async run(m: Model, r: Real): Promise<void> {
    const step = String(this);
    if (!m.open) {
      const err = await settle(r.poller.polling(() => undefined).catch((e) => e), step);
      assert.is(err, ErrPollerClosed, `${step}: polling a closed poller`);
      return;
    }
    const dispatch = this.mode === 'dispatch';
    const obs = new Observation(m, r, dispatch);
    r.sink = obs.record;
    const expectNoCallback = dispatch && m.ends.some((e) => e.reg !== undefined && e.reg.cb === undefined && certain(e));
    const running = r.poller.polling(dispatch ? undefined : (fd, ev) => r.sink?.(fd, ev, -1)).then(
      (value): Outcome => ({ ok: true, value }),
      (error): Outcome => ({ ok: false, error }),
    );
    try {
      assert.ok(r.poller.running, `${step}: running while polling`);
      if (expectNoCallback) {
        const out = await settle(running, step);
        assert.ok(!out.ok && hasCode('ERR_NO_CALLBACK')(out.error), `${step}: an event for an fd without a callback must reject ERR_NO_CALLBACK, got ${out.ok ? 'resolve' : String(out.error)}`);
        obs.assertClean(step);
        await checkTasksRan(m, r, false, step);
      } else {
        // Every queued task runs too before the stop: a remote one joins the queues only at
        // the start of a round, so it could otherwise fall behind the stopping task.
        if (!(await until(() => obs.satisfied() && r.ran.length >= m.tasks.length, DEADLINE_MS))) {
          throw new Error(`${step}: not delivered within ${DEADLINE_MS} ms: ${obs.missing()}; tasks ran ${r.ran.length} of ${m.tasks.length}`);
        }
        await turn(); // room for an event that must not come
        // A second polling() while one runs is refused, and does not disturb the first.
        const busy = await r.poller.polling().catch((e) => e);
        assert.ok(hasCode('ERR_POLLER_BUSY')(busy), `${step}: concurrent polling() must reject ERR_POLLER_BUSY`);
        void r.poller.trigger(Priority.High, () => ErrEngineShutdown);
        const out = await settle(running, step);
        assert.ok(out.ok && out.value === ErrEngineShutdown, `${step}: polling should resolve with the task's ErrEngineShutdown, got ${out.ok ? String(out.value) : `rejection ${String(out.error)}`}`);
        obs.assertClean(step);
        await checkTasksRan(m, r, true, step);
      }
      assert.not.ok(r.poller.running, `${step}: idle after polling stopped`);
    } finally {
      r.sink = undefined;
      Observation.consumeEdges(m);
    }
  }
  toString = (): string => `polling(${this.mode === 'callback' ? 'callback' : 'attachments'})`;
}

/** for await over the poller, break after the first event (or batch). */
class Iterate implements Cmd {
  /** `awaitTask`: the loop body awaits a task triggered on the poller it iterates before it breaks. */
  constructor(readonly batch: boolean, readonly awaitTask = false) {}
  // Without an event that must come, the first next() could wait forever.
  check = (m: Readonly<Model>): boolean => !m.open || m.ends.some(certain);
  async run(m: Model, r: Real): Promise<void> {
    const step = String(this);
    if (!m.open) {
      const err = await settle(r.poller.events().next().catch((e) => e), step);
      assert.is(err, ErrPollerClosed, `${step}: iterating a closed poller`);
      return;
    }
    const obs = new Observation(m, r, false);
    // Inside the body the iteration is paused (its consumer is busy): the task must run
    // all the same, or this await never ends.
    const bodyTask = async (): Promise<void> => {
      if (!this.awaitTask) return;
      const id = r.nextTaskId++;
      m.tasks.push({ id, throws: false, remote: false });
      const outcome = r.poller.trigger(0, () => {
        r.ran.push(id);
        return id * 10;
      }).then(
        (value): Outcome => ({ ok: true, value }),
        (error): Outcome => ({ ok: false, error }),
      );
      r.outcomes.set(id, outcome);
      const out = await outcome;
      assert.ok(out.ok && out.value === id * 10, `${step}: the task awaited in the loop body resolves with its value`);
    };
    try {
      await settle(
        (async () => {
          if (this.batch) {
            for await (const list of r.poller.events({ batch: true })) {
              for (const ev of list) obs.record(ev.fd, ev.event, -1);
              await bodyTask();
              break;
            }
          } else {
            for await (const ev of r.poller) {
              obs.record(ev.fd, ev.event, -1);
              await bodyTask();
              break;
            }
          }
        })(),
        step,
      );
      assert.not.ok(r.poller.running, `${step}: break stops the iteration`);
      assert.is(r.poller.bufferedEvents, 0, `${step}: nothing buffered after break`);
      obs.assertClean(step);
      await checkTasksRan(m, r, false, step);
    } finally {
      // Events read from the kernel but not taken before break are dropped: edges are spent.
      Observation.consumeEdges(m);
    }
  }
  toString = (): string => `iterate(${this.batch ? 'batch' : 'single'}, ${this.awaitTask ? 'await a task, ' : ''}break)`;
}

/** close() from inside an event callback or a task while polling. */
class CloseWhilePolling implements Cmd {
  constructor(readonly where: 'callback' | 'task') {}
  check = (m: Readonly<Model>): boolean => m.open && (this.where === 'task' || m.ends.some(certain));
  async run(m: Model, r: Real): Promise<void> {
    const step = String(this);
    const obs = new Observation(m, r, false);
    let closerOutcome: Promise<Outcome> | undefined;
    if (this.where === 'task') {
      closerOutcome = r.poller.trigger(Priority.Low, () => r.poller.close()).then(
        (value): Outcome => ({ ok: true, value }),
        (error): Outcome => ({ ok: false, error }),
      );
    }
    let closedInCallback = false;
    const running = r.poller.polling((fd, ev) => {
      obs.record(fd, ev, -1);
      if (this.where === 'callback' && !closedInCallback) {
        closedInCallback = true;
        r.poller.close();
      }
    });
    try {
      const result = await settle(running, step);
      assert.is(result, ErrEngineShutdown, `${step}: polling resolves with ErrEngineShutdown when closed`);
      assert.ok(r.poller.closed && !r.poller.running, `${step}: closed and not running`);
      if (this.where === 'callback') {
        assert.ok(closedInCallback, `${step}: the callback ran`);
        assert.is(obs.seen.size === 0 ? 0 : [...obs.seen.values()].reduce((a, l) => a + l.length, 0), 1, `${step}: no event after close()`);
      } else {
        const out = await settle(closerOutcome!, step);
        assert.ok(out.ok && out.value === undefined, `${step}: the closing task resolves`);
      }
      obs.assertClean(step);
      // Tasks queued before: ran (in order) or, when close() came first, rejected.
      await checkTasksRan(m, r, false, step);
      await checkTasksRejected(m, r, step);
    } finally {
      Observation.consumeEdges(m);
      markClosed(m);
    }
  }
  toString = (): string => `close() inside a ${this.where} while polling`;
}

// ---- the arbitrary step lists ----

const endArb = fc.integer({ min: 0, max: KINDS.length - 1 });
const sizeArb = fc.integer({ min: 1, max: 1024 });
const registerArb = fc
  .tuple(
    fc.constantFrom<RegOp>('addRead', 'addWrite', 'addReadWrite', 'modRead', 'modWrite', 'modReadWrite'),
    endArb,
    fc.boolean(),
    fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined, freq: 4 }),
  )
  .map(([op, end, et, cb]) => new Register(op, end, et, cb));

const peerWriteArb = fc.tuple(endArb, sizeArb).map(([i, n]) => new PeerWrite(i, n));
const pollArb = fc.constantFrom<'callback' | 'dispatch'>('callback', 'dispatch').map((mode) => new Poll(mode));
/** Steps that end the poller's life; rarer, so that most sequences get to poll what they registered. */
const lifecycleArb: fc.Arbitrary<Cmd> = fc.oneof(
  fc.constantFrom<'callback' | 'task'>('callback', 'task').map((w) => new CloseWhilePolling(w)),
  fc.constant(new Close()),
  fc.boolean().map((t) => new Reopen(t)),
);

// fc.commands picks among these uniformly: repeats weight the common steps.
const commandArbs: fc.Arbitrary<Cmd>[] = [
  registerArb,
  registerArb,
  registerArb,
  registerArb,
  endArb.map((i) => new Delete(i)),
  peerWriteArb,
  peerWriteArb,
  fc.tuple(endArb, sizeArb).map(([i, n]) => new Send(i, n)),
  endArb.map((i) => new Drain(i)),
  fc.tuple(endArb, fc.constantFrom<'fin' | 'rst'>('fin', 'rst')).map(([i, how]) => new ClosePeer(i, how)),
  fc.tuple(fc.constantFrom<0 | 1>(0, 1), fc.boolean()).map(([p, t]) => new Trigger(p, t)),
  fc.tuple(fc.constantFrom<0 | 1>(0, 1), fc.boolean()).map(([p, t]) => new RemoteTrigger(p, t)),
  fc.tuple(fc.constantFrom<0 | 1>(0, 1), fc.boolean()).map(([p, t]) => new RemotePost(p, t)),
  pollArb,
  pollArb,
  pollArb,
  fc.tuple(fc.boolean(), fc.boolean()).map(([b, t]) => new Iterate(b, t)),
  lifecycleArb,
];

// ---- per-sequence setup and teardown ----

async function setup(peers: TcpPeers, waiterThread: boolean): Promise<{ model: Model; real: Real }> {
  const [pr, pw] = pipe(); // end 0: the read end; its peer is the write end
  const [qr, qw] = pipe(); // end 1: the write end; its peer is the read end
  const [ua, ub] = socketpair();
  const tcp = await peers.pair();
  const ends: RealEnd[] = [
    { fd: pr, peerFd: pw, peerSocket: undefined },
    { fd: qw, peerFd: qr, peerSocket: undefined },
    { fd: ua, peerFd: ub, peerSocket: undefined },
    { fd: tcp.fd, peerFd: -1, peerSocket: tcp.peer },
  ];
  const real: Real = {
    poller: openPoller({ waiterThread }),
    ends,
    callbacks: [],
    sink: undefined,
    ran: [],
    outcomes: new Map(),
    nextTaskId: 1,
    handle: undefined,
  };
  real.callbacks = [0, 1, 2].map((id) => (fd: number, ev: number) => real.sink?.(fd, ev, id));
  const model: Model = {
    open: true,
    ends: KINDS.map((kind) => ({ kind, rx: 0, peerUnread: 0, peer: 'open', err: false, reg: undefined, arm: Arm.None })),
    tasks: [],
  };
  return { model, real };
}

function teardown(real: Real): void {
  real.poller.close();
  for (const e of real.ends) {
    close(e.fd);
    if (e.peerFd >= 0) close(e.peerFd);
    e.peerSocket?.destroy();
  }
}

test('random operation sequences over pipes, socketpairs and TCP match the model', async () => {
  if (Backend !== 'epoll') {
    console.log(`  [model] skipped: the model predicts epoll's event bits; this build polls with ${Backend}`);
    return;
  }
  const trap = trapProcessFailures();
  const peers = await TcpPeers.open();
  second = new SecondThread();
  await sleep(10);
  const baseline = openFdCount();
  let sequences = 0;
  let steps = 0;
  const started = Date.now();
  try {
    const details = await fc.check(
      // One sequence in four starts on a poller with a waiter thread (the other delivery path).
      fc.asyncProperty(fc.commands(commandArbs, { maxCommands: STEPS, size: 'max' }), fc.integer({ min: 0, max: 3 }), async (cmds, path) => {
        sequences++;
        const s = await setup(peers, path === 0);
        try {
          await fc.asyncModelRun(() => s, cmds);
          const ran = String(cmds);
          steps += ran === '' ? 0 : ran.split(',').length;
          if (process.env.NETPOLL_MODEL_DEBUG) console.log(ran);
        } finally {
          teardown(s.real);
        }
      }),
      { numRuns: RUNS, verbose: 1, seed: SEED, path: PATH },
    );
    if (details.failed) {
      // fast-check's report: seed, path, the shrunk step list and the error, for replay.
      console.error(fc.defaultReportMessage(details));
      const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
      assert.unreachable(
        `model violated (replay: NETPOLL_MODEL_SEED=${details.seed} NETPOLL_MODEL_PATH="${details.counterexamplePath}")\n` +
          `    steps: ${details.counterexample === null ? '?' : `${details.counterexample[1] === 0 ? '[waiter thread] ' : ''}${String(details.counterexample[0])}`}\n    error: ${error}`,
      );
    }
  } finally {
    await peers.close();
    await second.terminate();
  }
  console.log(`  [model] ${sequences} sequences, ${steps} steps run (<= ${STEPS} a sequence) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  assert.ok(sequences >= RUNS, `ran ${sequences} sequences`);
  await sleep(20);
  assert.ok(openFdCount() - baseline <= 2, `fds leaked by the sequences: ${openFdCount() - baseline}`);
  assert.equal(trap.failures, [], 'no unhandled rejection or uncaught exception');
});

test.run();
