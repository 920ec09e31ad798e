// trigger() from other threads: PollerHandle, connectPoller and RemotePoller, with
// real worker threads, real pollers and real fds.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { threadId, Worker } from 'node:worker_threads';
import {
  Backend,
  ErrAcceptSocket,
  ErrEngineShutdown,
  ErrPollerClosed,
  MaxAsyncTasksAtOneTime,
  MaxPollEventsCap,
  Priority,
  close,
  connectPoller,
  openPoller,
  pipe,
  write,
  type PollerHandle,
} from '../src/index.js';
import { fdsMatching, libkqueue, rejection, sleep, thrown, within } from './helpers.js';

const indexPath = path.resolve(__dirname, '..', 'src', 'index.js');

/**
 * A worker running `body` (an async function body) with `np` (netpoll), `workerData`
 * and `post` (parentPort.postMessage) in scope.
 */
const exits = new WeakMap<Worker, Promise<number>>();

function worker(body: string, workerData?: unknown): Worker {
  const w = new Worker(
    `const np = require(${JSON.stringify(indexPath)});
     const { parentPort, workerData, threadId } = require('node:worker_threads');
     const post = (m) => parentPort.postMessage(m);
     (async () => { ${body} })().catch((e) => { post({ error: String(e && e.stack || e) }); });`,
    { eval: true, workerData },
  );
  // Listened for from the start: the worker may exit before the test waits for it.
  exits.set(w, new Promise<number>((resolve) => w.once('exit', resolve)));
  return w;
}

/** The next message a worker posts (rejects on an { error } message or an error event). */
function message<T = any>(w: Worker, ms = 10000): Promise<T> {
  return within(
    new Promise<T>((resolve, reject) => {
      const onMessage = (m: any): void => {
        w.off('error', reject);
        if (m && typeof m === 'object' && 'error' in m) reject(new Error(`worker failed: ${m.error}`));
        else resolve(m as T);
      };
      w.once('message', onMessage);
      w.once('error', reject);
    }),
    ms,
    'a message from the worker',
  );
}

function exited(w: Worker, ms = 10000): Promise<number> {
  return within(exits.get(w)!, ms, 'the worker to exit');
}

test('a task triggered from a worker runs on the poller\'s thread, and its result comes back to the worker', async () => {
  using poller = openPoller();
  const ran: number[] = [];
  const handle = poller.handle({
    square: (x: number) => {
      ran.push(threadId);
      return x * x;
    },
  });
  const polling = poller.polling();
  const w = worker(`const remote = np.connectPoller(workerData.handle); post({ result: await remote.trigger(np.Priority.High, 'square', 12), me: threadId });`, { handle });
  const { result, me } = await message<{ result: number; me: number }>(w);
  assert.is(result, 144);
  assert.equal(ran, [threadId], 'the task ran once, on the poller\'s thread');
  assert.is.not(me, threadId);
  await exited(w);
  poller.close();
  assert.is(await polling, ErrEngineShutdown);
});

test('params and results cross by value: numbers, strings, Buffers stay Buffers, typed arrays keep their type, ArrayBuffers, objects, sentinels', async () => {
  using poller = openPoller();
  const seen: unknown[] = [];
  const handle = poller.handle({ echo: (v: unknown) => (seen.push(v), v) });
  void poller.polling();
  const w = worker(
    `const remote = np.connectPoller(workerData.handle);
     const values = [0, -0, NaN, -1.5e300, 'héllo \\u{1F600} \\ud800', '', true, false, null, undefined, 12n,
       Buffer.from('buf'), new Uint8Array([1, 2]), new Float64Array([1.5, -2]), new Int16Array([-3, 4]),
       new BigInt64Array([5n]), new ArrayBuffer(3), new DataView(new ArrayBuffer(2)),
       { a: [1, { b: 'c' }], m: new Map([[1, 'x']]), s: new Set([2]), d: new Date(0), buf: Buffer.from('x') },
       np.ErrAcceptSocket, np.ErrPollerClosed]; // (a task returning ErrEngineShutdown would stop polling)
     const back = await Promise.all(values.map((v) => remote.trigger(np.Priority.High, 'echo', v)));
     const describe = (v) => v === null ? 'null' : typeof v !== 'object' ? typeof v + ':' + String(Object.is(v, -0) ? '-0' : v)
       : (Buffer.isBuffer(v) ? 'Buffer' : v.constructor.name) + ':' + (ArrayBuffer.isView(v) || v instanceof ArrayBuffer ? Buffer.from(v instanceof ArrayBuffer ? v : v.buffer, v.byteOffset ?? 0, v.byteLength).toString('hex') : JSON.stringify(v, (k, x) => x instanceof Map ? [...x] : x instanceof Set ? [...x] : x));
     post({ sent: values.map(describe), back: back.map(describe),
       sentinels: [back[values.length - 2] === np.ErrAcceptSocket, back[values.length - 1] === np.ErrPollerClosed] });`,
    { handle },
  );
  const { sent, back, sentinels } = await message<{ sent: string[]; back: string[]; sentinels: boolean[] }>(w);
  assert.equal(back, sent, 'every value came back as it was sent');
  assert.equal(sentinels, [true, true], 'sentinel errors arrive as the receiving thread\'s own');
  assert.ok(Buffer.isBuffer(seen[11]), 'the poller\'s thread got a Buffer for a Buffer');
  assert.ok(seen[13] instanceof Float64Array && !Buffer.isBuffer(seen[12]), 'and typed arrays of their own type');
  assert.is(seen[19], ErrAcceptSocket, 'a sentinel param is the poller thread\'s own sentinel');
  await exited(w);
});

