// Dispatch: events per second delivered to JavaScript from N always-ready,
// level-triggered pipe read ends (one byte waits in each and is never read), so
// every kernel wait reports every fd again. bench/dispatch.c is the same loop in C.
//
//   node dist/bench/dispatch.js <impl> <fds> <measure_ms> <warmup_ms>
// impl: polling | attachments | iterate | iterate-batch | epoll-package
// prints one JSON line: {"events":…,"seconds":…,"rate":…,"cpu_seconds":…} or {"skipped":"why"}
import { createRequire } from 'node:module';
import { ErrEngineShutdown, Priority, close, openPoller, pipe, write, type Poller } from '../src/index.js';
import { intArg, printResult, skip } from './util.js';

const impl = process.argv[2] ?? 'polling';
const nfds = intArg(3, 100);
const measureMs = intArg(4, 1000);
const warmupMs = intArg(5, 200);

/** Counts events and marks the measured window: [warm-up end, warm-up end + measureMs]. */
class Meter {
  count = 0;
  #fromCount = 0;
  #from = 0n;
  #cpuFrom = process.cpuUsage();
  done = false;
  constructor(onDone: () => void) {
    setTimeout(() => {
      this.#fromCount = this.count;
      this.#from = process.hrtime.bigint();
      this.#cpuFrom = process.cpuUsage();
      setTimeout(() => {
        const seconds = Number(process.hrtime.bigint() - this.#from) / 1e9;
        const cpu = process.cpuUsage(this.#cpuFrom);
        const events = this.count - this.#fromCount;
        this.done = true;
        printResult({ events, seconds, rate: events / seconds, cpu_seconds: (cpu.user + cpu.system) / 1e6 });
        onDone();
      }, measureMs);
    }, warmupMs);
  }
}

function readyPipes(n: number): number[][] {
  const pairs: number[][] = [];
  const one = Buffer.from('x');
  for (let i = 0; i < n; i++) {
    const [r, w] = pipe();
    write(w, one);
    pairs.push([r, w]);
  }
  return pairs;
}

function closeAll(pairs: number[][]): void {
  for (const [r, w] of pairs) {
    close(r);
    close(w);
  }
}

async function withPoller(run: (poller: Poller, pairs: number[][], meter: Meter) => Promise<void>, perFdCallback: boolean): Promise<void> {
  const poller = openPoller();
  const pairs = readyPipes(nfds);
  let meter!: Meter;
  const onEvent = (): void => {
    meter.count++;
  };
  for (const [r] of pairs) poller.addRead(perFdCallback ? { fd: r, callback: onEvent } : { fd: r });
  meter = new Meter(() => {
    if (!poller.closed) void poller.trigger(Priority.High, () => ErrEngineShutdown);
  });
  await run(poller, pairs, meter);
  poller.close();
  closeAll(pairs);
}

async function main(): Promise<void> {
  switch (impl) {
    case 'polling':
      // One callback for every event (gnet's Polling(callback)).
      return withPoller(async (poller, _pairs, meter) => {
        await poller.polling(() => {
          meter.count++;
        });
      }, false);
    case 'attachments':
      // Each fd's own attachment callback (polling() without a callback).
      return withPoller(async (poller) => {
        await poller.polling();
      }, true);
    case 'iterate':
      return withPoller(async (poller, _pairs, meter) => {
        for await (const ev of poller) {
          if (ev.fd >= 0) meter.count++;
          if (meter.done) break;
        }
      }, false);
    case 'iterate-batch':
      return withPoller(async (poller, _pairs, meter) => {
        for await (const batch of poller.events({ batch: true })) {
          meter.count += batch.length;
          if (meter.done) break;
        }
      }, false);
    case 'epoll-package':
      return epollPackage();
    default:
      throw new Error(`unknown implementation ${impl}`);
  }
}

interface EpollPackage {
  new (callback: (err: Error | null, fd: number, events: number) => void): { add(fd: number, events: number): unknown; close(): unknown };
  readonly EPOLLIN: number;
}

/** The existing Node binding: a thread blocks in epoll_wait and hands over one event at a time. */
async function epollPackage(): Promise<void> {
  let Epoll: EpollPackage;
  try {
    Epoll = (createRequire(__filename)('epoll') as { Epoll: EpollPackage }).Epoll;
  } catch (e) {
    return skip(`the epoll package did not load: ${(e as Error).message.split('\n')[0]}`);
  }
  const pairs = readyPipes(nfds);
  let meter!: Meter;
  const epoll = new Epoll((err) => {
    if (err) throw err;
    meter.count++;
  });
  await new Promise<void>((resolve) => {
    meter = new Meter(() => {
      epoll.close();
      resolve();
    });
    for (const [r] of pairs) epoll.add(r, Epoll.EPOLLIN);
  });
  closeAll(pairs);
}

void main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
