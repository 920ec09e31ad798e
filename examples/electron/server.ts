// The Electron example's netpoll part, kept free of Electron so that plain Node can run it
// (the test suite does): an echo server on netpoll/server in the main process (or a utility
// process), counting connections and bytes for the window to show.
//
// In the app, `netpoll` is this repository installed as a dependency; when the repository's
// own build compiles this file, the package refers to itself.
import { serve } from 'netpoll/server';

/** What the window shows. */
export interface Counts {
  /** Where the server listens, as host:port. */
  address: string;
  /** Connections open now. */
  open: number;
  /** Connections accepted since start. */
  total: number;
  /** Bytes echoed since start. */
  bytes: number;
}

export interface CounterServer {
  readonly port: number;
  counts(): Counts;
  /** Stops gracefully: closes the listener and every connection (their output written first). */
  close(): void;
  /** Resolves once closed; rejects if stopping failed. */
  readonly done: Promise<void>;
}

export interface CounterServerOptions {
  /** A numeric address; default 127.0.0.1. */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  /** Called after counts change, at most every `intervalMs` (default 100). */
  onCounts?: (counts: Counts) => void;
  intervalMs?: number;
}

/** Starts the echo server; resolves once it listens. Its loop runs on this thread's event loop: the window stays responsive. */
export async function startCounterServer(options: CounterServerOptions = {}): Promise<CounterServer> {
  const host = options.host ?? '127.0.0.1';
  let timer: NodeJS.Timeout | undefined;
  let stopping = false;
  // Coalesce updates: a burst of connections becomes one message to the window.
  const changed = (): void => {
    if (options.onCounts === undefined || timer !== undefined || stopping) return;
    timer = setTimeout(() => {
      timer = undefined;
      options.onCounts?.(counts());
    }, options.intervalMs ?? 100);
  };
  const engine = await serve(
    {
      onOpen: changed,
      onTraffic(conn) {
        conn.write(conn.next()); // a peer that does not read is not read from either, until it catches up
        changed();
      },
      onClose: changed,
    },
    `tcp://${host.includes(':') ? `[${host}]` : host}:${options.port ?? 0}`,
  );
  const { port } = engine.address() as { port: number };
  const counts = (): Counts => {
    const s = engine.stats();
    return { address: `${host}:${port}`, open: s.connections, total: s.opened, bytes: s.bytesIn };
  };
  let stop!: () => void;
  const done = new Promise<void>((resolve) => (stop = resolve)).then(() => engine.stop());
  return {
    port,
    counts,
    close() {
      stopping = true;
      clearTimeout(timer);
      stop();
    },
    done,
  };
}
