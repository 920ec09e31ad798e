// gnet's engine with a main reactor, on netpoll/server: this thread listens and accepts, N
// loop threads each run an event loop (a sub-reactor), and every accepted connection is
// handed to one of them with the poller's remote trigger, as gnet's acceptor does. The loop
// is chosen by one of gnet's load balancers (--lb). The handler is a module, since functions
// cannot cross threads: each loop thread imports examples/echo.js or examples/http.js.
// Ctrl-C stops every loop (each flushes and closes its connections) and exits.
//
//   npm run example:reactor-echo                        # port 7000, one loop per CPU
//   npm run example:reactor-http -- 8080 4 --lb least-connections
//   WORKERS=2 PORT=0 node dist/examples/reactor.js http --lb source-addr-hash
//
// Unlike examples/multicore.ts (SO_REUSEPORT), this works the same everywhere: macOS and
// most BSDs do not balance SO_REUSEPORT, and there the acceptor is the multicore design.
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { serve, type Engine, type LoadBalancing, type ServerOptions } from 'netpoll/server';
import { addressFromCli, runUntilSignalled } from './cli.js';

export type Kind = 'echo' | 'http';
const BALANCERS: readonly LoadBalancing[] = ['round-robin', 'least-connections', 'source-addr-hash'];

/** Serves examples/<kind>.ts on `numEventLoop` loop threads (`options` says how they get connections). */
export function serveLoops(kind: Kind, addr: string, numEventLoop: number, options: ServerOptions = {}): Promise<Engine> {
  return serve(pathToFileURL(path.join(__dirname, `${kind}.js`)), addr, { ...options, multicore: true, numEventLoop });
}

/** The command line: `<echo|http> [port] [loops] [--lb balancer]` (loops default $WORKERS, then one per CPU). */
export function parseCli(name: string, withLb: boolean): { kind: Kind; addr: string; loops: number; lb: LoadBalancing } {
  const args = process.argv.slice(2);
  const usage = (message: string): never => {
    console.error(`${message}\nusage: ${name} echo|http [port] [loops]${withLb ? ` [--lb ${BALANCERS.join('|')}]` : ''}`);
    process.exit(2);
  };
  let lb: LoadBalancing = 'round-robin';
  const at = withLb ? args.indexOf('--lb') : -1;
  if (at >= 0) {
    lb = args[at + 1] as LoadBalancing;
    if (!BALANCERS.includes(lb)) usage(`unknown load balancer ${JSON.stringify(args[at + 1])}`);
    args.splice(at, 2);
  }
  const kind = args[0];
  if (kind !== 'echo' && kind !== 'http') return usage('which server: echo or http?');
  const loops = Number(args[2] ?? process.env.WORKERS ?? os.availableParallelism());
  if (!Number.isInteger(loops) || loops < 1) usage(`bad loop count ${args[2] ?? process.env.WORKERS}`);
  return { kind, addr: addressFromCli(kind === 'echo' ? 7000 : 8080, args[1]), loops, lb };
}

if (require.main === module) {
  const { kind, addr, loops, lb } = parseCli('reactor.js', true);
  // Each loop thread prints what it served as it stops ("loop 0: 16 connections").
  runUntilSignalled(serveLoops(kind, addr, loops, { lb }), `reactor ${kind} server`, ` (${loops} loops, ${lb})`);
}
