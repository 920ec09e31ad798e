// What the netpoll/server benchmark servers share: an Engine run the way bench/util.ts runs
// the examples' TcpServer ("PORT <n>" once listening, stop on SIGTERM, exit after max_seconds).
import type { Engine } from 'netpoll/server';
import { intArg } from './util.js';

/** Prints the engine's port; stops it on SIGTERM; exits after `argv[2]` seconds (default 60). */
export function serveEngine(started: Promise<Engine>): void {
  const maxSeconds = intArg(2, 60);
  setTimeout(() => process.exit(0), maxSeconds * 1000).unref();
  started.then(
    (engine) => {
      const a = engine.address();
      process.stdout.write(`PORT ${typeof a === 'string' ? 0 : a.port}\n`);
      process.once('SIGTERM', () => void engine.stop().then(() => process.exit(0)));
    },
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