test('a param is copied when trigger() is called: changing it afterwards changes nothing', async () => {
  using poller = openPoller();
  const handle = poller.handle({ echo: (v: unknown) => v });
  void poller.polling();
  const remote = connectPoller(handle);
  const buf = Buffer.from('before');
  const obj = { text: 'before' };
  const a = remote.trigger(Priority.High, 'echo', buf);
  const b = remote.trigger(Priority.High, 'echo', obj);
  buf.write('after!');
  obj.text = 'after';
  assert.is((await a as Buffer).toString(), 'before');
  assert.equal(await b, { text: 'before' });
});

test('a task that throws rejects the caller\'s promise with an Error of the same class, message, code and cause', async () => {
  using poller = openPoller();
  const handle = poller.handle({
    fail: (m: string) => {
      const err = new RangeError(m, { cause: new Error('inner') }) as RangeError & { code: string; errno: number };
      err.code = 'ECUSTOM';
      err.errno = -99;
      throw err;
    },
    throwNumber: () => {
      throw 42; // eslint-disable-line no-throw-literal
    },
    rejectLater: async () => {
      await sleep(1);
      throw new TypeError('later');
    },
  });
  void poller.polling();
  const w = worker(
    `const remote = np.connectPoller(workerData.handle);
     const out = [];
     for (const [task, arg] of [['fail', 'bad input'], ['throwNumber'], ['rejectLater']]) {
       try { await remote.trigger(np.Priority.High, task, arg); out.push('resolved'); }
       catch (e) { out.push(e instanceof Error ? { cls: e.constructor.name, message: e.message, code: e.code, errno: e.errno, cause: e.cause && e.cause.message, stack: /RangeError: bad input/.test(e.stack) } : { thrown: e }); }
     }
     post(out);`,
    { handle },
  );
  const out = await message<unknown[]>(w);
  assert.equal(out, [
    { cls: 'RangeError', message: 'bad input', code: 'ECUSTOM', errno: -99, cause: 'inner', stack: true },
    { thrown: 42 },
    { cls: 'TypeError', message: 'later', code: undefined, errno: undefined, cause: undefined, stack: false },
  ]);
  await exited(w);
});

test('a task that throws a value whose reading throws (getters, Proxy traps) rejects its caller, and polling goes on', async () => {
  using poller = openPoller();
  const throwingProp = (): Error => {
    const e = new Error('outer');
    Object.defineProperty(e, 'boom', { enumerable: true, get: () => { throw new Error('getter'); } });
    return e;
  };
  const handle = poller.handle({
    propGetter: () => { throw throwingProp(); },
    nameGetter: () => {
      const e = new Error('x');
      Object.defineProperty(e, 'name', { get: () => { throw 7; } }); // eslint-disable-line no-throw-literal
      throw e;
    },
    proxy: () => { throw new Proxy(new Error('p'), { getPrototypeOf: () => { throw new Error('trap'); } }); },
    plainGetter: () => { throw { get a(): number { throw throwingProp(); } }; }, // eslint-disable-line no-throw-literal
    resultGetter: () => ({ get a(): number { throw throwingProp(); } }),
    thenGetter: () => ({ get then(): unknown { throw throwingProp(); } }),
    ok: () => 'still polling',
  });
  const polling = poller.polling();
  const w = worker(
    `const remote = np.connectPoller(workerData.handle);
     const out = [];
     for (const task of ['propGetter', 'nameGetter', 'proxy', 'plainGetter', 'resultGetter', 'thenGetter', 'ok']) {
       try { out.push(await remote.trigger(np.Priority.High, task)); }
       catch (e) { out.push(e instanceof Error ? e.constructor.name + ': ' + e.message : 'thrown ' + String(e)); }
     }
     post(out);`,
    { handle },
  );
  const out = await message<string[]>(w);
  const unreadable = 'Error: the remote task threw a value that could not be read or copied to the calling thread';
  assert.equal(out, ['Error: outer', unreadable, unreadable, unreadable, 'Error: outer', 'Error: outer', 'still polling']);
  assert.ok(poller.running, 'polling went on');
  await exited(w);
  poller.close();
  assert.is(await polling, ErrEngineShutdown);
});

test('a task whose result throws when checked for ErrEngineShutdown (a cause getter, a Proxy) does not stop polling, local or remote', async () => {
  using poller = openPoller();
  const trap = (): never => { throw new Error('trap'); };
  const hostile = (): object => new Proxy({}, { get: trap });
  const withCause = (): object => Object.defineProperty({ ok: 1 }, 'cause', { get: trap, enumerable: false });
  const handle = poller.handle({ hostile, withCause });
  const polling = poller.polling();
  const remote = connectPoller(handle);
  const settled = (p: Promise<unknown>): Promise<string> => within(p.then(() => 'resolved', (e: Error) => `rejected: ${e.message}`), 2000);
  assert.is(await settled(poller.trigger(Priority.High, withCause)), 'resolved');
  await settled(poller.trigger(Priority.High, hostile));
  assert.is(await settled(remote.trigger(Priority.High, 'withCause')), 'resolved');
  await settled(remote.trigger(Priority.High, 'hostile'));
  assert.ok(poller.running, 'polling went on');
  poller.close();
  assert.is(await polling, ErrEngineShutdown);
});

test('a view of a SharedArrayBuffer is refused as the SharedArrayBuffer is; a detached ArrayBuffer arrives empty', async () => {
  using poller = openPoller();
  const handle = poller.handle({ echo: (v: unknown) => v, shared: () => new Int32Array(new SharedArrayBuffer(8)) });
  void poller.polling();
  const remote = connectPoller(handle as PollerHandle);
  for (const v of [new SharedArrayBuffer(8), new Int32Array(new SharedArrayBuffer(8)), { nested: new SharedArrayBuffer(8) }]) {
    const e = await rejection(remote.trigger(Priority.High, 'echo', v));
    assert.instance(e, TypeError);
    assert.is(e.code, 'ERR_DATA_CLONE');
  }
  assert.is((await rejection(remote.trigger(Priority.High, 'shared'))).code, 'ERR_DATA_CLONE', 'and so is such a result');
  const detached = new ArrayBuffer(8);
  structuredClone(detached, { transfer: [detached] });
  const back = await within(remote.trigger(Priority.High, 'echo', detached), 2000);
  assert.instance(back, ArrayBuffer);
  assert.is((back as ArrayBuffer).byteLength, 0);
});

