// A counter server in Redis's inline protocol (`INCR key`, `GET key`, `PING`, `QUIT`, one
// command a line) on N worker threads, with the counts right.
//
// Both multicore designs (a listener per worker with SO_REUSEPORT, examples/multicore.ts,
// or an acceptor handing connections to worker loops, examples/reactor.ts) give each
// thread its own memory, exactly as node:cluster gives each process its own: a `Map` of
// counters per worker answers `INCR c` from four connections as 1 1 2 2. Here each key is
// owned by one thread (a hash of the key names it, the same on every thread), only the
// owner touches its count, and a thread that gets a command for a key it does not own
// forwards it to the owner's poller with a remote trigger and answers with the result.
// The owner runs its tasks one at a time on its own loop, so no lock is needed.
//
// The main thread accepts and hands connections to the workers round-robin, as
// examples/reactor.ts does.
//
//   npm run example:sharded-counter                 # port 6380, min(4, CPUs) workers
//   WORKERS=4 PORT=0 node dist/examples/sharded-counter.js
//   printf 'INCR c\r\nINCR c\r\nGET c\r\n' | nc -N 127.0.0.1 6380
//
// Inline commands only: redis-cli speaks RESP arrays, which this example does not parse.
import * as os from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { ErrEngineShutdown, ErrPollerClosed, Priority, connectPoller, openPoller, socket, type PollerHandle, type RemotePoller } from '../src/index.js';
import { TcpServer, serverOptionsFromCli, type Connection, type ServerOptions } from './tcp-server.js';

// ---- the sharded design (docs/guide.md shows this part) ----

/** The tasks each worker's poller offers to the other workers and to the acceptor. */
export type ShardTasks = {
  /** The key's owner increments it and returns the new count. */
  incr: (key: string) => number;
  /** The key's owner returns its count (0 when never incremented). */
  get: (key: string) => number;
  /** Every worker's handle, in worker order: sent once all workers run. */
  peers: (handles: PollerHandle<ShardTasks>[]) => void;
  /** Serves a connection the acceptor accepted. */
  register: (fd: number) => void;
  stop: () => Error;
};

/** Which worker owns `key`: the same answer on every thread (FNV-1a of its UTF-16 units). */
export function ownerOf(key: string, workers: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return (h >>> 0) % workers;
}

/** One worker's shard: the counts of the keys it owns, and a way to every other worker. */
export class Shard {
  /** Only the keys this worker owns; only this thread reads or writes them. */
  readonly #counts = new Map<string, number>();
  /** Every worker's poller, by index; null for this worker's own. */
  #peers: (RemotePoller<ShardTasks> | null)[] = [];
  /** Commands this worker sent to another worker's poller. */
  forwarded = 0;

  constructor(readonly index: number) {}

  connect(handles: PollerHandle<ShardTasks>[]): void {
    this.close();
    this.#peers = handles.map((h, i) => (i === this.index ? null : connectPoller(h)));
  }

