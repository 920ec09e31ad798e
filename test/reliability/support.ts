// Helpers shared by the reliability tests: loopback TCP peers from node:net,
// process-wide failure traps, and fd/ulimit bookkeeping.
import { execFileSync } from 'node:child_process';
import * as net from 'node:net';
import * as fc from 'fast-check';
import { dialTCP } from '../../src/index.js';

/**
 * A node:net server on 127.0.0.1 whose accepted sockets never read on their own
 * (pauseOnConnect): each is the far end of one `dialTCP` fd, and the test decides
 * what it writes, when it closes (FIN with end(), RST with resetAndDestroy()).
 */
export class TcpPeers {
  readonly #server: net.Server;
  readonly #accepted: net.Socket[] = [];
  readonly #waiters: Array<(s: net.Socket) => void> = [];
  readonly port: number;

  private constructor(server: net.Server, port: number) {
    this.#server = server;
    this.port = port;
    server.on('connection', (socket) => {
      // The tests close fds with unread data (RST): that is expected, not a failure.
      socket.on('error', () => undefined);
      const waiter = this.#waiters.shift();
      if (waiter) waiter(socket);
      else this.#accepted.push(socket);
    });
  }

  static async open(backlog = 511): Promise<TcpPeers> {
    const server = net.createServer({ pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: 0, host: '127.0.0.1', backlog }, resolve);
    });
    return new TcpPeers(server, (server.address() as net.AddressInfo).port);
  }

  /** The next accepted socket, in accept order. */
  next(): Promise<net.Socket> {
    const s = this.#accepted.shift();
    if (s) return Promise.resolve(s);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** A connected pair: our fd (blocking connect done) and node's accepted socket. */
  async pair(): Promise<{ fd: number; peer: net.Socket }> {
    const fd = dialTCP('127.0.0.1', this.port);
    return { fd, peer: await this.next() };
  }

  close(): Promise<void> {
    for (const s of this.#accepted.splice(0)) s.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

/** The soft limit on open fds (`ulimit -n`). */
export function fdLimit(): number {
  try {
    return Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim()) || 1024;
  } catch {
    return 1024;
  }
}

/** Collects unhandled rejections and uncaught exceptions so a test can assert there were none. */
export function trapProcessFailures(): { failures: unknown[] } {
  const failures: unknown[] = [];
  process.on('unhandledRejection', (reason) => failures.push(reason));
  process.on('uncaughtException', (err) => failures.push(err));
  return { failures };
}

/** Resident set size in MiB. */
export function rssMiB(): number {
  return Math.round((process.memoryUsage().rss / 1048576) * 10) / 10;
}

/**
 * fast-check's assert, with its full report (seed, path, shrunk counterexample and the
 * error) printed on failure: uvu shows only an error's first lines.
 */
export async function assertProperty<Ts>(property: fc.IAsyncProperty<Ts> | fc.IProperty<Ts>, params: fc.Parameters<Ts>): Promise<void> {
  const details = await fc.check(property, params);
  if (!details.failed) return;
  console.error(fc.defaultReportMessage(details));
  const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
  throw new Error(`property failed (seed ${details.seed}, path "${details.counterexamplePath}"): ${error}\n    counterexample: ${fc.stringify(details.counterexample)}`);
}
