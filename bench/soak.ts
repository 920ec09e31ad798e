// Soak: rounds of 1M triggers, 100k add/modify/delete cycles, an echo under load
// (socketpairs served and checked by the poller, TCP connections to a node:net echo
// server) and a netpoll/server phase (an echo engine with idleTimeout, its connections
// opening, echoing, then ending, resetting or going idle until the timeout closes them,
// each replaced by a new one), repeated until the time is up; RSS and the open fd count
// are sampled after each round (after a GC) and must stay flat.
//
//   npm run soak [-- --minutes N]     (default 10, at most 10: bounded, not for CI)
//
// Exit status 1 when a round fails or the figures are not flat.
import * as fs from 'node:fs';
import * as net from 'node:net';
import {
  ErrEngineShutdown,
  Priority,
  close,
  dialTCP,
  openPoller,
  read,
  socketpair,
  write,
  type Poller,
} from '../src/index.js';
import { serve } from '../src/server.js';

const args = process.argv.slice(2);
const minutesArg = args.indexOf('--minutes');
const minutes = Math.min(10, Math.max(0.1, minutesArg >= 0 ? Number(args[minutesArg + 1]) : 10));
const TRIGGERS = 1_000_000;
const CYCLES = 100_000;
const ECHO_SECONDS = 10;
const PAIRS = 64;
const TCP_CONNECTIONS = 64;
const SERVER_SECONDS = 10;
const SERVER_CONNECTIONS = 64;
const SERVER_IDLE_MS = 200;

const gc = (globalThis as { gc?: () => void }).gc;
const fdCount = (): number => fs.readdirSync('/proc/self/fd').length - 1;
const rssMiB = (): number => Math.round(process.memoryUsage().rss / 104857.6) / 10;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function settle(): Promise<{ rss: number; fds: number; heap: number }> {
  for (let i = 0; i < 3; i++) {
    gc?.();
    await sleep(20);
  }
  return { rss: rssMiB(), fds: fdCount(), heap: Math.round(process.memoryUsage().heapUsed / 104857.6) / 10 };
}

/** 1M triggers from inside the loop, in bursts, mixing priorities; every result checked. */
async function triggers(poller: Poller): Promise<number> {
  let done = 0;
  let queued = 0;
  let wrong = 0;
  const burst = (): void => {
    for (let i = 0; i < 4096 && queued < TRIGGERS; i++, queued++) {
      const n = queued;
      poller.trigger(n % 3 === 0 ? Priority.Low : Priority.High, (x: number) => x + 1, n).then((v) => {
        if (v !== n + 1) wrong++;
        if (++done === TRIGGERS) void poller.trigger(Priority.High, () => ErrEngineShutdown);
      });
    }
    if (queued < TRIGGERS) void poller.trigger(Priority.Low, burst);
  };
  burst();
  await poller.polling();
  if (wrong > 0 || done !== TRIGGERS) throw new Error(`triggers: ${done} done, ${wrong} wrong results`);
  return done;
}

/** 100k cycles of add, modify and delete over a few socketpairs, while idle. */
function addDelete(poller: Poller, fds: number[]): number {
  const cb = (): undefined => undefined;
  for (let i = 0; i < CYCLES; i++) {
    const fd = fds[i % fds.length];
    const pa = { fd, callback: cb };
    if (i % 2 === 0) poller.addRead(pa, i % 4 === 0);
    else poller.addReadWrite(pa);
    if (i % 3 === 0) poller.modReadWrite(pa);
    poller.delete(fd);
  }
  return CYCLES;
}