  /** INCR on the owner's thread: runs as a task there, one at a time. */
  incrOwned(key: string): number {
    const n = (this.#counts.get(key) ?? 0) + 1;
    this.#counts.set(key, n);
    return n;
  }

  getOwned(key: string): number {
    return this.#counts.get(key) ?? 0;
  }

  /** INCR from any worker: done here when this worker owns the key, else by its owner. */
  incr(key: string): number | Promise<number> {
    const owner = this.#peers[ownerOf(key, this.#peers.length)];
    if (owner === undefined) throw new Error('not connected to the other workers yet');
    if (owner === null) return this.incrOwned(key);
    this.forwarded++;
    return owner.trigger(Priority.High, 'incr', key);
  }

  get(key: string): number | Promise<number> {
    const owner = this.#peers[ownerOf(key, this.#peers.length)];
    if (owner === undefined) throw new Error('not connected to the other workers yet');
    if (owner === null) return this.getOwned(key);
    this.forwarded++;
    return owner.trigger(Priority.High, 'get', key);
  }

  close(): void {
    for (const peer of this.#peers) peer?.close();
  }
}

// ---- the protocol: one worker's connections ----

/** Longest command line accepted. */
const MAX_LINE = 4096;
/**
 * Most replies one connection may have waiting on other workers. A client that pipelines
 * more without reading is disconnected (as Redis's client-output-buffer-limit does), so
 * that it cannot make the server hold an unbounded number of forwarded commands: a
 * TcpServer stops reading a client only once its unsent bytes fill the socket.
 */
const MAX_WAITING_REPLIES = 4096;

/** Redis's inline protocol over TcpServer: replies leave in command order, per connection. */
class CounterServer extends TcpServer {
  commands = 0;
  readonly #shard: Shard;
  /** A connection's last reply still waiting for a forwarded command (none: nothing waits). */
  readonly #tails = new WeakMap<Connection, Promise<void>>();
  /** Replies of a connection still waiting on another worker. */
  readonly #waiting = new WeakMap<Connection, number>();
  /** Connections that sent QUIT (or a line too long): answered, then ended. */
  readonly #quitting = new WeakSet<Connection>();

  constructor(shard: Shard) {
    super({ listen: false });
    this.#shard = shard;
  }

  protected onData(conn: Connection, buf: Buffer, length: number): void {
    const chunk = buf.subarray(0, length);
    let data = conn.leftover === null ? chunk : Buffer.concat([conn.leftover, chunk]);
    conn.leftover = null;
    for (let nl = data.indexOf(10); nl >= 0 && !this.#quitting.has(conn); nl = data.indexOf(10)) {
      const line = data.toString('latin1', 0, nl).replace(/\r$/, '');
      data = data.subarray(nl + 1);
      this.#command(conn, line);
    }
    if (this.#quitting.has(conn)) return; // QUIT: what follows it is not read
    if (data.length > MAX_LINE) {
      this.#quit(conn, '-ERR line too long\r\n');
    } else if (data.length > 0 && !this.#quitting.has(conn)) {
      conn.leftover = Buffer.from(data); // the read buffer is reused: keep a copy
    }
  }

  /** The client sent all it will (`printf … | nc` half-closes): answer what it asked first. */
  protected override onEnd(conn: Connection): void {
    if (!this.#tails.has(conn)) return this.closeConnection(conn);
    // Replies still on their way from other workers. Stop watching the fd (it would report
    // the end again and again) and close once they are written.
    this.#quitting.add(conn);
    this.poller.delete(conn.fd);
    this.#whenReplied(conn, () => this.closeConnection(conn));
  }

  #command(conn: Connection, line: string): void {
    const [name = '', key, ...rest] = line.trim().split(/\s+/);
    if (name === '') return;
    this.commands++;
    const command = name.toUpperCase();
    if ((command === 'INCR' || command === 'GET') && key !== undefined && rest.length === 0) {
      if ((this.#waiting.get(conn) ?? 0) >= MAX_WAITING_REPLIES) return this.#quit(conn, '-ERR too many commands waiting for replies\r\n');
      const n = command === 'INCR' ? this.#shard.incr(key) : this.#shard.get(key);
      if (typeof n === 'number') return this.#reply(conn, `:${n}\r\n`);
      this.#waiting.set(conn, (this.#waiting.get(conn) ?? 0) + 1);
      const settled = n.then(
        (v) => `:${v}\r\n`,
        (err: unknown) => errorReply(err),
      );
      this.#reply(
        conn,
        settled.finally(() => this.#waiting.set(conn, this.#waiting.get(conn)! - 1)),
      );
    } else if (command === 'PING' && key === undefined) {
      this.#reply(conn, '+PONG\r\n');
    } else if (command === 'QUIT') {
      this.#quit(conn, '+OK\r\n');
    } else {
      this.#reply(conn, `-ERR unknown command or wrong arguments: '${line.slice(0, 64)}'\r\n`);
    }
  }

  /** Answers `text` after every earlier reply, then ends the connection; reads no more commands. */
  #quit(conn: Connection, text: string): void {
    this.#quitting.add(conn);
    this.#reply(conn, text);
    this.#whenReplied(conn, () => this.end(conn));
  }

  /** Sends `text` after every earlier reply of the connection: a forwarded command may
   * answer after a later local one, and a pipelining client reads replies in order. */
  #reply(conn: Connection, text: string | Promise<string>): void {
    const tail = this.#tails.get(conn);
    if (tail === undefined && typeof text === 'string') {
      this.send(conn, Buffer.from(text, 'latin1'));
      return;
    }
    this.#whenReplied(conn, async () => {
      this.send(conn, Buffer.from(await text, 'latin1'));
    });
  }

  #whenReplied(conn: Connection, then: () => void | Promise<void>): void {
    const next: Promise<void> = (this.#tails.get(conn) ?? Promise.resolve())
      .then(then)
      // A write that failed (the peer reset): the connection is done, as a failed read ends it.
      .catch(() => this.closeConnection(conn))
      .finally(() => {
        if (this.#tails.get(conn) === next) this.#tails.delete(conn);
      });
    this.#tails.set(conn, next);
  }
}

function errorReply(err: unknown): string {
  // ErrPollerClosed: the owner stopped (the server is shutting down).
  return err === ErrPollerClosed ? '-ERR shutting down\r\n' : `-ERR ${String((err as Error)?.message ?? err)}\r\n`;
}

// ---- a worker ----

interface WorkerInput {
  /** Marks this file's own workers (a program's workers may load this file too). */
  shardedCounterWorker: true;
  index: number;
}

type WorkerMessage =
  | { type: 'ready'; handle: PollerHandle<ShardTasks> }
  | { type: 'stopped'; accepted: number; commands: number; forwarded: number };

function runWorker(input: WorkerInput): void {
  const port = parentPort!;
  const shard = new Shard(input.index);
  const server = new CounterServer(shard);
  const tasks: ShardTasks = {
    incr: (key) => shard.incrOwned(key),
    get: (key) => shard.getOwned(key),
    peers: (handles) => shard.connect(handles),
    register: (fd) => void server.adopt(fd),
    stop: () => ErrEngineShutdown,
  };
  port.postMessage({ type: 'ready', handle: server.poller.handle(tasks) } satisfies WorkerMessage);
  server.done.then(
    () => {
      const { accepted, commands } = server;
      server.close();
      shard.close();
      port.postMessage({ type: 'stopped', accepted, commands, forwarded: shard.forwarded } satisfies WorkerMessage);
      port.close();
    },
    (err: unknown) => {
      server.close();
      shard.close();
      throw err;
    },
  );
}

// ---- the main thread: start the workers, introduce them, accept ----

/** What a worker reported when it stopped (undefined: it failed). */
export type WorkerResult = { accepted: number; commands: number; forwarded: number } | undefined;

export interface ShardedCounter {
  readonly port: number;
  readonly address: string;
  readonly done: Promise<WorkerResult[]>;
  close(): void;
}

function spawnWorker(index: number): Promise<{ remote: RemotePoller<ShardTasks>; handle: PollerHandle<ShardTasks>; stopped: Promise<WorkerResult> }> {
  const worker = new Worker(__filename, { workerData: { shardedCounterWorker: true, index } satisfies WorkerInput });
  let result: WorkerResult;
  const stopped = new Promise<WorkerResult>((resolve) => {
    worker.on('error', (err) => console.error(`worker ${index} failed:`, err));
    worker.on('exit', () => resolve(result));
  });
  return new Promise((resolve, reject) => {
    worker.once('error', reject);
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'ready') resolve({ remote: connectPoller(m.handle), handle: m.handle, stopped });
      else result = { accepted: m.accepted, commands: m.commands, forwarded: m.forwarded };
    });
  });
}