test('empty Buffers, typed arrays and ArrayBuffers cross as empty values of their own type, both ways', async () => {
  using poller = openPoller();
  const seen: string[] = [];
  const describe = (v: unknown): string => `${Buffer.isBuffer(v) ? 'Buffer' : (v as object).constructor.name}:${(v as ArrayBuffer).byteLength}`;
  const handle = poller.handle({ echo: (v: unknown) => (seen.push(describe(v)), v) });
  void poller.polling();
  const w = worker(
    `const remote = np.connectPoller(workerData.handle);
     const describe = ${describe.toString()};
     const out = [];
     for (const v of [Buffer.alloc(0), new Uint8Array(0), new Float64Array(0), new ArrayBuffer(0)]) {
       out.push(describe(await remote.trigger(np.Priority.High, 'echo', v)));
     }
     // Alone in their delivery, and mixed with values that carry bytes.
     const mixed = await Promise.all([Buffer.alloc(0), Buffer.from('ab'), new Int32Array(0), 7].map((v) => remote.trigger(np.Priority.High, 'echo', v)));
     out.push(...mixed.map((v) => typeof v === 'number' ? String(v) : describe(v)));
     post(out);`,
    { handle },
  );
  const expected = ['Buffer:0', 'Uint8Array:0', 'Float64Array:0', 'ArrayBuffer:0', 'Buffer:0', 'Buffer:2', 'Int32Array:0'];
  assert.equal(await message(w), [...expected, '7']);
  assert.equal(seen, [...expected, 'Number:undefined']);
  await exited(w);
});

test('a typed array param or result has bytes of its own: its .buffer holds no other call\'s data', async () => {
  using poller = openPoller();
  let param: Float64Array | undefined;
  let nested: Uint8Array | undefined;
  const handle = poller.handle({
    keep: (v: Float64Array) => { param = v; return v; },
    keepNested: (v: { a: Uint8Array }) => { nested = v.a; return v; },
    echo: (v: unknown) => v,
  });
  void poller.polling();
  const w = worker(
    `const remote = np.connectPoller(workerData.handle);
     const secret = Buffer.from('secret from another call');
     const [f, , o] = await Promise.all([remote.trigger(np.Priority.High, 'keep', new Float64Array([1, 2])), remote.trigger(np.Priority.High, 'echo', secret), remote.trigger(np.Priority.High, 'keepNested', { a: new Uint8Array([9]) }), remote.trigger(np.Priority.High, 'echo', secret)]);
     post({ f: Buffer.from(f.buffer).toString('latin1'), o: Buffer.from(o.a.buffer).toString('latin1') });`,
    { handle },
  );
  const back = await message<{ f: string; o: string }>(w);
  assert.not.match(back.f, /secret/, 'the result\'s buffer holds only its own bytes');
  assert.not.match(back.o, /secret/);
  assert.is(param!.buffer.byteLength, 16, 'the param\'s buffer is its own');
  assert.not.match(Buffer.from(nested!.buffer).toString('latin1'), /secret/);
  await exited(w);
});

test('a result shaped like a thrown Error\'s description resolves as the plain object it is', async () => {
  using poller = openPoller();
  const look = { __netpollError: 1, name: 'TypeError', message: 'not an error', props: {} };
  const handle = poller.handle({ look: () => look });
  void poller.polling();
  const got = await within(connectPoller(handle).trigger(Priority.High, 'look'), 2000);
  assert.not.instance(got, Error);
  assert.equal(got, look);
});

test('an unknown task name, a bad priority or a param that cannot be copied rejects at once, and nothing is queued', async () => {
  using poller = openPoller();
  let runs = 0;
  const handle = poller.handle({ count: () => ++runs });
  const remote = connectPoller(handle);
  const unknown = await rejection(remote.trigger(Priority.High, 'nope' as 'count'));
  assert.instance(unknown, TypeError);
  assert.is(unknown.code, 'ERR_UNKNOWN_TASK');
  assert.match(unknown.message, /"count"/, 'the message lists the tasks offered');
  assert.instance(await rejection(remote.trigger(7 as Priority, 'count')), RangeError);
  assert.instance(await rejection(remote.trigger('high' as unknown as Priority, 'count')), TypeError);
  assert.instance(await rejection(remote.trigger(Priority.High, 3 as unknown as 'count')), TypeError);
  const untyped = connectPoller(handle as PollerHandle);
  assert.match((await rejection(untyped.trigger(Priority.High, 'count', () => 1))).message, /could not be cloned/);
  assert.match((await rejection(untyped.trigger(Priority.High, 'count', new Proxy({}, {})))).message, /could not be cloned/);
  const throwingGetter = { get x(): number { throw new Error('getter ran'); } };
  assert.is((await rejection(untyped.trigger(Priority.High, 'count', throwingGetter))).message, 'getter ran');
  void poller.polling();
  assert.is(await within(remote.trigger(Priority.High, 'count'), 2000), 1, 'only the good trigger ran');
});

test('a remote task returning ErrEngineShutdown stops polling, and its caller gets the sentinel itself', async () => {
  using poller = openPoller();
  const handle = poller.handle({ stop: () => ErrEngineShutdown });
  const polling = poller.polling();
  const w = worker(`const r = await np.connectPoller(workerData.handle).trigger(np.Priority.Low, 'stop'); post(r === np.ErrEngineShutdown);`, { handle });
  assert.is(await message(w), true);
  assert.is(await within(polling, 2000), ErrEngineShutdown);
  assert.not.ok(poller.running);
  await exited(w);
});

