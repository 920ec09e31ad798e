// A multicore engine's loop thread: imports the handler module, runs one event loop, takes the
// connections the acceptor hands it through the poller's remote trigger.
import { parentPort, workerData } from 'node:worker_threads';
import { socket, type PollerHandle, type PollerTasks, type RemotePoller, type SocketAddress } from '../index.js';
import { Acceptor } from './acceptor.js';
import type { ConnInfo, EngineStats } from './diagnostics.js';
import { codedError, EventLoop, type LoopHost } from './eventloop.js';
import { readHandler, type Engine, type EventHandler } from './handler.js';
import type { LoopWorkerData } from './options.js';
import { Peers } from './peers.js';

/** The Engine a loop thread's handler sees: this loop's view, and a stop() that stops them all. */
class LoopEngine implements Engine, LoopHost {
  loop!: EventLoop;
  /** With `reusePort`: this loop's own listener. */
  acceptor: Acceptor | undefined;
  #stopping = false;
  #stopped: Promise<void>;
  #resolveStopped!: () => void;
  #draining = false;
  #finish: (() => void) | undefined;
  readonly peers: Peers;

  constructor(readonly data: LoopWorkerData) {
    this.#stopped = new Promise((resolve) => (this.#resolveStopped = resolve));
    this.peers = new Peers(data.options.numEventLoop);
  }

  get loopIndex(): number {
    return this.data.index;
  }

  get numEventLoop(): number {
    return this.data.options.numEventLoop;
  }

  offer<T extends PollerTasks>(tasks: T): void {
    this.peers.offer(tasks);
  }

  peer<T extends PollerTasks>(index: number): RemotePoller<T> {
    return this.peers.peer(index) as unknown as RemotePoller<T>;
  }

  address(): SocketAddress | string {
    return typeof this.data.address === 'string' ? this.data.address : { ...this.data.address };
  }

  countConnections(): number {
    let n = 0;
    for (let i = 0; i < this.data.counts.length; i++) n += Atomics.load(this.data.counts, i);
    return n;
  }

  stats(): EngineStats {
    const loop = this.loop.snapshot();
    return { ...loop, loops: [loop] };
  }

  connections(): ConnInfo[] {
    return this.loop.connections();
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  stop(): Promise<void> {
    parentPort!.postMessage({ type: 'stop-request' });
    return this.#stopped;
  }

  requestShutdown(): void {
    parentPort!.postMessage({ type: 'stop-request' });
  }

  connectionOpened(fd: number): void {
    if (fd < this.data.owners.length) Atomics.store(this.data.owners, fd, this.data.index + 1);
    Atomics.store(this.data.counts, this.data.index, this.loop.stats.connections);
  }

  releasing(fd: number): void {
    if (fd < this.data.owners.length) Atomics.store(this.data.owners, fd, 0);
  }

  connectionClosed(): void {
    Atomics.store(this.data.counts, this.data.index, this.loop.stats.connections);
    if (this.#draining && this.loop.stats.connections === 0) this.#finish?.();
  }

  /** The acceptor asked this loop to stop: flush and close every connection, then onShutdown. */
  drain(onShutdown: EventHandler['onShutdown']): void {
    if (this.#stopping) return;
    this.#stopping = true;
    const timer = setTimeout(() => {
      this.loop.abortAll(codedError(`the engine stopped before this connection's output was written (stopTimeout ${this.data.options.stopTimeout} ms)`, 'ERR_ENGINE_STOPPED'));
      this.#finish?.();
    }, this.data.options.stopTimeout);
    this.#finish = () => {
      this.#finish = undefined;
      clearTimeout(timer);
      this.peers.close();
      this.loop.close();
      try {
        onShutdown?.(this);
      } catch (e) {
        parentPort!.postMessage({ type: 'shutdown-error', error: e instanceof Error ? e.message : String(e) });
      }
      this.#resolveStopped();
    };
    this.#draining = true;
    this.closeListener();
    this.loop.closeAll();
    if (this.loop.stats.connections === 0) this.#finish();
  }

  /** Stops accepting on this loop's own listener (reusePort) and closes it, unless the acceptor thread did. */
  closeListener(): void {
    const listeners = this.data.listeners;
    if (listeners === undefined) return;
    this.acceptor?.unwatch();
    const fd = Atomics.exchange(listeners, this.data.index, -1);
    if (fd >= 0) socket.close(fd);
  }
}

function unwrapDefault(mod: unknown): unknown {
  let h = (mod as { default?: unknown } | null)?.default ?? mod;
  // A compiled `export default` imported from CommonJS: { default: handler } once more.
  const inner = (h as { default?: unknown } | null)?.default;
  if (inner !== undefined && typeof inner === 'object') h = inner;
  return h;
}

async function main(data: LoopWorkerData): Promise<void> {
  const port = parentPort!;
  let handler;
  try {
    handler = readHandler(unwrapDefault(await import(data.handlerUrl)));
  } catch (e) {
    port.postMessage({ type: 'failed', error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
    return;
  }
  const engine = new LoopEngine(data);
  const loop = new EventLoop(handler, data.options, engine);
  engine.loop = loop;
  try {
    handler.onBoot?.(engine);
  } catch (e) {
    port.postMessage({ type: 'failed', error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
    loop.close();
    return;
  }
  // The handle is made after onBoot, which may have offered tasks to the other loops
  // (engine.offer); their names never clash with these (RESERVED_TASKS).
  const offered = engine.peers.take();
  const handle = loop.poller.handle({
    ...offered,
    adopt: (p: { fd: number; address: SocketAddress | null; isTcp: boolean }) => {
      try {
        loop.open(p.fd, p.address ?? undefined, p.isTcp);
      } catch {
        // a socket option or registration failed: open() closed the fd
      }
    },
    stop: () => {
      engine.drain(handler.onShutdown);
    },
    peers: (handles: (PollerHandle | null)[]) => {
      engine.peers.introduce(handles.map((h) => h ?? undefined));
      // Accepting starts only now, so that engine.peer() works from the first connection on.
      const listenFd = data.listeners === undefined ? -1 : Atomics.load(data.listeners, data.index);
      if (listenFd >= 0) {
        // gnet's reusePort design: this loop accepts for itself; the kernel picks the listener.
        engine.acceptor = new Acceptor(loop, listenFd, true, (fd, address, isTcp) => loop.open(fd, address, isTcp), () => !engine.stopping);
        engine.acceptor.watch();
      }
    },
  });
  loop.startTicking();
  port.postMessage({ type: 'ready', handle, offered: offered !== undefined });
}

if ((workerData as { netpollServerLoop?: boolean } | null)?.netpollServerLoop === true) void main(workerData as LoopWorkerData);
