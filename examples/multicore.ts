// gnet's multicore model: one poller per thread, each thread with its own
// listening socket on the same port (SO_REUSEPORT), the kernel spreading new
// connections among them. Nothing is shared between the threads, so nothing is
// locked; each worker runs the same echo or HTTP server as the single-threaded
// examples.
//
//   npm run example:multicore-echo            # port 7000, one worker per CPU
//   npm run example:multicore-http -- 8080 4  # port 8080, 4 workers
//   WORKERS=2 PORT=0 node dist/examples/multicore.js http
//
// SO_REUSEPORT balancing like this is Linux's (and FreeBSD's SO_REUSEPORT_LB);
// macOS accepts the option but hands every connection to one socket.
import * as os from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { startEchoServer } from './echo.js';
import { startHttpServer } from './http.js';
import { serverOptionsFromCli, type ServerOptions, type TcpServer } from './tcp-server.js';

export type Kind = 'echo' | 'http';

interface WorkerInput {
  /** Marks this file's own workers (a program's workers may load this file too). */
  multicoreWorker: true;
  kind: Kind;
  index: number;
  options: ServerOptions;
}

/** Messages a worker posts to the main thread. */
type WorkerMessage = { type: 'listening'; port: number } | { type: 'stopped'; accepted: number; requests: number };

function startServer(kind: Kind, options: ServerOptions): TcpServer {
  return kind === 'echo' ? startEchoServer(options) : startHttpServer(options);
}

function runWorker(input: WorkerInput): void {
  const port = parentPort!;
  const server = startServer(input.kind, { ...input.options, reusePort: true });
  port.postMessage({ type: 'listening', port: server.port } satisfies WorkerMessage);
  port.on('message', (msg: unknown) => {
    if (msg === 'stop') server.close();
  });
  server.done.then(
    () => {
      const requests = (server as { requests?: number }).requests ?? 0;
      port.postMessage({ type: 'stopped', accepted: server.accepted, requests } satisfies WorkerMessage);
      port.close();
    },
    (err: unknown) => {
      server.close();
      throw err; // ends the worker with an 'error' event in the main thread
    },
  );
}

/** A worker running one server; resolves with the port once it listens. */
function spawn(kind: Kind, index: number, options: ServerOptions): { worker: Worker; listening: Promise<number>; stopped: Promise<WorkerMessage | undefined> } {
  const worker = new Worker(__filename, { workerData: { multicoreWorker: true, kind, index, options } satisfies WorkerInput });
  const listening = new Promise<number>((resolve, reject) => {
    worker.once('error', reject);
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'listening') resolve(m.port);
    });
  });
  const stopped = new Promise<WorkerMessage | undefined>((resolve) => {
    let last: WorkerMessage | undefined;
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'stopped') last = m;
    });
    worker.on('error', (err) => console.error(`worker ${index} failed:`, err));
    worker.on('exit', () => resolve(last));
  });
  return { worker, listening, stopped };
}

/** A running multicore server: `count` workers, each with its own listener on one port. */
export interface Multicore {
  readonly port: number;
  readonly address: string;
  /** Resolves once every worker has stopped, with what each reported (undefined: it failed). */
  readonly done: Promise<({ accepted: number; requests: number } | undefined)[]>;
  close(): void;
}

/** Starts `count` workers serving `kind` on one port; resolves once they all listen. */
export async function startMulticore(kind: Kind, options: ServerOptions, count: number): Promise<Multicore> {
  // The first worker learns the port (when 0 was asked for); the others join it.
  const first = spawn(kind, 0, options);
  const port = await first.listening;
  const rest = Array.from({ length: count - 1 }, (_, i) => spawn(kind, i + 1, { ...options, port }));
  await Promise.all(rest.map((w) => w.listening));
  const workers = [first, ...rest];
  const host = options.host ?? '127.0.0.1';
  return {
    port,
    address: `${host.includes(':') ? `[${host}]` : host}:${port}`,
    done: Promise.all(workers.map((w) => w.stopped)).then((results) =>
      results.map((r) => (r?.type === 'stopped' ? { accepted: r.accepted, requests: r.requests } : undefined)),
    ),
    close: () => {
      for (const w of workers) w.worker.postMessage('stop');
    },
  };
}

async function main(): Promise<void> {
  const kind = process.argv[2];
  if (kind !== 'echo' && kind !== 'http') {
    console.error('usage: multicore.js echo|http [port] [workers]');
    process.exit(2);
  }
  // Shift the kind off so that serverOptionsFromCli reads the port where it expects it.
  process.argv.splice(2, 1);
  const options = serverOptionsFromCli(kind === 'echo' ? 7000 : 8080);
  const count = Number(process.argv[3] ?? process.env.WORKERS ?? os.availableParallelism());
  if (!Number.isInteger(count) || count < 1) {
    console.error(`bad worker count ${process.argv[3] ?? process.env.WORKERS}`);
    process.exit(2);
  }
  const server = await startMulticore(kind, options, count);
  console.log(`multicore ${kind} server listening on ${server.address} (${count} workers)`);
  process.once('SIGINT', server.close);
  process.once('SIGTERM', server.close);
  const results = await server.done;
  process.off('SIGINT', server.close);
  process.off('SIGTERM', server.close);
  results.forEach((r, i) => {
    if (r !== undefined) console.log(`worker ${i}: ${r.accepted} connections${kind === 'http' ? `, ${r.requests} requests` : ''}`);
    else process.exitCode = 1;
  });
}

if (isMainThread) {
  if (require.main === module) {
    main().catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
  }
} else if ((workerData as { multicoreWorker?: boolean } | null)?.multicoreWorker === true) {
  runWorker(workerData as WorkerInput);
}