export async function startShardedCounter(options: ServerOptions, count: number): Promise<ShardedCounter> {
  const workers = await Promise.all(Array.from({ length: count }, (_, i) => spawnWorker(i)));
  // Every worker knows every other before the first connection arrives.
  const handles = workers.map((w) => w.handle);
  await Promise.all(workers.map((w) => w.remote.trigger(Priority.High, 'peers', handles)));
  const host = options.host ?? '127.0.0.1';
  const lfd = socket.listenTCP(host, options.port ?? 0, { backlog: options.backlog ?? 1024 });
  const port = socket.localAddress(lfd).port;
  const acceptor = openPoller();
  let next = 0;
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
            if (code === 'EMFILE' || code === 'ENFILE') return;
            throw e;
          }
          if (c === null) return;
          const fd = c.fd;
          workers[next++ % count]!.remote.trigger(Priority.High, 'register', fd).catch(() => socket.close(fd));
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
    for (const w of workers) void w.remote.trigger(Priority.High, 'stop').catch(() => undefined);
  };
  const done = (async () => {
    await accepting.catch((err: unknown) => {
      close();
      throw err;
    });
    const results = await Promise.all(workers.map((w) => w.stopped));
    for (const w of workers) w.remote.close();
    return results;
  })();
  return { port, address: `${host.includes(':') ? `[${host}]` : host}:${port}`, done, close };
}

async function main(): Promise<void> {
  const options = serverOptionsFromCli(6380);
  const count = Number(process.env.WORKERS ?? Math.min(4, os.availableParallelism()));
  if (!Number.isInteger(count) || count < 1) {
    console.error(`bad worker count ${process.env.WORKERS}`);
    process.exit(2);
  }
  const server = await startShardedCounter(options, count);
  console.log(`sharded counter listening on ${server.address} (${count} workers)`);
  process.once('SIGINT', server.close);
  process.once('SIGTERM', server.close);
  const results = await server.done;
  process.off('SIGINT', server.close);
  process.off('SIGTERM', server.close);
  results.forEach((r, i) => {
    if (r === undefined) process.exitCode = 1;
    else console.log(`worker ${i}: ${r.accepted} connections, ${r.commands} commands, ${r.forwarded} forwarded to their key's owner`);
  });
  console.log('sharded counter stopped');
}

if (isMainThread) {
  if (require.main === module) {
    main().catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
  }
} else if ((workerData as { shardedCounterWorker?: boolean } | null)?.shardedCounterWorker === true) {
  runWorker(workerData as WorkerInput);
}
