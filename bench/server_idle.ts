// Memory per idle connection with an idle timeout: this process is the server (netpoll/server
// with `idleTimeout`, or node:net with socket.setTimeout), and a child process of this script
// opens the connections and keeps them open, sending nothing. Reports the server's RSS growth
// per connection (full GC before each reading) and the CPU it spends while they sit idle,
// where nothing expires (the timeout is far longer than the measurement).
//
//   node --expose-gc dist/bench/server_idle.js server|net <connections> <idle_ms>
//   (the child: node dist/bench/server_idle.js client <port> <connections>)
// prints one JSON line: { bytes_per_conn, idle_cpu_ms_per_s, connections }.
import { fork } from 'node:child_process';
import * as net from 'node:net';
import { serve } from 'netpoll/server';
import { intArg, printResult } from './util.js';

const mode = process.argv[2];
const TIMEOUT_MS = 600_000;

if (mode === 'client') void client(intArg(3, 0), intArg(4, 0));
else void server(mode === 'net' ? 'net' : 'server', intArg(3, 10_000), intArg(4, 1000));

/** Opens `count` connections, a few hundred at a time, then says "open" and keeps them. */
async function client(port: number, count: number): Promise<void> {
  const sockets: net.Socket[] = [];
  const open = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => resolve());
      s.once('error', reject);
      sockets.push(s);
    });
  for (let i = 0; i < count; i += 250) {
    await Promise.all(Array.from({ length: Math.min(250, count - i) }, open));
  }
  process.send?.('open');
  process.on('disconnect', () => process.exit(0));
}

function rss(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage.rss();
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function server(kind: 'server' | 'net', count: number, idleMs: number): Promise<void> {
  let connections: () => number;
  let stop: () => Promise<void>;
  let port: number;
  if (kind === 'server') {
    const engine = await serve({ onTraffic: (conn) => void conn.write(conn.next()) }, 'tcp://127.0.0.1:0', {
      idleTimeout: TIMEOUT_MS,
      backlog: 4096,
    });
    const a = engine.address();
    port = typeof a === 'string' ? 0 : a.port;
    connections = () => engine.countConnections();
    stop = () => engine.stop();
  } else {
    let open = 0;
    const s = net.createServer({ noDelay: true }, (socket) => {
      open++;
      socket.setTimeout(TIMEOUT_MS, () => socket.destroy());
      socket.on('data', (chunk) => socket.write(chunk));
      socket.on('error', () => socket.destroy());
      socket.on('close', () => open--);
    });
    await new Promise<void>((r) => s.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, r));
    port = (s.address() as net.AddressInfo).port;
    connections = () => open;
    stop = async () => void s.close();
  }
  await sleep(100);
  const before = rss();
  const child = fork(__filename, ['client', String(port), String(count)], { stdio: 'inherit' });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`the client exited (${code}) before opening its connections`)));
  });
  while (connections() < count) await sleep(20);
  await sleep(200);
  const after = rss();
  // What the full GCs left running (concurrent sweeping) ends before the quiet window opens.
  await sleep(Math.min(1000, idleMs));
  const cpuFrom = process.cpuUsage();
  await sleep(idleMs);
  const cpu = process.cpuUsage(cpuFrom);
  const open = connections();
  child.disconnect();
  child.kill();
  printResult({
    connections: open,
    bytes_per_conn: (after - before) / count,
    idle_cpu_ms_per_s: (cpu.user + cpu.system) / 1000 / (idleMs / 1000),
  });
  void stop();
  setTimeout(() => process.exit(0), 100).unref();
}