/** A worker that queues `n` remote tasks `task(0..n-1)` at once, posts 'sent' once they are on their way, then 'done'. */
function flood(handle: PollerHandle, task: string, n: number): Worker {
  return worker(
    `const remote = np.connectPoller(workerData.handle);
     const all = [];
     for (let i = 0; i < workerData.n; i++) all.push(remote.trigger(np.Priority.High, workerData.task, i));
     await new Promise((r) => setImmediate(r));
     post('sent');
     await Promise.all(all);
     post('done');`,
    { handle, task, n },
  );
}

test('a flood of remote tasks runs over several rounds with the loop\'s I/O between them, each task once and in order', async () => {
  using poller = openPoller();
  const [r, wfd] = pipe();
  write(wfd, Buffer.from('x')); // level-triggered: reported at every turn
  const TOTAL = 60_000;
  const ran: number[] = [];
  const seenByIo: number[] = [];
  const handle = poller.handle({ t: (i: number) => { ran.push(i); } });
  poller.addRead({ fd: r, callback: () => { seenByIo.push(ran.length); } });
  const w = flood(handle as PollerHandle, 't', TOTAL);
  assert.is(await message(w), 'sent');
  const polling = poller.polling();
  assert.is(await message(w, 30000), 'done');
  assert.is(ran.length, TOTAL, 'every task ran once');
  assert.ok(ran.every((v, i) => v === i), 'in the order sent');
  assert.ok(seenByIo.some((n) => n > 0 && n < TOTAL), `the loop turned (and read I/O) between rounds; I/O saw ${seenByIo.slice(0, 5).join(', ')}…`);
  poller.close();
  await polling;
  close(r);
  close(wfd);
  await exited(w);
});

test('remote tasks taken but left for a later round when polling stops run when polling starts again', async () => {
  using poller = openPoller();
  const [r, wfd] = pipe();
  write(wfd, Buffer.from('x'));
  const TOTAL = 60_000;
  let ran = 0;
  const handle = poller.handle({ t: () => { ran++; } });
  let calls = 0;
  // The second turn's I/O stops polling: after the first round, with tasks left over.
  poller.addRead({ fd: r, callback: () => (++calls === 2 ? ErrEngineShutdown : undefined) });
  const w = flood(handle as PollerHandle, 't', TOTAL);
  assert.is(await message(w), 'sent');
  assert.is(await within(poller.polling(), 10000), ErrEngineShutdown);
  assert.ok(ran > 0 && ran < TOTAL, `polling stopped with tasks left (${ran} ran)`);
  poller.delete(r);
  const polling = poller.polling();
  assert.is(await message(w, 30000), 'done', 'the rest ran once polling started again');
  assert.is(ran, TOTAL);
  poller.close();
  await polling;
  close(r);
  close(wfd);
  await exited(w);
});

test('remote tasks queued before polling starts run when it starts, after that turn\'s I/O, under gnet\'s queue rules', async () => {
  using poller = openPoller();
  const [r, w] = pipe();
  try {
    const log: string[] = [];
    const handle = poller.handle({ log: (x: string) => void log.push(x) });
    const extra = MaxAsyncTasksAtOneTime + 44;
    const producer = worker(
      `const remote = np.connectPoller(workerData.handle);
       const all = [];
       for (let i = 0; i < ${MaxPollEventsCap}; i++) all.push(remote.trigger(np.Priority.Low, 'log', 'u'));
       for (let i = 0; i < ${extra}; i++) all.push(remote.trigger(np.Priority.Low, 'log', 'n'));
       all.push(remote.trigger(np.Priority.High, 'log', 'H'));
       await new Promise((r) => setImmediate(r)); // flushed: on the poller's queue
       post('sent');
       await Promise.all(all);
       post('settled');`,
      { handle },
    );
    assert.is(await message(producer), 'sent');
    await sleep(30);
    assert.equal(log, [], 'nothing runs before polling');
    poller.addRead({ fd: r });
    write(w, Buffer.from('always readable'));
    let ios = 0;
    const polling = poller.polling(() => {
      log.push('io');
      if (++ios === 4) return ErrEngineShutdown;
    });
    assert.is(await message(producer), 'settled');
    await within(polling, 5000);
    const runs: string[] = [];
    for (const x of log) {
      const last = runs[runs.length - 1];
      if (last !== undefined && last.startsWith(x + '*')) runs[runs.length - 1] = `${x}*${Number(last.split('*')[1]) + 1}`;
      else runs.push(`${x}*1`);
    }
    assert.equal(runs, ['io*1', `u*${MaxPollEventsCap}`, 'H*1', `n*${MaxAsyncTasksAtOneTime}`, 'io*1', `n*${extra - MaxAsyncTasksAtOneTime}`, 'io*2']);
    await exited(producer);
  } finally {
    close(r);
    close(w);
  }
});

test('remote tasks run during iteration too', async () => {
  using poller = openPoller();
  const handle = poller.handle({ add: (x: number) => x + 1 });
  const [r, w] = pipe();
  try {
    poller.addRead({ fd: r });
    const producer = worker(`post(await np.connectPoller(workerData.handle).trigger(np.Priority.High, 'add', 1));`, { handle });
    const reply = message<number>(producer);
    const iterating = (async () => {
      for await (const _ of poller.events({ signal: AbortSignal.timeout(5000) })) break;
    })();
    assert.is(await reply, 2, 'the task ran while the poller was being iterated');
    write(w, Buffer.from('x'));
    await within(iterating, 5000);
    await exited(producer);
  } finally {
    close(r);
    close(w);
  }
});

