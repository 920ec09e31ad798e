// What the example programs share: where to listen (from the command line), and running an
// engine until Ctrl-C or SIGTERM. Nothing here is netpoll's: each example's server is its
// own file, on `netpoll/server` alone.
import { writeSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import type { Engine } from 'netpoll/server';

/**
 * The address to serve on (`arg` is the command line's port or address): `arg` when it is one (`tcp://…`, `unix://…`), else
 * `tcp://$HOST:<arg>`, with $HOST default 127.0.0.1 and `arg` default $PORT, then `port`.
 */
export function addressFromCli(port: number, arg: string | undefined): string {
  const where = arg ?? process.env.PORT ?? String(port);
  if (where.includes('://')) return where;
  const host = process.env.HOST || '127.0.0.1';
  return `tcp://${host.includes(':') ? `[${host}]` : host}:${where}`;
}

/** Where an engine listens, as host:port ([v6]:port), or the Unix socket's path. */
export function describe(engine: Engine): string {
  const a = engine.address();
  if (typeof a === 'string') return a;
  return `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
}

/**
 * Prints "<name> listening on <where><note>", stops the engine on SIGINT or SIGTERM, then
 * prints "<name> stopped<summary()>". Exits with 1 if it cannot start.
 */
export function runUntilSignalled(started: Promise<Engine>, name: string, note = '', summary: (engine: Engine) => string = () => ''): void {
  started.then(
    (engine) => {
      console.log(`${name} listening on ${describe(engine)}${note}`);
      const stop = (): void =>
        void engine.stop().then(
          () => console.log(`${name} stopped${summary(engine)}`),
          (e: unknown) => {
            console.error(e);
            process.exitCode = 1;
          },
        );
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    },
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}

/**
 * In a multicore engine's loop thread, prints what this loop served: "loop <i>: <n>
 * connections<extra>". Written synchronously to fd 1: a worker's console.log is relayed by
 * the main thread and could arrive after the main thread's own last line.
 */
export function reportLoop(engine: Engine, extra = ''): void {
  if (isMainThread) return;
  writeSync(1, `loop ${engine.loopIndex}: ${engine.stats().opened} connections${extra}\n`);
}