/** Echo under load: socketpairs served and checked by this poller, and TCP to a node:net echo server. */
async function echo(poller: Poller, pairs: Array<[number, number]>, port: number): Promise<number> {
  const buf = Buffer.alloc(65536);
  const payload = Buffer.from('0123456789abcdef'.repeat(64)); // 1 KiB
  let roundTrips = 0;
  let mismatches = 0;
  const tcp: number[] = [];
  for (let i = 0; i < TCP_CONNECTIONS; i++) tcp.push(dialTCP('127.0.0.1', port));
  const received = new Map<number, number>();
  const client = (fd: number): undefined => {
    const n = read(fd, buf);
    if (n <= 0) return undefined;
    for (let i = 0; i < n; i++) {
      if (buf[i] !== payload[((received.get(fd) ?? 0) + i) % payload.length]) {
        mismatches++;
        break;
      }
    }
    const total = (received.get(fd) ?? 0) + n;
    received.set(fd, total % payload.length);
    if (total % payload.length === 0) {
      roundTrips++;
      write(fd, payload);
    }
    return undefined;
  };
  const server = (fd: number): undefined => {
    const n = read(fd, buf);
    if (n > 0) write(fd, buf.subarray(0, n));
    return undefined;
  };
  for (const [s, c] of pairs) {
    poller.addRead({ fd: s, callback: server });
    poller.addRead({ fd: c, callback: client });
    write(c, payload);
  }
  for (const fd of tcp) {
    poller.addRead({ fd, callback: client });
    write(fd, payload);
  }
  const stop = setTimeout(() => void poller.trigger(Priority.High, () => ErrEngineShutdown), ECHO_SECONDS * 1000);
  await poller.polling();
  clearTimeout(stop);
  for (const [s, c] of pairs) {
    poller.delete(s);
    poller.delete(c);
    // Drain what is in flight so the next round starts clean.
    while (read(s, buf) > 0);
    while (read(c, buf) > 0);
  }
  for (const fd of tcp) {
    poller.delete(fd);
    close(fd);
  }
  if (mismatches > 0) throw new Error(`echo: ${mismatches} corrupted replies`);
  return roundTrips;
}

/**
 * netpoll/server: an echo engine with an idle timeout, SERVER_CONNECTIONS node:net clients
 * at a time, each echoing 1 KiB a random number of times, then ending (FIN), resetting
 * (RST) or going silent until the idle timeout closes it, and replaced by a new one. Every
 * echo is checked, and every onOpen must have had its onClose once the engine stopped.
 */
async function serverPhase(): Promise<{ connections: number; roundTrips: number; timeouts: number }> {
  let opens = 0;
  let closes = 0;
  let timeouts = 0;
  let roundTrips = 0;
  let mismatches = 0;
  const engine = await serve({
    onOpen: () => void opens++,
    onTraffic: (conn) => void conn.write(conn.next()),
    onClose(_conn, err) {
      closes++;
      if ((err as { code?: string } | undefined)?.code === 'ETIMEDOUT') timeouts++;
    },
  }, 'tcp://127.0.0.1:0', { idleTimeout: SERVER_IDLE_MS });
  const port = (engine.address() as net.AddressInfo).port;
  const payload = Buffer.from('fedcba9876543210'.repeat(64));
  const end = Date.now() + SERVER_SECONDS * 1000;
  let live = 0;
  let running = true;
  const client = (): void => {
    live++;
    let left = 1 + Math.floor(Math.random() * 20);
    let got = 0;
    const s = net.connect(port, '127.0.0.1', () => s.write(payload));
    s.on('error', () => undefined);
    s.on('data', (d: Buffer) => {
      for (let i = 0; i < d.length; i++) {
        if (d[i] !== payload[(got + i) % payload.length]) {
          mismatches++;
          break;
        }
      }
      got = (got + d.length) % payload.length;
      if (got !== 0) return;
      roundTrips++;
      if (--left > 0 && Date.now() < end) return void s.write(payload);
      const how = Math.random();
      if (how < 0.4) s.end();
      else if (how < 0.7) s.resetAndDestroy();
      // else: silent, until the server's idle timeout closes it
    });
    s.on('close', () => {
      live--;
      if (running && Date.now() < end) client();
    });
  };
  for (let i = 0; i < SERVER_CONNECTIONS; i++) client();
  while (Date.now() < end) await sleep(50);
  running = false;
  // The silent ones close on the idle timeout; the others have finished.
  for (let i = 0; i < 100 && live > 0; i++) await sleep(50);
  await engine.stop();
  if (mismatches > 0) throw new Error(`server: ${mismatches} corrupted echoes`);
  if (live > 0) throw new Error(`server: ${live} clients still open after the idle timeout and stop()`);
  if (closes !== opens || engine.countConnections() !== 0) throw new Error(`server: ${opens} opened, ${closes} closed, ${engine.countConnections()} left`);
  return { connections: opens, roundTrips, timeouts };
}