test('high-priority tasks from each producer run in the order sent: 4 workers x 5,000 tasks, every one once', async () => {
  using poller = openPoller();
  const seen: number[][] = [[], [], [], []];
  const handle = poller.handle({ record: ([p, i]: [number, number]) => (seen[p]!.push(i), i) });
  void poller.polling();
  const producers = [0, 1, 2, 3].map((p) =>
    worker(
      `const remote = np.connectPoller(workerData.handle);
       let wrong = 0;
       for (let round = 0; round < 10; round++) {
         const batch = [];
         for (let i = round * 500; i < (round + 1) * 500; i++) batch.push(remote.trigger(np.Priority.High, 'record', [${p}, i]));
         const back = await Promise.all(batch);
         back.forEach((v, k) => { if (v !== round * 500 + k) wrong++; });
       }
       post({ wrong });`,
      { handle },
    ),
  );
  const results = await Promise.all(producers.map((w) => message<{ wrong: number }>(w, 30000)));
  assert.equal(results, [{ wrong: 0 }, { wrong: 0 }, { wrong: 0 }, { wrong: 0 }], 'every promise settled with its own result');
  for (let p = 0; p < 4; p++) {
    assert.is(seen[p]!.length, 5000, `producer ${p}: every task ran once`);
    assert.ok(seen[p]!.every((v, i) => v === i), `producer ${p}: in the order sent`);
  }
  await Promise.all(producers.map((w) => exited(w)));
});

test('closing the poller rejects every pending remote trigger with ErrPollerClosed, and every later one', async () => {
  const poller = openPoller();
  const handle = poller.handle({ hang: () => new Promise<never>(() => undefined), quick: () => 1 });
  void poller.polling();
  const w = worker(
    `const remote = np.connectPoller(workerData.handle);
     const hanging = remote.trigger(np.Priority.High, 'hang');
     await remote.trigger(np.Priority.High, 'quick'); // the hanging task is in the poller now
     const queued = [];
     for (let i = 0; i < 100; i++) queued.push(remote.trigger(np.Priority.Low, 'quick'));
     post('ready');
     const outcomes = await Promise.allSettled([hanging, ...queued]);
     const closed = outcomes.filter((o) => o.status === 'rejected' && o.reason === np.ErrPollerClosed).length;
     const ran = outcomes.filter((o) => o.status === 'fulfilled').length;
     const later = await remote.trigger(np.Priority.High, 'quick').catch((e) => e === np.ErrPollerClosed);
     post({ closed, ran, later, connected: remote.connected });`,
    { handle },
  );
  assert.is(await message(w), 'ready');
  poller.close();
  const { closed, ran, later, connected } = await message<{ closed: number; ran: number; later: boolean; connected: boolean }>(w);
  assert.is(closed + ran, 101, 'every call settled');
  assert.ok(closed >= 1, 'the hanging task was answered with ErrPollerClosed');
  assert.is(later, true, 'a trigger after the close rejects with ErrPollerClosed');
  assert.is(connected, false);
  await exited(w);
});

test('the owner\'s worker terminated: pending remote triggers in this thread reject with ErrPollerClosed', async () => {
  const owner = worker(
    `const poller = np.openPoller();
     const handle = poller.handle({ hang: () => new Promise(() => {}), ping: () => 'pong' });
     void poller.polling();
     post(handle);`,
  );
  const handle = await message<PollerHandle>(owner);
  const remote = connectPoller(handle);
  assert.is(await within(remote.trigger(Priority.High, 'ping'), 5000), 'pong');
  const hanging = remote.trigger(Priority.High, 'hang');
  await remote.trigger(Priority.High, 'ping');
  const queued = Array.from({ length: 50 }, () => remote.trigger(Priority.Low, 'ping'));
  await owner.terminate();
  const outcomes = await within(Promise.allSettled([hanging, ...queued]), 5000, 'every pending trigger to settle');
  assert.ok(outcomes.every((o) => o.status === 'fulfilled' || o.reason === ErrPollerClosed), 'each ran or was answered with ErrPollerClosed');
  assert.is(outcomes[0]!.status, 'rejected');
  assert.is(await rejection(remote.trigger(Priority.High, 'ping')), ErrPollerClosed);
});

test('a handle of a closed poller never reaches a later poller, even one with the same fd numbers', async () => {
  const first = openPoller();
  const firstFd = first.fd;
  const stale = first.handle({ who: () => 'first' });
  first.close();
  using second = openPoller();
  // libkqueue closes a kqueue's descriptors lazily: there the number may not come back at once.
  if (!libkqueue) assert.is(second.fd, firstFd, 'the fd number was reused');
  const fresh = second.handle({ who: () => 'second' });
  assert.is.not(fresh.id, stale.id, 'ids are never reused');
  void second.polling();
  const old = connectPoller(stale);
  assert.is(old.connected, false);
  assert.is(await rejection(old.trigger(Priority.High, 'who')), ErrPollerClosed);
  assert.is(await connectPoller(fresh).trigger(Priority.High, 'who'), 'second');
  // The right id with another poller's token reaches nothing either.
  assert.is(connectPoller({ ...fresh, token: stale.token }).connected, false);
});

test('forged handles: a malformed one is a TypeError, a well-formed unknown one gives ErrPollerClosed; never a crash', async () => {
  const bad: unknown[] = [undefined, null, 1, 'handle', Symbol('h'), [], {}, { id: '1', token: 'x' }, { id: 1 }, { id: 1.5, token: 'x' },
    { id: -1, token: 'x' }, { id: 0, token: 'x' }, { id: 2 ** 60, token: 'x' }, { id: NaN, token: 'x' }, { id: 1, token: 'x'.repeat(1000) },
    { id: 1, token: 7 }, { get id(): number { throw new Error('getter'); }, token: 'x' }, new Proxy({}, { get: () => { throw new Error('trap'); } })];
  bad.forEach((h, i) => {
    const err = thrown(() => connectPoller(h as PollerHandle));
    assert.instance(err, TypeError, `a TypeError for forged handle ${i}`);
  });
  for (const h of [{ id: 987654321, token: 'nope', tasks: [] }, { id: 1, token: '' }, { id: Number.MAX_SAFE_INTEGER, token: 'x' }]) {
    const remote = connectPoller(h as PollerHandle);
    assert.is(remote.connected, false);
    assert.is(await rejection(remote.trigger(Priority.High, 'anything')), ErrPollerClosed);
  }
});

