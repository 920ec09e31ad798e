// gnet's engine model with a main reactor: the main thread listens and accepts, N
// worker threads each own a poller (a sub-reactor), and every accepted connection is
// handed to one of them with remote.trigger(Priority.High, 'register', fd), as
// gnet's acceptor does with el.poller.Trigger(queue.HighPriority, el.register, c).
// The worker is chosen by one of gnet's load balancers. Ctrl-C triggers the stop
// task on every worker (gnet's engine.stop) and exits once they have stopped.
//
//   npm run example:reactor-echo                        # port 7000, one worker per CPU
//   npm run example:reactor-http -- 8080 4 --lb least-connections
//   WORKERS=2 PORT=0 node dist/examples/reactor.js http --lb source-addr-hash
//
// Unlike examples/multicore.ts (a SO_REUSEPORT listener per worker), this works the same
// everywhere: macOS and most BSDs do not balance SO_REUSEPORT, and there the acceptor is
// the only multicore design.
import * as os from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import {
  ErrEngineShutdown,
  ErrPollerClosed,
  Priority,
  connectPoller,
  openPoller,
  socket,
  type PollerHandle,
  type RemotePoller,
} from '../src/index.js';
import { EchoServer } from './echo.js';
import { HttpServer } from './http.js';
import { serverOptionsFromCli, type ServerOptions, type TcpServer } from './tcp-server.js';

export type Kind = 'echo' | 'http';
/** gnet's LoadBalancing: RoundRobin, LeastConnections, SourceAddrHash. */
export type Balancer = 'round-robin' | 'least-connections' | 'source-addr-hash';
const BALANCERS: readonly Balancer[] = ['round-robin', 'least-connections', 'source-addr-hash'];

/** The tasks a sub-reactor offers to the acceptor: gnet's el.register, and engine.stop's task. */
function subReactorTasks(server: TcpServer) {
  return {
    register: (fd: number): void => void server.adopt(fd),
    stop: () => ErrEngineShutdown,
  };
}
type Tasks = ReturnType<typeof subReactorTasks>;

interface WorkerInput {
  /** Marks this file's own workers (a program's workers may load this file too). */
  reactorWorker: true;
  kind: Kind;
  index: number;
  /**
   * Connections per worker, for least-connections (gnet's el.countConn()): the acceptor
   * adds one when it hands a connection over, the worker takes it off when it closes,
   * so a burst of accepts sees the connections still on their way.
   */
  counts: Int32Array;
}

/** Messages a worker posts to the main thread. */
type WorkerMessage =
  | { type: 'ready'; handle: PollerHandle<Tasks> }
  | { type: 'stopped'; accepted: number; requests: number };

// ---- a sub-reactor (worker thread) ----

function runWorker(input: WorkerInput): void {
  const port = parentPort!;
  // The protocol servers of the single-threaded examples, without a listener of their own.
  const server: TcpServer = input.kind === 'echo' ? new EchoServer({ listen: false }) : new HttpServer({ listen: false });
  let open = 0;
  server.onConnectionsChange = (s) => {
    if (s.connections < open) Atomics.sub(input.counts, input.index, open - s.connections);
    open = s.connections;
  };
  const handle = server.poller.handle(subReactorTasks(server));
  port.postMessage({ type: 'ready', handle } satisfies WorkerMessage);
  server.done.then(
    () => {
      // The stop task ended polling: close the connections and the poller, report, exit.
      const requests = (server as { requests?: number }).requests ?? 0;
      const accepted = server.accepted;
      server.close();
      port.postMessage({ type: 'stopped', accepted, requests } satisfies WorkerMessage);
      port.close();
    },
    (err: unknown) => {
      server.close();
      throw err; // ends the worker with an 'error' event in the main thread
    },
  );
}

// ---- the main reactor (main thread) ----

