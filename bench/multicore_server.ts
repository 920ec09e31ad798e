// The multicore servers the reactor benchmark compares, with the same worker count:
//   reactor    examples/reactor.ts: netpoll/server's acceptor hands connections to loop threads
//   multicore  examples/multicore.ts: the same with reusePort (SO_REUSEPORT)
//   cluster    node:cluster (round-robin, its default off Windows): node:http or node:net per process
//
//   node dist/bench/multicore_server.js <max_seconds> <design> <echo|http> <workers>
// listens on 127.0.0.1 (any port), prints "PORT <n>", exits on SIGTERM or after max_seconds.
import cluster from 'node:cluster';
import * as http from 'node:http';
import * as net from 'node:net';
import { serveLoops } from '../examples/reactor.js';
import { serveEngine } from './server_util.js';
import { intArg } from './util.js';

const maxSeconds = intArg(2, 60);
const design = process.argv[3];
const kind = process.argv[4] === 'echo' ? 'echo' : 'http';
const workers = intArg(5, 2);

/** node:cluster: the primary forks, each worker serves on the port the primary shares. */
function clusterWorker(): void {
  const body = Buffer.from('Hello, World!');
  const server =
    kind === 'http'
      ? http.createServer((_req, res) => {
          res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length, Server: 'node' });
          res.end(body);
        })
      : net.createServer({ noDelay: true }, (socket) => {
          socket.on('data', (chunk) => socket.write(chunk));
          socket.on('error', () => socket.destroy());
        });
  server.listen({ host: '127.0.0.1', port: Number(process.env.BENCH_PORT), backlog: 4096 }, () => process.send!('listening'));
}

async function clusterPrimary(): Promise<void> {
  // A free port first: workers listening on port 0 would each get their own.
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  cluster.setupPrimary({ args: process.argv.slice(2) });
  const forks = Array.from({ length: workers }, () => cluster.fork({ BENCH_PORT: String(port) }));
  await Promise.all(forks.map((w) => new Promise<void>((resolve) => w.once('message', () => resolve()))));
  process.stdout.write(`PORT ${port}\n`);
  const stop = (): void => {
    for (const w of forks) w.kill('SIGTERM');
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  setTimeout(stop, maxSeconds * 1000).unref();
}

async function main(): Promise<void> {
  if (design === 'cluster') return cluster.isPrimary ? clusterPrimary() : clusterWorker();
  serveEngine(serveLoops(kind, 'tcp://127.0.0.1:0', workers, { backlog: 4096, reusePort: design === 'multicore' }));
}

if (design !== 'reactor' && design !== 'multicore' && design !== 'cluster') {
  console.error(`unknown design ${design}: reactor, multicore or cluster`);
  process.exit(2);
}
main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