test('a RemotePoller does not keep its thread alive once it has no pending calls', async () => {
  using poller = openPoller();
  const handle = poller.handle({ slow: async () => (await sleep(50), 'done') });
  void poller.polling();
  // The worker neither closes its RemotePoller nor exits explicitly.
  const w = worker(`const remote = np.connectPoller(workerData.handle); post(await remote.trigger(np.Priority.High, 'slow'));`, { handle });
  assert.is(await message(w), 'done', 'a pending call kept the worker alive until it settled');
  assert.is(await exited(w, 5000), 0, 'then the worker exits by itself');
});

test('remote triggers from 4 threads write the eventfd once per pending wake', async () => {
  if (Backend !== 'epoll') return; // reads the eventfd counter
  const before = new Set(fdsMatching(/eventfd/));
  using poller = openPoller();
  const efd = fdsMatching(/eventfd/).filter((fd) => !before.has(fd));
  assert.is(efd.length, 1);
  const counter = Buffer.alloc(8);
  const readCounter = (): bigint => {
    try {
      fs.readSync(efd[0]!, counter, 0, 8, null);
      return counter.readBigUInt64LE(0);
    } catch (e) {
      if ((e as { code: string }).code === 'EAGAIN') return 0n;
      throw e;
    }
  };
  let runs = 0;
  const handle = poller.handle({ count: () => ++runs });
  // Not polling: the first push sets the flag and writes; the rest find a wake pending.
  const producers = [0, 1, 2, 3].map(() =>
    worker(
      `const remote = np.connectPoller(workerData.handle);
       const all = [];
       for (let tick = 0; tick < 10; tick++) {
         for (let i = 0; i < 100; i++) all.push(remote.trigger(np.Priority.High, 'count'));
         await new Promise((r) => setImmediate(r));
       }
       post('sent');
       await Promise.all(all);
       post('settled');`,
      { handle },
    ),
  );
  await Promise.all(producers.map((w) => message(w)));
  assert.is(readCounter(), 1n, '4 threads x 10 flushes, one eventfd write');
  const polling = poller.polling();
  await Promise.all(producers.map((w) => message(w)));
  assert.is(runs, 4000);
  poller.close();
  await polling;
  await Promise.all(producers.map((w) => exited(w)));
});

test('remote.close() sends what this tick triggered; later triggers reject; calls in flight still settle', async () => {
  using poller = openPoller();
  const handle = poller.handle({ id: (x: number) => x });
  void poller.polling();
  const remote = connectPoller(handle);
  const sent = [1, 2, 3].map((x) => remote.trigger(Priority.High, 'id', x));
  remote.close();
  remote.close();
  assert.is(remote.connected, false);
  assert.equal(await Promise.all(sent), [1, 2, 3]);
  assert.is(await rejection(remote.trigger(Priority.High, 'id', 4)), ErrPollerClosed);
});

test('a param getter that triggers again and closes the RemotePoller mid-trigger leaves every other call intact', async () => {
  using poller = openPoller();
  const handle = poller.handle({ echo: (x: unknown) => x });
  void poller.polling();
  const remote = connectPoller(handle);
  const first = remote.trigger(Priority.High, 'echo', 1);
  let nested: Promise<unknown> | undefined;
  const param = {
    get x(): number {
      // Runs while the outer trigger is copying its param.
      nested = remote.trigger(Priority.High, 'echo', 2);
      remote.close(); // sends what was triggered so far
      return 3;
    },
  };
  const outer = remote.trigger(Priority.High, 'echo', param);
  assert.is(await within(first, 2000, 'the first trigger'), 1, 'the first call got its own answer');
  assert.is(await within(nested!, 2000, 'the nested trigger'), 2, 'the nested call got its own answer');
  assert.is(await within(rejection(outer), 2000, 'the outer trigger'), ErrPollerClosed, 'the outer call, copied after the close, was not sent');
});

test('connectPoller on the poller\'s own thread queues like a local trigger', async () => {
  using poller = openPoller();
  const log: string[] = [];
  const handle = poller.handle({ log: (x: string) => void log.push(x) });
  const remote = connectPoller(handle);
  void poller.trigger(Priority.High, () => void log.push('local 1'));
  void remote.trigger(Priority.High, 'log', 'remote');
  void poller.trigger(Priority.High, () => void log.push('local 2'));
  const stop = poller.trigger(Priority.Low, () => ErrEngineShutdown);
  // Remote tasks join the queues at the start of a round, after the local ones already there.
  await within(poller.polling(), 2000);
  await stop;
  const more = remote.trigger(Priority.High, 'log', 'next run');
  void poller.polling();
  await more;
  assert.equal(log, ['local 1', 'local 2', 'remote', 'next run']);
});

// ---- issue 18 §3: hostile results, closing owners, FIFO across RemotePollers, close mid-delivery ----

/** Task results whose every inspection runs hostile code: what the owner touches of a result. */
function hostileResults(): Record<string, () => unknown> {
  const trap = (): never => {
    throw new Error('trap');
  };
  const revocable = Proxy.revocable({}, {});
  revocable.revoke();
  return {
    promiseThenThrows: () => {
      const p = Promise.resolve(1);
      Object.defineProperty(p, 'then', { value: trap });
      return p;
    },
    promiseConstructorGetter: () => {
      const p = Promise.resolve(2);
      Object.defineProperty(p, 'constructor', { get: trap });
      return p;
    },
    thenableThenThrows: () => ({ then: trap }),
    thenGetterThrows: () => ({ get then(): unknown { return trap(); } }),
    toPrimitive: () => ({ [Symbol.toPrimitive]: trap, valueOf: trap, toString: trap }),
    proxyEveryTrap: () => new Proxy({}, { get: trap, getPrototypeOf: trap, has: trap, ownKeys: trap, getOwnPropertyDescriptor: trap }),
    proxyOfPromise: () => new Proxy(Promise.resolve(3), { get: trap, getPrototypeOf: trap }),
    revokedProxy: () => revocable.proxy,
    thenableOfHostile: () => ({ then: (ok: (v: unknown) => void) => ok({ get then(): unknown { return trap(); } }) }),
    rejectsWithRevoked: () => Promise.reject(revocable.proxy),
  };
}

