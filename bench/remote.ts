// Cross-thread trigger: tasks per second from producer threads into one polling
// poller, each counted when its promise settles in the producer, and the round trip
// of one trigger awaited at a time; against MessagePort postMessage to the same
// thread (a request and its reply, the reply settling a promise).
//
// Two more modes compare with one-way MessagePort postMessage (no reply message; every
// message counted once the owner has run it, which one round trip after each window
// tells the producer): `handoff`, tasks sent with no reply (remote post()) in windows of
// HANDOFF_WINDOW; and `inflight`, INFLIGHT triggers sent before the producer awaits the
// last one (remote trigger(), every reply settling a promise).
//
//   node dist/bench/remote.js <impl> <mode> <producers> <param> <measure_ms> <warmup_ms>
// impl: remote | messageport; mode: throughput | latency | handoff | inflight;
// param: fd | buffer (1 KiB)
// prints one JSON line: {"tasks","seconds","rate"}; latency {"samples","p50_us","p99_us"}
import { MessageChannel, Worker, isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { ErrEngineShutdown, Priority, connectPoller, openPoller, type PollerHandle } from '../src/index.js';
import { intArg, printResult } from './util.js';

/** Triggers a producer keeps in flight: it sends this many, then waits for the last. */
const BATCH = 512;
/** handoff: tasks posted between two round trips that say they all ran (bounds what is queued). */
const HANDOFF_WINDOW = 32 * 1024;
/** inflight: triggers sent before the producer awaits the last (issue 18: 200,000). */
const INFLIGHT = 200_000;

type Impl = 'remote' | 'messageport';
type Mode = 'throughput' | 'latency' | 'handoff' | 'inflight';

interface ProducerInput {
  impl: Impl;
  mode: Mode;
  param: 'fd' | 'buffer';
  measureMs: number;
  warmupMs: number;
  handle?: PollerHandle<Tasks>;
  port?: MessagePort;
}

/** What a producer reports: its count over the measured window, or its latency samples. */
type ProducerResult = { tasks: number; seconds: number } | { samples: number[] };

/** The task: what a sub-reactor's register would do with an fd, in miniature. */
function work(param: number | Buffer): number {
  return typeof param === 'number' ? param + 1 : param.length;
}

/** What the owner has run of the one-way kinds (handoff, and messageport's inflight). */
let ran = 0;
/** A one-way task: counted, nothing sent back. */
function count(param: number | Buffer): void {
  ran += typeof param === 'number' ? 1 : param.length > 0 ? 1 : 0;
}
/** Answers once everything sent before it has run (FIFO per producer). */
function sync(): number {
  return ran;
}

const tasks = { work, count, sync };
type Tasks = typeof tasks;

type Send = (param: number | Buffer) => Promise<number>;

function sender(input: ProducerInput): Send {
  if (input.impl === 'remote') {
    const remote = connectPoller(input.handle!);
    return (param) => remote.trigger(Priority.High, 'work', param);
  }
  const port = input.port!;
  const waiting = new Map<number, (v: number) => void>();
  let next = 0;
  port.on('message', (m: { id: number; result: number }) => {
    const resolve = waiting.get(m.id)!;
    waiting.delete(m.id);
    resolve(m.result);
  });
  return (param) =>
    new Promise<number>((resolve) => {
      const id = next++;
      waiting.set(id, resolve);
      port.postMessage({ id, param });
    });
}

/** One-way sending (no reply per task), and a round trip that answers once all sent before it ran. */
interface OneWay {
  post(param: number | Buffer): void;
  sync(): Promise<unknown>;
}

function oneWay(input: ProducerInput): OneWay {
  if (input.impl === 'remote') {
    const remote = connectPoller(input.handle!);
    return {
      post: (param) => void remote.post(Priority.High, 'count', param),
      sync: () => remote.trigger(Priority.High, 'sync'),
    };
  }
  const port = input.port!;
  let waiting: ((v: unknown) => void) | undefined;
  port.on('message', () => waiting?.(undefined));
  return {
    post: (param) => port.postMessage(param),
    sync: () =>
      new Promise((resolve) => {
        waiting = resolve;
        port.postMessage({ sync: true });
      }),
  };
}

/** handoff and inflight: how many tasks ran per second, counted in windows the producer waits out. */
async function produceWindows(input: ProducerInput): Promise<ProducerResult> {
  const payload = Buffer.alloc(1024, 7);
  const param = (i: number): number | Buffer => (input.param === 'fd' ? i & 0xffff : payload);
  let window: () => Promise<unknown>;
  let size: number;
  if (input.mode === 'inflight' && input.impl === 'remote') {
    const send = sender(input);
    size = INFLIGHT;
    window = () => {
      let last!: Promise<number>;
      for (let i = 0; i < INFLIGHT; i++) last = send(param(i));
      return last; // FIFO per producer: every earlier one has settled
    };
  } else {
    const way = oneWay(input);
    size = input.mode === 'inflight' ? INFLIGHT : HANDOFF_WINDOW;
    window = () => {
      for (let i = 0; i < size; i++) way.post(param(i));
      return way.sync();
    };
  }
  const warmEnd = Date.now() + input.warmupMs;
  let tasks = 0;
  let from = 0n;
  let fromTasks = 0;
  let end = Infinity;
  for (;;) {
    await window();
    tasks += size;
    const now = Date.now();
    if (from === 0n && now >= warmEnd) {
      from = process.hrtime.bigint();
      fromTasks = tasks;
      end = now + input.measureMs;
    } else if (now >= end) break;
  }
  return { tasks: tasks - fromTasks, seconds: Number(process.hrtime.bigint() - from) / 1e9 };
}

async function produce(input: ProducerInput): Promise<ProducerResult> {
  if (input.mode === 'handoff' || input.mode === 'inflight') return produceWindows(input);
  const send = sender(input);
  const param = (i: number): number | Buffer => (input.param === 'fd' ? i & 0xffff : payload);
  const payload = Buffer.alloc(1024, 7);
  const warmEnd = Date.now() + input.warmupMs;
  if (input.mode === 'throughput') {
    let tasks = 0;
    let from = 0n;
    let fromTasks = 0;
    let end = Infinity;
    for (;;) {
      let last!: Promise<number>;
      for (let i = 0; i < BATCH; i++) last = send(param(i));
      await last; // FIFO per producer: every earlier one has settled
      tasks += BATCH;
      const now = Date.now();
      if (from === 0n && now >= warmEnd) {
        from = process.hrtime.bigint();
        fromTasks = tasks;
        end = now + input.measureMs;
      } else if (now >= end) break;
    }
    return { tasks: tasks - fromTasks, seconds: Number(process.hrtime.bigint() - from) / 1e9 };
  }
  const samples: number[] = [];
  const end = warmEnd + input.measureMs;
  for (let i = 0; ; i++) {
    const t0 = process.hrtime.bigint();
    await send(param(i));
    const t1 = process.hrtime.bigint();
    const now = Date.now();
    if (now >= end) break;
    if (now >= warmEnd) samples.push(Number(t1 - t0) / 1e3);
  }
  return { samples };
}

async function main(): Promise<void> {
  const impl = process.argv[2] as Impl;
  const mode = process.argv[3] as Mode;
  const producers = intArg(4, 1);
  const param = process.argv[5] === 'buffer' ? 'buffer' : 'fd';
  const measureMs = intArg(6, 1000);
  const warmupMs = intArg(7, 200);
  if (impl !== 'remote' && impl !== 'messageport') throw new Error(`unknown implementation ${impl}`);
  if (mode !== 'throughput' && mode !== 'latency' && mode !== 'handoff' && mode !== 'inflight') throw new Error(`unknown mode ${mode}`);
  const oneWayPort = mode === 'handoff' || mode === 'inflight';

  const poller = openPoller();
  const handle = poller.handle(tasks);
  const polling = poller.polling();
  const workers: Worker[] = [];
  const results: Promise<ProducerResult>[] = [];
  for (let p = 0; p < producers; p++) {
    const input: ProducerInput = { impl, mode, param, measureMs, warmupMs };
    const transfer: MessagePort[] = [];
    if (impl === 'remote') {
      input.handle = handle;
    } else {
      // The owner thread answers on its end, as a task would: one message per request.
      const { port1, port2 } = new MessageChannel();
      if (oneWayPort) {
        // One-way: each message counted as the count task counts it; a sync answered.
        port1.on('message', (m: number | Buffer | { sync: true }) => {
          if (typeof m === 'object' && !Buffer.isBuffer(m) && !(m instanceof Uint8Array)) port1.postMessage(sync());
          else count(m as number | Buffer);
        });
      } else {
        port1.on('message', (m: { id: number; param: number | Buffer }) => port1.postMessage({ id: m.id, result: work(m.param) }));
      }
      input.port = port2;
      transfer.push(port2);
    }
    const w = new Worker(__filename, { workerData: input, transferList: transfer });
    workers.push(w);
    results.push(
      new Promise((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      }),
    );
  }
  const all = await Promise.all(results);
  await Promise.all(workers.map((w) => w.terminate()));
  if (mode !== 'latency') {
    const counted = all as { tasks: number; seconds: number }[];
    const tasksDone = counted.reduce((s, r) => s + r.tasks, 0);
    const seconds = Math.max(...counted.map((r) => r.seconds));
    printResult({ tasks: tasksDone, seconds, rate: tasksDone / seconds });
  } else {
    const samples = (all as { samples: number[] }[]).flatMap((r) => r.samples).sort((a, b) => a - b);
    printResult({ samples: samples.length, p50_us: samples[Math.floor(samples.length * 0.5)] ?? NaN, p99_us: samples[Math.floor(samples.length * 0.99)] ?? NaN });
  }
  void poller.trigger(Priority.High, () => ErrEngineShutdown);
  await polling;
  poller.close();
}

if (isMainThread) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
} else {
  produce(workerData as ProducerInput).then(
    (r) => parentPort!.postMessage(r),
    (e: unknown) => {
      throw e;
    },
  );
}
