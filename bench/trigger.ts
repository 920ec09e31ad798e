// trigger(): tasks per second through Poller.trigger() (each with the promise it
// returns), and wake-to-run latency, against setImmediate wrapped in a promise.
//
//   node dist/bench/trigger.js <impl> <mode> <measure_ms> <warmup_ms>
// impl: trigger | setImmediate; mode: throughput | latency
// prints one JSON line: throughput {"tasks","seconds","rate","cpu_seconds"}; latency {"samples","p50_us","p99_us"}
import { ErrEngineShutdown, Priority, openPoller, type Poller } from '../src/index.js';
import { intArg, printResult } from './util.js';

const impl = process.argv[2] ?? 'trigger';
const mode = process.argv[3] ?? 'throughput';
const measureMs = intArg(4, 1000);
const warmupMs = intArg(5, 200);

/** Tasks queued before waiting for the last: one loop turn's worth, as a busy server would. */
const BATCH = 1024;

type Schedule = (fn: (x: number) => number, param: number) => Promise<number>;

/**
 * The baseline: setImmediate wrapped in a promise. A closure per task is the fastest
 * form here: setImmediate(fn, ...args) takes a slower path for the arguments.
 */
const viaImmediate: Schedule = (fn, param) =>
  new Promise<number>((resolve) => {
    setImmediate(() => resolve(fn(param)));
  });

function square(x: number): number {
  return x * x;
}

async function throughput(schedule: Schedule): Promise<void> {
  let tasks = 0;
  let from = 0n;
  let fromTasks = 0;
  let cpuFrom = process.cpuUsage();
  const warmEnd = Date.now() + warmupMs;
  let end = Infinity;
  for (;;) {
    let last!: Promise<number>;
    for (let i = 0; i < BATCH; i++) last = schedule(square, i);
    await last; // FIFO: every earlier task of the batch has run and settled
    tasks += BATCH;
    const now = Date.now();
    if (from === 0n && now >= warmEnd) {
      from = process.hrtime.bigint();
      cpuFrom = process.cpuUsage();
      fromTasks = tasks;
      end = now + measureMs;
    } else if (now >= end) break;
  }
  const seconds = Number(process.hrtime.bigint() - from) / 1e9;
  const cpu = process.cpuUsage(cpuFrom);
  const counted = tasks - fromTasks;
  printResult({ tasks: counted, seconds, rate: counted / seconds, cpu_seconds: (cpu.user + cpu.system) / 1e6 });
}

async function latency(schedule: Schedule): Promise<void> {
  const samples = new Float64Array(4_000_000);
  let n = 0;
  let startedAt = 0n;
  let ranAt = 0n;
  const stamp = (x: number): number => {
    ranAt = process.hrtime.bigint();
    return x;
  };
  const warmEnd = Date.now() + warmupMs;
  const end = warmEnd + measureMs;
  for (let i = 0; ; i++) {
    startedAt = process.hrtime.bigint();
    await schedule(stamp, i);
    const now = Date.now();
    if (now >= end || n === samples.length) break;
    if (now >= warmEnd) samples[n++] = Number(ranAt - startedAt) / 1e3;
  }
  const sorted = samples.subarray(0, n).sort();
  printResult({ samples: n, p50_us: sorted[Math.floor(n * 0.5)] ?? NaN, p99_us: sorted[Math.floor(n * 0.99)] ?? NaN });
}

async function main(): Promise<void> {
  let poller: Poller | undefined;
  let schedule: Schedule;
  let polling: Promise<Error> | undefined;
  if (impl === 'trigger') {
    const p = openPoller();
    poller = p;
    polling = p.polling();
    const high = Priority.High; // read once: a CommonJS re-export is a getter
    schedule = (fn, param) => p.trigger(high, fn, param);
  } else if (impl === 'setImmediate') {
    schedule = viaImmediate;
  } else {
    throw new Error(`unknown implementation ${impl}`);
  }
  if (mode === 'throughput') await throughput(schedule);
  else if (mode === 'latency') await latency(schedule);
  else throw new Error(`unknown mode ${mode}`);
  if (poller !== undefined) {
    void poller.trigger(Priority.High, () => ErrEngineShutdown);
    await polling;
    poller.close();
  }
}

void main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