test('no value a remote task returns, throws or rejects with stops the owner: the caller gets an answer, and later triggers run', async () => {
  using poller = openPoller();
  const hostile = hostileResults();
  const handle = poller.handle({ ...hostile, ok: () => 'still polling' });
  let stopped: unknown;
  const polling = poller.polling().then((r) => (stopped = r), (e: unknown) => (stopped = e));
  const remote = connectPoller(handle);
  for (const name of Object.keys(hostile)) {
    const outcome = await within(
      (remote.trigger as (p: Priority, t: string) => Promise<unknown>)(Priority.High, name).then(() => 'resolved', () => 'rejected'),
      5000,
      `the caller of ${name}`,
    );
    assert.ok(outcome === 'resolved' || outcome === 'rejected', name);
    assert.is(stopped, undefined, `${name}'s result stopped the owner's polling`);
    assert.is(await within(remote.trigger(Priority.High, 'ok'), 5000, `a trigger after ${name}`), 'still polling');
  }
  assert.ok(poller.running);
  poller.close();
  await polling;
});

test('fire-and-forget triggers never crash the producer when the owner closes, on any path', async () => {
  using poller = openPoller();
  const handle = poller.handle({ tick: () => undefined });
  void poller.polling();
  const w = worker(
    `process.on('unhandledRejection', (e) => { post({ unhandled: String(e) }); });
     const remote = np.connectPoller(workerData.handle);
     await remote.trigger(np.Priority.Low, 'tick');
     post('connected');
     await new Promise((r) => require('node:worker_threads').parentPort.once('message', r));
     for (let i = 0; i < 5; i++) { void remote.trigger(np.Priority.Low, 'tick'); await new Promise((r) => setTimeout(r, 20)); }
     const gone = np.connectPoller(workerData.handle);
     void gone.trigger(np.Priority.Low, 'tick');
     void gone.trigger(np.Priority.High, 'tick');
     await new Promise((r) => setTimeout(r, 50));
     post('done');`,
    { handle },
  );
  assert.is(await message(w), 'connected');
  poller.close();
  w.postMessage('go');
  const m = await message(w);
  assert.is(m, 'done', `the producer saw ${JSON.stringify(m)}`);
  await exited(w);
});

test('two RemotePollers of one handle in one thread keep FIFO for high-priority tasks: a:1, b:2, a:3, b:4 run 1, 2, 3, 4', async () => {
  using poller = openPoller();
  const ran: number[] = [];
  const handle = poller.handle({ log: (x: number) => void ran.push(x) });
  void poller.polling();
  const a = connectPoller(handle);
  const b = connectPoller(handle);
  const sent = [a.trigger(Priority.High, 'log', 1), b.trigger(Priority.High, 'log', 2), a.trigger(Priority.High, 'log', 3), b.trigger(Priority.High, 'log', 4)];
  await within(Promise.all(sent), 5000);
  assert.equal(ran, [1, 2, 3, 4]);
  // And from a worker, across ticks and after one of them closes.
  ran.length = 0;
  const w = worker(
    `const a = np.connectPoller(workerData.handle), b = np.connectPoller(workerData.handle);
     const all = [];
     for (let i = 0; i < 200; i += 2) { all.push(a.trigger(np.Priority.High, 'log', i), b.trigger(np.Priority.High, 'log', i + 1)); if (i % 20 === 0) await null; }
     a.close();
     all.push(b.trigger(np.Priority.High, 'log', 200));
     await Promise.all(all);
     post('done');`,
    { handle },
  );
  assert.is(await message(w), 'done');
  assert.equal(ran, Array.from({ length: 201 }, (_, i) => i));
  await exited(w);
});

test('an inherited index setter that closes the poller mid-delivery runs no task after close, remote or local', async () => {
  const ran = new Set<string>(); // not an array: the hooks below fire on array stores
  const saved = new Map<number, PropertyDescriptor | undefined>();
  /** Array.prototype[0..7] setters that run `close` when `value` is stored: user code inside netpoll's own storage. */
  const hook = (value: unknown, close: () => void): void => {
    for (let i = 0; i < 8; i++) {
      saved.set(i, Object.getOwnPropertyDescriptor(Array.prototype, i));
      Object.defineProperty(Array.prototype, i, {
        configurable: true,
        set(v: unknown) {
          if (v === value) close();
          Object.defineProperty(this, i, { value: v, writable: true, enumerable: true, configurable: true });
        },
      });
    }
  };
  const unhook = (): void => {
    for (const [i, d] of saved) {
      if (d === undefined) delete (Array.prototype as unknown as Record<number, unknown>)[i];
      else Object.defineProperty(Array.prototype, i, d);
    }
    saved.clear();
  };
  {
    using poller = openPoller();
    const handle = poller.handle({ run: (x: string) => void ran.add(x) });
    const polling = poller.polling();
    const remote = connectPoller(handle);
    // A string param arrives as a value the binding stores into the owner's array.
    const results = [remote.trigger(Priority.High, 'run', 'remote a'), remote.trigger(Priority.High, 'run', 'remote b')];
    hook('remote a', () => poller.close());
    try {
      await within(Promise.allSettled(results), 5000);
    } finally {
      unhook();
    }
    // Before the fix the binding's store ran the hook, which closed the poller mid-delivery, and "remote a" still ran.
    if (poller.closed) assert.equal([...ran], [], 'no remote task ran after close');
    assert.ok(!poller.closed, 'delivering tasks ran no user code (the hook would have closed the poller)');
    assert.equal([...ran], ['remote a', 'remote b']);
    poller.close();
    await within(polling, 5000);
    ran.clear();
  }
  {
    using poller = openPoller();
    const task = (): void => void ran.add('local');
    let p: Promise<unknown>;
    hook(task, () => poller.close());
    try {
      p = poller.trigger(Priority.High, task);
    } finally {
      unhook();
    }
    assert.ok(!poller.closed, 'queuing a task ran no user code (the hook would have closed the poller)');
    const stop = poller.trigger(Priority.Low, () => ErrEngineShutdown);
    await within(poller.polling(), 2000);
    await within(p, 2000, 'the local trigger');
    await stop;
    assert.equal([...ran], ['local']);
  }
});