async function main(): Promise<void> {
  if (!gc) console.log('(run with --expose-gc for steadier figures: npm run soak does)');
  const echoServer = net.createServer((s) => {
    s.on('error', () => undefined);
    s.pipe(s);
  });
  await new Promise<void>((resolve) => echoServer.listen({ port: 0, host: '127.0.0.1', backlog: 512 }, resolve));
  const port = (echoServer.address() as net.AddressInfo).port;
  const pairs = Array.from({ length: PAIRS }, () => socketpair());
  const idleFds = pairs.slice(0, 8).flat();
  const deadline = Date.now() + minutes * 60_000;
  console.log(
    `soak: ${minutes} min; each round: ${TRIGGERS} triggers, ${CYCLES} add/mod/delete cycles, ${ECHO_SECONDS} s echo over ${PAIRS} socketpairs + ${TCP_CONNECTIONS} TCP, ` +
      `${SERVER_SECONDS} s of netpoll/server echo over ${SERVER_CONNECTIONS} connections at a time (idleTimeout ${SERVER_IDLE_MS} ms)`,
  );

  const samples: Array<{ round: number; rss: number; fds: number; heap: number }> = [];
  let round = 0;
  let totals = { triggers: 0, cycles: 0, roundTrips: 0, serverConnections: 0, serverRoundTrips: 0 };
  // Round 0 warms up (JIT, pools, buffers): the baseline is taken after it.
  while (round === 0 || Date.now() < deadline) {
    const t0 = Date.now();
    const poller = openPoller();
    const t = await triggers(poller);
    const c = addDelete(poller, idleFds);
    const e = await echo(poller, pairs, port);
    poller.close();
    const srv = await serverPhase();
    const s = await settle();
    samples.push({ round, ...s });
    if (round > 0) {
      totals = {
        triggers: totals.triggers + t,
        cycles: totals.cycles + c,
        roundTrips: totals.roundTrips + e,
        serverConnections: totals.serverConnections + srv.connections,
        serverRoundTrips: totals.serverRoundTrips + srv.roundTrips,
      };
    }
    console.log(
      `round ${round}: ${((Date.now() - t0) / 1000).toFixed(1)} s, ${e} echo round trips; server: ${srv.connections} connections (${srv.timeouts} idle timeouts), ` +
        `${srv.roundTrips} round trips; RSS ${s.rss} MiB, heap ${s.heap} MiB, fds ${s.fds}`,
    );
    round++;
  }
  for (const [a, b] of pairs) {
    close(a);
    close(b);
  }
  await new Promise<void>((resolve) => echoServer.close(() => resolve()));

  const start = samples[0];
  const end = samples[samples.length - 1];
  const maxRss = Math.max(...samples.map((s) => s.rss));
  console.log(
    `soak: ${round - 1} measured rounds: ${totals.triggers} triggers, ${totals.cycles} add/delete cycles, ${totals.roundTrips} echo round trips, ` +
      `${totals.serverConnections} netpoll/server connections with ${totals.serverRoundTrips} round trips\n` +
      `soak: RSS start ${start.rss} MiB, end ${end.rss} MiB, max ${maxRss} MiB; fds start ${start.fds}, end ${end.fds}`,
  );
  // Flat: the same fds, and RSS within what allocator and GC noise explain.
  const flat = end.fds === start.fds && end.rss - start.rss < Math.max(32, start.rss * 0.25);
  console.log(flat ? 'soak: flat' : 'soak: NOT flat');
  process.exitCode = flat ? 0 : 1;
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
