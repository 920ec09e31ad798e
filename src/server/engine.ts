// serve(): a listener and one event loop on the calling thread (gnet's `multicore: false`), and stop().
import { promises as dns } from 'node:dns';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Priority, connectPoller, socket, type PollerHandle, type PollerTasks, type RemotePoller, type SocketAddress } from '../index.js';
import { Acceptor } from './acceptor.js';
import { Balancer } from './balancer.js';
import { publish, type ConnInfo, type EngineStats } from './diagnostics.js';
import { receiveDatagrams, type DatagramHost, type DatagramSocket } from './datagram.js';
import { codedError, EventLoop, type LoopHost } from './eventloop.js';
import { readHandler, type Engine, type EventHandler, type HandlerMethods } from './handler.js';
import { Peers } from './peers.js';
import { invalidType, invalidValue, parseAddress, resolveOptions, type LoopWorkerData, type ParsedAddress, type ResolvedOptions, type ServerOptions } from './options.js';

export type { Engine };

/** The fd-owner table's length where the system's ceiling on descriptors is unknown (not Linux). */
const DEFAULT_FD_OWNER_SLOTS = 1 << 20;
/** At most this long (2 bytes a slot, in shared memory the kernel commits only where written). */
const MAX_FD_OWNER_SLOTS = 1 << 24;

/**
 * How many fd numbers a multicore engine tracks the owning loop of: on Linux every fd there can
 * be (no descriptor reaches fs.nr_open, which RLIMIT_NOFILE cannot exceed; 1,048,576 by default),
 * elsewhere the first 1,048,576. A dead loop's connections above it are left open.
 */
function fdOwnerSlots(): number {
  if (process.platform === 'linux') {
    try {
      const n = Number(fs.readFileSync('/proc/sys/fs/nr_open', 'utf8').trim());
      if (Number.isInteger(n) && n > 0) return Math.min(n, MAX_FD_OWNER_SLOTS);
    } catch {
      // no /proc: the default
    }
  }
  return DEFAULT_FD_OWNER_SLOTS;
}

/**
 * Whether the kernel spreads connections over SO_REUSEPORT listeners of one address. Linux
 * does; Darwin and the BSDs (with plain SO_REUSEPORT) give them all to one socket, so there a
 * multicore engine keeps its acceptor even with `reusePort` (as gnet does).
 */
const KERNEL_BALANCES_REUSEPORT = process.platform === 'linux';

const enum EngineState {
  Running,
  Stopping,
  Stopped,
}

/** One loop thread of a multicore engine, as the acceptor sees it. */
interface LoopThread {
  worker: Worker;
  remote: RemotePoller | undefined;
  exited: Promise<void>;
}

class ServerEngine implements Engine, LoopHost {
  /** Multicore: the loop threads, their connection counts, and who gets the next connection. */
  #threads: LoopThread[] | undefined;
  #alive: boolean[] = [];
  #counts: Int32Array | undefined;
  #balancer: Balancer | undefined;
  readonly loop: EventLoop;
  #state = EngineState.Running;
  #stopPromise: Promise<void> | undefined;
  #finishStop: (() => void) | undefined;
  #stopTimer: NodeJS.Timeout | undefined;
  /** stop() has closed the listener and asked every connection to close: the last close finishes it. */
  #draining = false;
  /** The Unix socket file is ours to remove (we created it). */
  #ownsPath = false;
  /** serve() failed: no onShutdown. */
  #abandoned = false;
  #listenFd = -1;
  /** udp://: the socket its datagrams' Conns answer on, marked closed when stop() closes it. */
  #udp: DatagramSocket | undefined;
  #acceptor: Acceptor | undefined;
  /**
   * Multicore with `reusePort` (where the kernel balances it): each loop's own listener, by
   * loop index (-1 once closed). Whoever takes an fd out with Atomics.exchange closes it: the
   * loop thread when it stops, this thread when the loop died or serve() failed.
   */
  #loopListeners: Int32Array | undefined;
  #address: SocketAddress | string = '';
  readonly #peers: Peers;

  constructor(
    readonly handler: HandlerMethods,
    readonly options: ResolvedOptions,
    readonly where: ParsedAddress,
  ) {
    this.loop = new EventLoop(handler, options, this);
    this.#peers = new Peers(options.multicore ? options.numEventLoop : 1);
    // A multicore server's own engine runs no handler: it offers nothing.
    if (options.multicore) this.#peers.take();
  }