test('post() queues a task with no promise and no reply: true while the poller is there, in order with triggers, false once it is known closed', async () => {
  using poller = openPoller();
  const ran: unknown[] = [];
  const handle = poller.handle({ log: (x: unknown) => void ran.push(x), boom: () => { throw new Error('posted task threw'); }, rejects: () => Promise.reject(new Error('posted task rejected')) });
  const polling = poller.polling();
  const remote = connectPoller(handle);
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown): void => void unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  try {
    assert.is(remote.post(Priority.High, 'log', 1), true);
    const t = remote.trigger(Priority.High, 'log', 2);
    assert.is(remote.post(Priority.High, 'log', 'three'), true);
    assert.is(remote.post(Priority.High, 'boom'), true);
    assert.is(remote.post(Priority.High, 'rejects'), true);
    assert.is(remote.post(Priority.Low, 'log', Buffer.from('four')), true);
    await within(t, 2000);
    await within(remote.trigger(Priority.Low, 'log', 5), 2000);
    assert.equal(ran, [1, 2, 'three', Buffer.from('four'), 5]);
    // Bad arguments throw; a closed poller does not.
    assert.is(thrown(() => (remote.post as (p: Priority, t: string) => boolean)(Priority.High, 'nope')).code, 'ERR_UNKNOWN_TASK');
    assert.instance(thrown(() => remote.post(7 as Priority, 'log', 1)), RangeError);
    assert.is(thrown(() => remote.post(Priority.High, 'log', () => 1)).code, 'ERR_DATA_CLONE');
    await sleep(20);
    assert.equal(unhandled, [], 'a posted task\'s rejection is nobody\'s unhandled rejection');
    assert.ok(poller.running, 'polling went on');
    poller.close();
    await polling;
    // The first post after the close is queued for a poller that is gone; its send finds out.
    remote.post(Priority.High, 'log', 6);
    await sleep(10);
    assert.is(remote.post(Priority.High, 'log', 7), false);
    assert.is(remote.connected, false);
    const other = connectPoller(handle);
    assert.is(other.post(Priority.High, 'log', 8), false, 'a handle of a closed poller');
    remote.close();
    assert.is(remote.post(Priority.High, 'log', 9), false);
    assert.equal(ran, [1, 2, 'three', Buffer.from('four'), 5]);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

test('a worker that only posts is not kept alive by it, and keeps posting safely while the owner closes', async () => {
  using poller = openPoller();
  let runs = 0;
  const handle = poller.handle({ tick: () => void runs++ });
  void poller.polling();
  const w = worker(
    `process.on('unhandledRejection', (e) => { post({ unhandled: String(e) }); });
     const remote = np.connectPoller(workerData.handle);
     let queued = 0, refused = 0;
     for (let round = 0; round < 400 && refused === 0; round++) {
       for (let i = 0; i < 50; i++) remote.post(np.Priority.Low, 'tick') ? queued++ : refused++;
       if (round === 20) post('started');
       await new Promise((r) => setTimeout(r, 2));
     }
     post({ queued, refused });`,
    { handle },
  );
  assert.is(await message(w), 'started');
  poller.close();
  const { queued, refused } = await message<{ queued: number; refused: number }>(w);
  assert.ok(refused > 0, 'posts after the close came back false');
  assert.ok(runs <= queued && runs > 0, `${runs} of ${queued} queued tasks ran`);
  assert.is(await exited(w), 0, 'the worker exited by itself');
});

test('a remote task that closes its poller and returns a rejected promise leaves no unhandled rejection on the owner', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown): void => void unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  try {
    for (const how of ['trigger', 'post'] as const) {
      const poller = openPoller();
      const handle = poller.handle({
        closeAndReject: () => {
          poller.close();
          return Promise.reject(new Error('rejected after close'));
        },
      });
      const polling = poller.polling();
      const remote = connectPoller(handle);
      if (how === 'trigger') assert.is(await within(rejection(remote.trigger(Priority.High, 'closeAndReject')), 2000), ErrPollerClosed);
      else remote.post(Priority.High, 'closeAndReject');
      await within(polling, 2000);
      await sleep(20);
    }
    assert.equal(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

test('handle(): once per poller, functions only, not after close', () => {
  const poller = openPoller();
  assert.instance(thrown(() => poller.handle(null as never)), TypeError);
  assert.instance(thrown(() => poller.handle({ x: 1 } as never)), TypeError);
  const handle = poller.handle({ a: () => 1 });
  assert.equal(Object.keys(handle).sort(), ['id', 'tasks', 'token']);
  assert.equal(handle.tasks, ['a']);
  assert.is(structuredClone(handle).id, handle.id, 'a handle is plain data');
  assert.is(thrown(() => poller.handle({ b: () => 2 })).code, 'ERR_POLLER_HANDLE_EXISTS');
  poller.close();
  assert.is(thrown(() => openPollerClosed().handle({ c: () => 3 })), ErrPollerClosed);
});

function openPollerClosed() {
  const p = openPoller();
  p.close();
  return p;
}

test.run();