/** CRC-32 (IEEE), as gnet's source-address hash uses (hash/crc32.ChecksumIEEE). */
const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(text: string): number {
  let c = 0xffffffff;
  for (const byte of Buffer.from(text)) c = crcTable[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** gnet's load balancers: which sub-reactor gets the connection from `peer`. */
function balancer(kind: Balancer, counts: Int32Array, n: number): (peer: socket.SocketAddress) => number {
  switch (kind) {
    case 'round-robin': {
      let next = 0;
      return () => next++ % n;
    }
    case 'least-connections':
      return () => {
        let best = 0;
        for (let i = 1; i < n; i++) if (Atomics.load(counts, i) < Atomics.load(counts, best)) best = i;
        return best;
      };
    case 'source-addr-hash':
      // netAddr.String(): "host:port", the host in brackets for IPv6.
      return (peer) => crc32(peer.family === 'IPv6' ? `[${peer.address}]:${peer.port}` : `${peer.address}:${peer.port}`) % n;
  }
}

interface SubReactor {
  worker: Worker;
  remote: RemotePoller<Tasks>;
  stopped: Promise<WorkerMessage | undefined>;
}

function spawn(kind: Kind, index: number, counts: Int32Array): Promise<SubReactor> {
  const worker = new Worker(__filename, { workerData: { reactorWorker: true, kind, index, counts } satisfies WorkerInput });
  let last: WorkerMessage | undefined;
  const stopped = new Promise<WorkerMessage | undefined>((resolve) => {
    worker.on('error', (err) => console.error(`worker ${index} failed:`, err));
    worker.on('exit', () => resolve(last));
  });
  return new Promise((resolve, reject) => {
    worker.once('error', reject);
    worker.on('message', (m: WorkerMessage) => {
      last = m;
      if (m.type === 'ready') resolve({ worker, remote: connectPoller(m.handle), stopped });
    });
  });
}

/** What a worker reported when it stopped (undefined: it failed). */
export type WorkerResult = { accepted: number; requests: number } | undefined;

/** A running reactor: the acceptor on this thread, `workers` sub-reactors. */
export interface Reactor {
  readonly port: number;
  readonly address: string;
  /** Connections the acceptor handed over. */
  readonly handedOff: number;
  /** Resolves once every worker has stopped, with what each reported. */
  readonly done: Promise<WorkerResult[]>;
  /** gnet's engine.stop: stops accepting and triggers the stop task on every worker. */
  close(): void;
}

/** Starts the acceptor and `count` worker pollers serving `kind`; resolves once they all run. */
export async function startReactor(kind: Kind, options: ServerOptions, count: number, lb: Balancer = 'round-robin'): Promise<Reactor> {
  const counts = new Int32Array(new SharedArrayBuffer(4 * count));
  const reactors = await Promise.all(Array.from({ length: count }, (_, i) => spawn(kind, i, counts)));
  const next = balancer(lb, counts, count);
  const host = options.host ?? '127.0.0.1';
  const lfd = socket.listenTCP(host, options.port ?? 0, { backlog: options.backlog ?? 1024 });
  const port = socket.localAddress(lfd).port;
  const acceptor = openPoller();
  let handedOff = 0;
  // gnet's accept0: edge-triggered, so accept until EAGAIN; each connection to a sub-reactor.
  acceptor.addRead(
    {
      fd: lfd,
      callback: () => {
        for (;;) {
          let c: socket.Accepted | null;
          try {
            c = socket.accept(lfd);
          } catch (e) {
            const code = (e as { code?: string }).code;
            if (code === 'EINTR' || code === 'ECONNABORTED' || code === 'ECONNRESET') continue;
            if (code === 'EMFILE' || code === 'ENFILE') return; // the next connection's edge retries
            throw e;
          }
          if (c === null) return; // EAGAIN: the queue is drained
          const fd = c.fd;
          const i = next(c.address);
          handedOff++;
          Atomics.add(counts, i, 1);
          reactors[i]!.remote.trigger(Priority.High, 'register', fd).catch((err: unknown) => {
            // The sub-reactor is gone: the connection is ours to close. (If adding it to
            // the poller failed, adopt() closed it already.)
            if (err === ErrPollerClosed) socket.close(fd);
            else console.error(`register fd ${fd}:`, err);
            Atomics.sub(counts, i, 1);
          });
        }
      },
    },
    true,
  );
  const accepting = acceptor.polling();
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    acceptor.close();
    socket.close(lfd);
    for (const r of reactors) void r.remote.trigger(Priority.High, 'stop').catch(() => undefined);
  };
  const done = (async () => {
    await accepting.catch((err: unknown) => {
      close();
      throw err;
    });
    const results = await Promise.all(reactors.map((r) => r.stopped));
    for (const r of reactors) r.remote.close();
    return results.map((m) => (m?.type === 'stopped' ? { accepted: m.accepted, requests: m.requests } : undefined));
  })();
  return {
    port,
    address: `${host.includes(':') ? `[${host}]` : host}:${port}`,
    get handedOff() {
      return handedOff;
    },
    done,
    close,
  };
}

function usage(message: string): never {
  console.error(`${message}\nusage: reactor.js echo|http [port] [workers] [--lb ${BALANCERS.join('|')}]`);
  process.exit(2);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let lb: Balancer = 'round-robin';
  const at = args.indexOf('--lb');
  if (at >= 0) {
    const value = args[at + 1] as Balancer;
    if (!BALANCERS.includes(value)) usage(`unknown load balancer ${JSON.stringify(value)}`);
    lb = value;
    args.splice(at, 2);
  }
  const kind = args[0];
  if (kind !== 'echo' && kind !== 'http') usage('which server: echo or http?');
  // serverOptionsFromCli reads the port from argv[2].
  process.argv = [process.argv[0]!, process.argv[1]!, ...args.slice(1)];
  const options = serverOptionsFromCli(kind === 'echo' ? 7000 : 8080);
  const count = Number(args[2] ?? process.env.WORKERS ?? os.availableParallelism());
  if (!Number.isInteger(count) || count < 1) usage(`bad worker count ${args[2] ?? process.env.WORKERS}`);

  const reactor = await startReactor(kind, options, count, lb);
  console.log(`reactor ${kind} server listening on ${reactor.address} (${count} workers, ${lb})`);
  process.once('SIGINT', reactor.close);
  process.once('SIGTERM', reactor.close);
  const results = await reactor.done;
  process.off('SIGINT', reactor.close);
  process.off('SIGTERM', reactor.close);
  let served = 0;
  results.forEach((r, i) => {
    if (r === undefined) {
      process.exitCode = 1;
      return;
    }
    served += r.accepted;
    console.log(`worker ${i}: ${r.accepted} connections${kind === 'http' ? `, ${r.requests} requests` : ''}`);
  });
  console.log(`reactor stopped after ${reactor.handedOff} connections (${served} served)`);
}

if (isMainThread) {
  if (require.main === module) {
    main().catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
  }
} else if ((workerData as { reactorWorker?: boolean } | null)?.reactorWorker === true) {
  runWorker(workerData as WorkerInput);
}