  get loopIndex(): number {
    return this.options.multicore ? -1 : 0;
  }

  get numEventLoop(): number {
    return this.options.multicore ? this.options.numEventLoop : 1;
  }

  offer<T extends PollerTasks>(tasks: T): void {
    this.#peers.offer(tasks);
  }

  peer<T extends PollerTasks>(index: number): RemotePoller<T> {
    return this.#peers.peer(index) as unknown as RemotePoller<T>;
  }

  /** Single-threaded: after onBoot, this loop's poller offers what onBoot offered. */
  introduceSelf(): void {
    const tasks = this.#peers.take();
    if (tasks !== undefined && !this.options.multicore) this.#peers.introduce([this.loop.poller.handle(tasks) as unknown as PollerHandle]);
  }

  /** gnet's other multicore design: each loop accepts on a SO_REUSEPORT listener of its own. */
  get #perLoopListeners(): boolean {
    return this.options.multicore && this.options.reusePort && this.where.network === 'tcp' && KERNEL_BALANCES_REUSEPORT;
  }

  /** Starts the loop threads (multicore); resolves once each imported the handler and booted. */
  async startThreads(handlerUrl: string): Promise<void> {
    const n = this.options.numEventLoop;
    const counts = new Int32Array(new SharedArrayBuffer(4 * n));
    const owners = new Uint16Array(new SharedArrayBuffer(2 * fdOwnerSlots()));
    this.#counts = counts;
    this.#alive = new Array<boolean>(n).fill(false);
    this.#balancer = new Balancer(this.options.lb, counts, this.#alive);
    const file = path.join(__dirname, 'worker.js');
    const threads: LoopThread[] = [];
    const ready: Promise<void>[] = [];
    /** Each loop's handle, when its onBoot offered tasks (engine.offer). */
    const offered: (PollerHandle | null)[] = new Array<PollerHandle | null>(n).fill(null);
    for (let i = 0; i < n; i++) {
      const data: LoopWorkerData = { netpollServerLoop: true, handlerUrl, options: this.options, index: i, counts, owners, listeners: this.#loopListeners, address: this.#address };
      const worker = new Worker(file, { workerData: data });
      const t: LoopThread = { worker, remote: undefined, exited: new Promise((resolve) => worker.once('exit', () => resolve())) };
      threads.push(t);
      void t.exited.then(() => {
        // A loop thread that ended (or was terminated): no more connections for it.
        this.#alive[i] = false;
        Atomics.store(counts, i, 0);
        // Its own listener first (reusePort), or the kernel goes on queueing connections there
        // that nobody accepts; closing it resets those it had queued.
        this.#closeLoopListener(i);
        // Its connections' fds outlive it (they are the process's): close them, so that their
        // peers see the end instead of a connection that hangs.
        for (let fd = 0; fd < owners.length; fd++) {
          if (Atomics.load(owners, fd) !== i + 1) continue;
          Atomics.store(owners, fd, 0);
          try {
            socket.close(fd);
          } catch {
            // already closed
          }
        }
        if (this.#state !== EngineState.Running) this.#threadExited();
        else publish({ type: 'error', source: 'engine', error: codedError(`loop thread ${i} exited`, 'ERR_LOOP_GONE'), conn: undefined });
      });
      ready.push(
        new Promise<void>((resolve, reject) => {
          worker.on('message', (m: { type: string; handle?: unknown; offered?: boolean; error?: string }) => {
            if (m.type === 'ready') {
              t.remote = connectPoller(m.handle as never);
              offered[i] = m.offered === true ? (m.handle as PollerHandle) : null;
              this.#alive[i] = true;
              resolve();
            } else if (m.type === 'failed') reject(new Error(`loop thread ${i} could not start: ${m.error}`));
            else if (m.type === 'stop-request') this.requestShutdown();
            else if (m.type === 'shutdown-error') publish({ type: 'error', source: 'onShutdown', error: new Error(m.error), conn: undefined });
          });
          worker.once('error', reject);
          void t.exited.then(() => reject(new Error(`loop thread ${i} exited before it was ready`)));
        }),
      );
    }
    this.#threads = threads;
    try {
      await Promise.all(ready);
      // Every loop learns the others' offered tasks before the first connection is accepted.
      await Promise.all(threads.map((t) => t.remote!.trigger(Priority.High, 'peers', offered)));
      this.#peers.introduce(offered.map((h) => h ?? undefined));
    } catch (e) {
      await Promise.all(threads.map((t) => t.worker.terminate()));
      throw e;
    }
  }

  /** Closes loop `i`'s own listener, unless its thread closed it already. */
  #closeLoopListener(i: number): void {
    const listeners = this.#loopListeners;
    if (listeners === undefined) return;
    const fd = Atomics.exchange(listeners, i, -1);
    if (fd < 0) return;
    try {
      socket.close(fd);
    } catch {
      // already closed
    }
  }

  #threadExited(): void {
    if (this.#draining && this.#alive.every((a) => !a)) this.#finishStop?.();
  }

  /** Hands an accepted connection to a loop: this thread's, or a loop thread's by the balancer. */
  #handOut(fd: number, address: SocketAddress, isTcp: boolean): void {
    if (this.#threads === undefined) {
      this.loop.open(fd, address, isTcp);
      return;
    }
    const i = this.#balancer!.pick(address);
    const remote = i < 0 ? undefined : this.#threads[i].remote;
    if (remote === undefined) {
      socket.close(fd);
      publish({ type: 'error', source: 'accept', error: codedError('no loop thread is left to take the connection', 'ERR_LOOP_GONE'), conn: undefined });
      return;
    }
    // The fd crosses as a number: the process's descriptors are shared by its threads.
    const balancer = this.#balancer!;
    balancer.handedOff(i);
    remote.trigger(Priority.High, 'adopt', { fd, address, isTcp }).then(
      () => balancer.landed(i),
      () => {
        balancer.landed(i);
        socket.close(fd);
      },
    );
  }

  /** Opens the listener: throws as listenTCP/listenUnix do (EADDRINUSE …). */
  listen(host: string): void {
    const o = this.options;
    if (this.where.network === 'udp') {
      this.#listenFd = socket.bindUDP(host, this.where.port, {
        reuseAddr: o.reuseAddr,
        reusePort: o.reusePort,
        ipv6Only: this.where.family === 6 && host === '::',
      });
      this.#address = socket.localAddress(this.#listenFd);
    } else if (this.where.network === 'unix') {
      this.#listenFd = socket.listenUnix(this.where.path, { backlog: o.backlog });
      this.#ownsPath = true;
      this.#address = this.where.path;
    } else {
      const listenOptions = {
        backlog: o.backlog,
        reuseAddr: o.reuseAddr,
        reusePort: o.reusePort,
        ipv6Only: this.where.family === 6 && (host === '::'),
      };
      const first = socket.listenTCP(host, this.where.port, listenOptions);
      this.#address = socket.localAddress(first);
      if (!this.#perLoopListeners) {
        this.#listenFd = first;
        return;
      }
      // One listener per loop on the same address; port 0 is the port the first one got.
      // A failure (EADDRINUSE: a socket without SO_REUSEPORT, or another user's, took it)
      // closes the ones already open before serve() rejects.
      const fds = [first];
      try {
        while (fds.length < o.numEventLoop) fds.push(socket.listenTCP(host, this.#address.port, listenOptions));
      } catch (e) {
        for (const fd of fds) socket.close(fd);
        throw e;
      }
      this.#loopListeners = new Int32Array(new SharedArrayBuffer(4 * fds.length));
      this.#loopListeners.set(fds);
    }
  }

  /** Starts accepting (after the loop threads are ready). */
  accept(): void {
    this.#watchListener();
  }

  /** serve() failed after the listener opened: stop without onShutdown. */
  abandon(): Promise<void> {
    this.#abandoned = true;
    return this.stop();
  }

  #watchListener(): void {
    if (this.where.network === 'udp') {
      const fd = this.#listenFd;
      const loop = this.loop;
      const udp: DatagramSocket = { fd, open: true };
      this.#udp = udp;
      const host: DatagramHost = {
        socket: udp,
        localAddress: this.#address as SocketAddress,
        readBuffer: loop.readBuffer,
        onTraffic: this.handler.onTraffic,
        stats: loop.stats,
        requestShutdown: () => this.requestShutdown(),
        running: () => this.#state === EngineState.Running,
      };
      this.loop.watch(fd, false, () => receiveDatagrams(host));
      return;
    }
    if (this.#listenFd < 0) return; // reusePort multicore: the loops accept for themselves
    this.#acceptor = new Acceptor(this.loop, this.#listenFd, this.where.network === 'tcp', (fd, address, isTcp) => this.#handOut(fd, address, isTcp), () => this.#state === EngineState.Running);
    this.#acceptor.watch();
  }

  address(): SocketAddress | string {
    return typeof this.#address === 'string' ? this.#address : { ...this.#address };
  }

  countConnections(): number {
    const counts = this.#counts;
    if (counts === undefined) return this.loop.stats.connections;
    let n = 0;
    for (let i = 0; i < counts.length; i++) n += Atomics.load(counts, i);
    return n;
  }

  stats(): EngineStats {
    const loop = this.loop.snapshot();
    const counts = this.#counts;
    if (counts === undefined) return { ...loop, loops: [loop] };
    // Multicore: this thread sees each loop's connection count; the rest of a loop's counters
    // are its own engine.stats(), inside its handler.
    const loops = Array.from(counts, (c) => ({ connections: c, opened: 0, bytesIn: 0, bytesOut: 0, pausedForBackpressure: 0, paused: 0, timedOut: 0, handlerErrors: 0, events: 0 }));
    return { ...loop, connections: this.countConnections(), loops };
  }

  connections(): ConnInfo[] {
    return this.loop.connections();
  }

  get stopping(): boolean {
    return this.#state !== EngineState.Running;
  }

  requestShutdown(): void {
    void this.stop().catch(() => {}); // onShutdown's error went to the diagnostics channel too
  }

  connectionClosed(): void {
    // Only once stop() has closed the listener and asked every connection to close.
    if (this.#draining && this.loop.stats.connections === 0 && this.#threads === undefined) this.#finishStop?.();
  }

  stop(): Promise<void> {
    if (this.#stopPromise !== undefined) return this.#stopPromise;
    this.#state = EngineState.Stopping;
    this.#stopPromise = new Promise<void>((resolve, reject) => {
      this.#finishStop = () => {
        this.#finishStop = undefined;
        clearTimeout(this.#stopTimer);
        this.#state = EngineState.Stopped;
        this.#peers.close();
        this.loop.close();
        if (this.#ownsPath && this.where.network === 'unix') fs.rmSync(this.where.path, { force: true });
        try {
          if (this.#threads === undefined && !this.#abandoned) this.handler.onShutdown?.(this);
        } catch (e) {
          publish({ type: 'error', source: 'onShutdown', error: e, conn: undefined });
          return reject(e);
        }
        resolve();
      };
      // Inside a handler method, the rest waits until it returns (the loop is mid-dispatch).
      queueMicrotask(() => {
        this.#draining = true;
        this.#acceptor?.unwatch();
        if (this.#udp !== undefined) this.#udp.open = false;
        if (this.#listenFd >= 0) {
          this.loop.unwatch(this.#listenFd);
          socket.close(this.#listenFd);
          this.#listenFd = -1;
        }
        if (this.#threads === undefined && this.#loopListeners !== undefined) {
          // serve() failed before the loop threads took their listeners.
          for (let i = 0; i < this.#loopListeners.length; i++) this.#closeLoopListener(i);
        }
        if (this.#threads !== undefined) {
          // Each loop thread flushes and closes its own connections, calls onShutdown, and ends.
          for (const t of this.#threads) void t.remote?.trigger(Priority.High, 'stop').catch(() => undefined);
          if (this.#alive.every((a) => !a)) return this.#finishStop?.();
          this.#stopTimer = setTimeout(() => {
            for (const t of this.#threads!) void t.worker.terminate();
          }, this.options.stopTimeout + 2000);
          return;
        }
        this.loop.closeAll();
        if (this.loop.stats.connections === 0) return this.#finishStop?.();
        this.#stopTimer = setTimeout(() => {
          this.loop.abortAll(codedError(`the engine stopped before this connection's output was written (stopTimeout ${this.options.stopTimeout} ms)`, 'ERR_ENGINE_STOPPED'));
          this.#finishStop?.();
        }, this.options.stopTimeout);
      });
    });
    return this.#stopPromise;
  }
}

/** The numeric host to listen on for a tcp address: names resolved, '' meaning every interface. */
async function numericHost(where: ParsedAddress & { network: 'tcp' | 'udp' }): Promise<string> {
  const { host, family } = where;
  if (host === '') return family === 6 ? '::' : '0.0.0.0';
  const kind = net.isIP(host);
  if (kind !== 0) {
    if (family !== 0 && kind !== family) {
      const err = new TypeError(`"${host}" is not an IPv${family} address, which ${where.network}${family}:// asks for`) as TypeError & { code: string };
      err.code = 'ERR_INVALID_IP_ADDRESS';
      throw err;
    }
    return host;
  }
  const { address } = await dns.lookup(host, { family });
  return address;
}

/**
 * Starts a server (gnet's `Run`): listens on `addr` and serves each connection with
 * `handler`, on one event loop on this thread. Resolves once it listens and `onBoot` ran.
 *
 * Addresses are written as gnet writes them: `tcp://host:port` (a host name is resolved
 * first; an empty host means every interface; an IPv6 host goes in brackets), `tcp4://`,
 * `tcp6://`, `unix:///path/to/socket` (the file is removed by `stop()`), and `udp://host:port`
 * (also `udp4://`, `udp6://`; one loop, each datagram an `onTraffic` whose `write()` answers
 * the sender: see the guide's UDP section). Port 0 lets the kernel choose: `engine.address()`
 * tells which.
 *
 * With `{ multicore: true }` the handler is a module instead (a URL, or a path), whose default
 * export is the EventHandler: each of `numEventLoop` worker threads imports it and runs a loop,
 * and this thread accepts and hands each connection to a loop by the `lb` load balancer; with
 * `reusePort` too (on Linux), each loop accepts for itself on a SO_REUSEPORT listener of its own.
 * State is per loop thread: see the guide's multicore section.
 *
 * @param handler - the callbacks (every method optional); with `multicore`, the URL or path of
 * a module whose default export they are.
 * @param addr - where to listen.
 * @param options - see {@link ServerOptions}.
 * @returns the running engine.
 * @throws (rejects) TypeError for a bad handler, address or option (`ERR_INVALID_ARG_VALUE`,
 * `ERR_INVALID_ARG_TYPE`; also `udp://` with `multicore`); RangeError for a port or size out of range; a SystemError
 * (`EADDRINUSE`, `EACCES`, `ENOENT`); what `onBoot` threw; with `multicore`, an Error when a
 * loop thread cannot import the module.
 * @example
 * ```ts
 * import { serve } from 'netpoll/server';
 *
 * const engine = await serve({ onTraffic: (conn) => { conn.write(conn.next()); } }, 'tcp://127.0.0.1:7000');
 * const four = await serve(new URL('./handler.js', import.meta.url), 'tcp://:7001', { multicore: true, numEventLoop: 4 });
 * ```
 * @category Server
 */
export async function serve(handler: EventHandler | URL | string, addr: string, options?: ServerOptions): Promise<Engine> {
  const resolved = resolveOptions(options);
  let methods: HandlerMethods;
  let handlerUrl: string | undefined;
  if (resolved.multicore) {
    // Functions cannot cross threads: each loop thread imports the handler module itself.
    if (handler instanceof URL) handlerUrl = handler.href;
    else if (typeof handler === 'string') handlerUrl = /^[a-z]+:/i.test(handler) ? handler : pathToFileURL(path.resolve(handler)).href;
    else throw invalidType('handler', "a URL or path of a module whose default export is the EventHandler, with { multicore: true }", handler);
    methods = readHandler({});
  } else {
    if (handler instanceof URL || typeof handler === 'string') throw invalidType('handler', 'an object (an EventHandler); a module URL needs { multicore: true }', handler);
    methods = readHandler(handler);
  }
  const where = parseAddress(addr);
  if (where.network === 'udp' && resolved.multicore) {
    throw invalidValue('addr', `is udp://, which runs on one event loop: { multicore: true } is for tcp:// and unix://. Received ${JSON.stringify(addr)}`);
  }
  const host = where.network === 'unix' ? '' : await numericHost(where);
  const engine = new ServerEngine(methods, resolved, where);
  try {
    engine.listen(host);
    if (handlerUrl !== undefined) await engine.startThreads(handlerUrl);
    methods.onBoot?.(engine);
    engine.introduceSelf();
  } catch (e) {
    await engine.abandon().catch(() => {});
    throw e;
  }
  engine.accept();
  engine.loop.startTicking();
  return engine;
}
