#!/usr/bin/env node
// The benchmark driver (`npm run bench`): builds what the benchmarks need, runs
// every figure with its baselines side by side (alternating within each round,
// several rounds), prints a table of ratios and writes docs/benchmarks.md and
// docs/benchmarks.svg.
//
//   node bench/run.mjs [--quick] [--rounds N] [--only dispatch,echo,http,trigger,remote,reactor,memory,server] [--out DIR]
//
// --quick: one short round per figure, written to bench/build/ (CI keeps the scripts
// working with it; its numbers mean little). Each implementation runs in a process of
// its own, with a hard time limit; everything talks to loopback only.
// --only: runs those groups and replaces just their rows (and "not measured" notes) in the
// existing report (docs/benchmarks.md, or --out's, or bench/build's with --quick); the other
// groups' rows stay as they were, and the report's Machine section says which run each
// group's rows come from. Where there is no report yet, it holds only those groups.
// --out DIR: where benchmarks.md and benchmarks.svg go (default docs/, bench/build/ with --quick).
// The Bun baselines (netpoll/server group) need Bun: scripts/fetch-bun.mjs finds it or
// installs it into ~/.cache; with --quick it is used only if already there, never installed.
// Without it those rows are skipped, saying why.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findBun } from '../scripts/fetch-bun.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const benchDir = join(root, 'bench');
const buildDir = join(benchDir, 'build');
const distBench = join(root, 'dist', 'bench');

// ---- options ----

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const option = (name) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const quick = flag('--quick');
const rounds = Number(option('--rounds') ?? (quick ? 1 : 5));
const only = option('--only')?.split(',');
const outDir = option('--out') ?? (quick ? buildDir : join(root, 'docs'));
// A server is started once per figure and warmed up before its first round: a fresh
// Node process keeps compiling (on background threads, taking CPU from the load
// generator) for about a second under load, and the figures are about the steady state.
const timing = quick
  ? { measureMs: 250, warmupMs: 60, serverMeasureMs: 250, serverWarmupMs: 60, wrkSeconds: 1 }
  : { measureMs: 1000, warmupMs: 500, serverMeasureMs: 1000, serverWarmupMs: 1500, wrkSeconds: 3 };
// Echo rounds are short and many: on a shared VM the machine's speed drifts over
// seconds, so the three servers take turns at 1 s each, and a round's ratio compares
// measurements a second or two apart.
const echoRounds = quick ? 1 : rounds * 2;
if (!Number.isInteger(rounds) || rounds < 1) throw new RangeError('--rounds must be a positive integer');

const wanted = (group) => only === undefined || only.includes(group);

// ---- building ----

function newerThan(target, sources) {
  if (!existsSync(target)) return true;
  const t = statSync(target).mtimeMs;
  return sources.some((s) => statSync(s).mtimeMs > t);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`})`);
}

function build() {
  const addon = join(root, 'build', 'Release', 'netpoll.node');
  const nativeSources = [join(root, 'binding.gyp'), ...readdirSync(join(root, 'csrc')).map((f) => join(root, 'csrc', f))];
  if (!process.env.NETPOLL_ADDON && newerThan(addon, nativeSources)) {
    console.log('building the addon (npm run build:native)');
    run('npm', ['run', '--silent', 'build:native']);
  }
  console.log('compiling TypeScript');
  run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']);
  buildFloor();
  mkdirSync(buildDir, { recursive: true });
  const common = join(benchDir, 'common.h');
  for (const file of readdirSync(benchDir).filter((f) => f.endsWith('.c'))) {
    const source = join(benchDir, file);
    const binary = join(buildDir, file.slice(0, -2));
    if (newerThan(binary, [source, common])) {
      console.log(`gcc -O2 bench/${file}`);
      run('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-D_GNU_SOURCE', '-pthread', '-o', binary, source]);
    }
  }
}

// The Node-loop floor's addon (bench/floor/), built with node-gyp through npm so that npm's
// configuration (where Node's headers are) applies. Without it the echo figures run
// without that row and say so.
let floorBuilt = false;
function buildFloor() {
  const addon = join(benchDir, 'floor', 'build', 'Release', 'floor.node');
  const sources = ['floor.c', 'binding.gyp'].map((f) => join(benchDir, 'floor', f));
  if (newerThan(addon, sources)) {
    console.log('building the Node-loop floor addon (npm run build:bench-floor)');
    const r = spawnSync('npm', ['run', '--silent', 'build:bench-floor'], { cwd: root, encoding: 'utf8' });
    if (r.status !== 0) {
      pending.push(`Echo: the Node-loop floor addon did not build (npm run build:bench-floor): ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join(' | ')}`);
      return;
    }
  }
  floorBuilt = true;
}

/** wrk from the path, else installed from Debian's packages when we may; undefined when neither. */
function findWrk() {
  const which = () => spawnSync('sh', ['-c', 'command -v wrk'], { encoding: 'utf8' }).stdout.trim() || undefined;
  let wrk = which();
  if (wrk) return { wrk };
  const canApt = process.getuid?.() === 0 && spawnSync('sh', ['-c', 'command -v apt-get']).status === 0;
  if (!canApt) return { why: 'wrk is not installed and apt-get is not available to install it (install wrk to run this figure)' };
  console.log('installing wrk (apt-get install -y wrk)');
  const quiet = { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } };
  if (spawnSync('apt-get', ['install', '-y', '-qq', 'wrk'], quiet).status !== 0) {
    spawnSync('apt-get', ['update', '-qq'], quiet);
    spawnSync('apt-get', ['install', '-y', '-qq', 'wrk'], quiet);
  }
  wrk = which();
  return wrk ? { wrk } : { why: 'wrk could not be installed with apt-get' };
}

// ---- running one implementation ----

/**
 * Runs a program that prints one JSON line; kills it after `limitMs`. `onLine` sees
 * each line it writes to stderr as it comes (the load generator marks its window there).
 */
function runJson(cmd, args, limitMs, onLine) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => {
      const from = err.length;
      err += d;
      if (onLine) for (const line of err.slice(err.lastIndexOf('\n', from - 1) + 1).split('\n').slice(0, -1)) onLine(line);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').reverse().find((l) => l.startsWith('{'));
      if (code === 0 && line) {
        try {
          return resolve(JSON.parse(line));
        } catch (e) {
          return reject(new Error(`${relative(root, cmd) || cmd} ${args.join(' ')}: ${e.message}: ${line}`));
        }
      }
      reject(new Error(`${relative(root, cmd) || cmd} ${args.join(' ')}: ${signal ?? `exit ${code}`}\n${err.trim()}`));
    });
  });
}

/** Starts a server that prints "PORT <n>" when listening; resolves with its port and a stop(). */
function startServer(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const exited = new Promise((r) => child.on('close', r));
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(t);
      }
    };
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`${cmd} did not start listening within 10 s\n${err}`));
    }, 10_000);
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d) => {
      out += d;
      const m = /PORT (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ port: Number(m[1]), stop, cpu: () => treeCpuSeconds(child.pid), rss: () => treeRssBytes(child.pid) });
      }
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited (${code}) before listening\n${err}`));
    });
  });
}

const clockTicks = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** CPU seconds a process has used so far (all its threads), from /proc; NaN where there is none. */
function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicks; // utime, stime
  } catch {
    return NaN;
  }
}

/** A process and its descendants (node:cluster's workers are child processes), from /proc. */
function processTree(pid) {
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    try {
      for (const tid of readdirSync(`/proc/${pids[i]}/task`)) {
        const children = readFileSync(`/proc/${pids[i]}/task/${tid}/children`, 'utf8').trim();
        if (children) pids.push(...children.split(' ').map(Number));
      }
    } catch {
      // gone, or no /proc: what was found is what there is
    }
  }
  return pids;
}

/** CPU seconds of a server and every process it started (a multicore server's workers). */
function treeCpuSeconds(pid) {
  return processTree(pid).reduce((sum, p) => {
    const cpu = cpuSeconds(p);
    return p === pid || Number.isFinite(cpu) ? sum + cpu : sum; // a worker may have just exited
  }, 0);
}

/** Resident memory (bytes) of a server and every process it started; NaN where there is no /proc. */
function treeRssBytes(pid) {
  let total = 0;
  for (const p of processTree(pid)) {
    try {
      total += Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? NaN) * 1024;
    } catch {
      if (p === pid) return NaN;
    }
  }
  return total;
}

const node = (script, ...args) => [process.execPath, [join(distBench, script), ...args.map(String)]];

const cBin = (name) => join(buildDir, name);
const limit = () => Math.max(timing.measureMs + timing.warmupMs, timing.serverMeasureMs + timing.serverWarmupMs) + 30_000;
// A server lives through all rounds of its figure (four servers take turns), then is stopped.
const serverSeconds = () => Math.ceil((timing.serverWarmupMs + echoRounds * 4 * (timing.serverMeasureMs + 2000)) / 1000) + 60;

// ---- figures ----
//
// A figure runs a set of implementations (each a function returning a result
// object with a `value`) once per round, in an order that rotates each round, and
// compares some of them (subject / baseline) per round; the median ratio is reported.

const figures = [];
const pending = [];
const errors = [];

function dispatchFigures() {
  const impls = [
    ['C epoll_wait loop', 'c'],
    ['polling(callback)', 'polling'],
    ['polling() per-fd attachments', 'attachments'],
    ['for await (single)', 'iterate'],
    ['for await (batch)', 'iterate-batch'],
    ['epoll package', 'epoll-package'],
  ];
  for (const fds of [1, 100, 1000]) {
    const implementations = impls.map(([label, how]) => ({
      label,
      run: async () => {
        const r =
          how === 'c'
            ? await runJson(cBin('dispatch'), [fds, timing.measureMs, timing.warmupMs], limit())
            : await runJson(...node('dispatch.js', how, fds, timing.measureMs, timing.warmupMs), limit());
        if (r.skipped) return r;
        // Events per CPU-second of the process: context that the machine's load moves less.
        const efficiency = r.events / r.cpu_seconds;
        return { ...r, value: r.rate, efficiency, note: `${fmtValue(efficiency, '')}/CPU-s` };
      },
    }));
    const c = 'C epoll_wait loop';
    figures.push({
      group: 'dispatch',
      title: `Dispatch, ${fds} fd${fds === 1 ? '' : 's'}`,
      unit: 'events/s',
      implementations,
      comparisons: [
        { subject: 'polling(callback)', baseline: c, target: fds === 100 ? { op: '>=', ratio: 0.75 } : undefined },
        { subject: 'polling(callback)', baseline: 'epoll package' },
        { subject: 'polling() per-fd attachments', baseline: c },
        { subject: 'for await (single)', baseline: c },
        { subject: 'for await (batch)', baseline: c },
      ],
    });
  }
}

/** The netpoll echo server, once the socket toolkit provides one. */
function netpollEchoServer() {
  for (const script of [join(distBench, 'netpoll_echo.js'), join(root, 'dist', 'examples', 'echo.js')]) {
    if (existsSync(script)) return script;
  }
  return undefined;
}

function netpollHttpServer() {
  for (const script of [join(distBench, 'netpoll_http.js'), join(root, 'dist', 'examples', 'http.js')]) {
    if (existsSync(script)) return script;
  }
  return undefined;
}

/**
 * One echo server under bench/loadgen.c with `conns` connections: started once per figure and
 * warmed up, then measured once per round (with its CPU time per message).
 */
function echoImplementation(label, how, conns, { measureMs = timing.serverMeasureMs, settleMs = quick ? 30 : 200 } = {}) {
  let server;
  const loadgen = (measureMs, warmupMs, onLine) =>
    runJson(cBin('loadgen'), [server.port, conns, measureMs, warmupMs, 64], limit() + measureMs, onLine);
  const stop = async () => {
    const s = server;
    server = undefined;
    await s?.stop();
  };
  return {
    label,
    run: async () => {
      try {
        if (server === undefined) {
          server = await startServer(...how());
          await loadgen(100, timing.serverWarmupMs); // warm-up: JIT, buffers
        }
        // The server's CPU time over the measured window: per message, it moves much
        // less than msgs/s with what else the machine runs.
        let cpuFrom = NaN;
        let cpuTo = NaN;
        let rss = NaN;
        // Time for the connections to open and settle (200 ms), then the measured window.
        const r = await loadgen(measureMs, settleMs, (line) => {
          if (line === 'measuring') cpuFrom = server.cpu();
          if (line === 'measured') {
            cpuTo = server.cpu();
            rss = server.rss(); // with every connection still open
          }
        });
        const cpuUs = ((cpuTo - cpuFrom) / r.msgs) * 1e6;
        return {
          ...r,
          value: r.rate,
          efficiency: 1e6 / cpuUs,
          rss,
          note: `p50 ${fmtUs(r.p50_us)}, p99 ${fmtUs(r.p99_us)}, server ${cpuUs.toFixed(1)} µs CPU/msg${Number.isFinite(rss) ? `, RSS ${fmtValue(rss, 'MB')}` : ''}`,
        };
      } catch (e) {
        await stop(); // the next round starts a fresh server
        throw e;
      }
    },
    finish: stop,
  };
}

function echoFigures() {
  const netpollEcho = netpollEchoServer();
  if (!netpollEcho) pending.push('Echo: the netpoll echo server needs the socket toolkit (listenTCP/accept), which is not on this branch yet; only the baselines ran.');
  const floor = floorBuilt ? [['Node-loop floor', () => node('floor_echo.js', serverSeconds())]] : [];
  const servers = [
    ['C epoll echo server', () => [cBin('echo_server'), [serverSeconds()]]],
    ['node:net', () => node('net_echo.js', serverSeconds())],
    ...floor,
    ...(netpollEcho ? [['netpoll', () => [process.execPath, [netpollEcho, serverSeconds()]]]] : []),
  ];
  for (const conns of [1, 100, 1000]) {
    figures.push({
      group: 'echo',
      title: `Echo, ${conns} connection${conns === 1 ? '' : 's'}`,
      unit: 'msgs/s',
      roundCount: echoRounds,
      implementations: servers.map(([label, how]) => echoImplementation(label, how, conns)),
      comparisons: netpollEcho
        ? [
            { subject: 'netpoll', baseline: 'node:net', target: conns === 100 ? { op: '>=', ratio: 1.45 } : undefined },
            { subject: 'netpoll', baseline: 'C epoll echo server', target: conns <= 100 ? { op: '>=', ratio: 0.9 } : undefined },
            // What any server on Node's loop can reach against C, and where netpoll stands to that.
            ...(floor.length
              ? [
                  { subject: 'Node-loop floor', baseline: 'C epoll echo server', context: true },
                  { subject: 'netpoll', baseline: 'Node-loop floor', context: true },
                ]
              : []),
          ]
        : [{ subject: 'node:net', baseline: 'C epoll echo server', context: true }],
    });
  }
}

/** One HTTP server under `wrk -t1 -c100`: a fresh server per round, with its CPU time per request. */
function wrkImplementation(label, how, wrkPath) {
  return {
    label,
    run: async () => {
      const server = await startServer(...how());
      try {
        const url = `http://127.0.0.1:${server.port}/`;
        const wrk = (seconds) => runText(wrkPath, ['-t1', '-c100', `-d${seconds}s`, '--latency', url], seconds * 1000 + 30_000);
        if (!quick) await wrk(1); // warm-up: JIT, connections, buffers
        const cpuFrom = server.cpu();
        const out = await wrk(timing.wrkSeconds);
        const cpu = server.cpu() - cpuFrom;
        const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
        const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
        if (!Number.isFinite(rps)) throw new Error(`could not read wrk's output:\n${out}`);
        const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(out)?.[0];
        const p50 = /50%\s+([\d.]+\w+)/.exec(out)?.[1];
        const p99 = /99%\s+([\d.]+\w+)/.exec(out)?.[1];
        const cpuUs = (cpu / requests) * 1e6;
        return {
          value: rps,
          efficiency: 1e6 / cpuUs,
          note: `p50 ${p50}, p99 ${p99}, server ${cpuUs.toFixed(1)} µs CPU/request${errors ? `; ${errors}` : ''}`,
        };
      } finally {
        await server.stop();
      }
    },
  };
}

function httpFigures() {
  const netpollHttp = netpollHttpServer();
  const found = findWrk();
  if (!found.wrk) {
    pending.push(`HTTP: skipped: ${found.why}.`);
    return;
  }
  if (!netpollHttp) pending.push('HTTP: the netpoll HTTP example needs the socket toolkit, which is not on this branch yet; only node:http ran.');
  const servers = [
    ['node:http', () => node('node_http.js', serverSeconds())],
    ...(netpollHttp ? [['netpoll', () => [process.execPath, [netpollHttp, serverSeconds()]]]] : []),
  ];
  figures.push({
    group: 'http',
    title: 'HTTP plaintext, 100 connections (wrk)',
    unit: 'requests/s',
    implementations: servers.map(([label, how]) => wrkImplementation(label, how, found.wrk)),
    comparisons: netpollHttp ? [{ subject: 'netpoll', baseline: 'node:http', target: { op: '>=', ratio: 2 } }] : [],
  });
}

function runText(cmd, args, limitMs) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} exited ${code}:\n${out}`));
    });
  });
}

function triggerFigures() {
  const impl = (label, name, mode, pick) => ({
    label,
    run: async () => {
      const r = await runJson(...node('trigger.js', name, mode, timing.measureMs, timing.warmupMs), limit());
      return { ...r, ...pick(r) };
    },
  });
  const perCpu = (r) => ({ value: r.rate, efficiency: r.tasks / r.cpu_seconds, note: `${fmtValue(r.tasks / r.cpu_seconds, '')}/CPU-s` });
  figures.push({
    group: 'trigger',
    title: 'trigger() throughput, with its promise',
    unit: 'tasks/s',
    implementations: [
      impl('trigger()', 'trigger', 'throughput', perCpu),
      impl('setImmediate + promise', 'setImmediate', 'throughput', perCpu),
    ],
    comparisons: [{ subject: 'trigger()', baseline: 'setImmediate + promise', target: { op: '>=', ratio: 1.9 }, absTarget: { op: '>=', value: 4e6 } }],
  });
  figures.push({
    group: 'trigger',
    title: 'trigger() wake-to-run latency, p50',
    unit: 'µs',
    lowerIsBetter: true,
    implementations: [
      impl('trigger()', 'trigger', 'latency', (r) => ({ value: r.p50_us, note: `p99 ${fmtUs(r.p99_us)}` })),
      impl('setImmediate + promise', 'setImmediate', 'latency', (r) => ({ value: r.p50_us, note: `p99 ${fmtUs(r.p99_us)}` })),
    ],
    comparisons: [{ subject: 'trigger()', baseline: 'setImmediate + promise', target: { op: '<=', ratio: 1 } }],
  });
}

function remoteFigures() {
  const impl = (label, name, mode, producers, param, pick) => ({
    label,
    run: async () => {
      const r = await runJson(...node('remote.js', name, mode, producers, param, timing.measureMs, timing.warmupMs), limit());
      return { ...r, ...pick(r) };
    },
  });
  const rate = (r) => ({ value: r.rate });
  for (const producers of [1, 4]) {
    for (const [param, what] of [['fd', 'an fd number'], ['buffer', 'a 1 KiB Buffer']]) {
      figures.push({
        group: 'remote',
        title: `Cross-thread trigger, ${producers} producer thread${producers === 1 ? '' : 's'}, ${what}`,
        unit: 'tasks/s',
        implementations: [
          impl('remote trigger()', 'remote', 'throughput', producers, param, rate),
          impl('MessagePort', 'messageport', 'throughput', producers, param, rate),
        ],
        comparisons: [{ subject: 'remote trigger()', baseline: 'MessagePort', target: { op: '>=', ratio: 3 } }],
      });
    }
  }
  // Against one-way postMessage (no reply message): issue 18's targets.
  figures.push({
    group: 'remote',
    title: 'Cross-thread hand-off, no reply, 1 producer thread, an fd number',
    unit: 'tasks/s',
    implementations: [
      impl('remote post()', 'remote', 'handoff', 1, 'fd', rate),
      impl('one-way MessagePort', 'messageport', 'handoff', 1, 'fd', rate),
    ],
    comparisons: [{ subject: 'remote post()', baseline: 'one-way MessagePort', target: { op: '>=', ratio: 3 } }],
  });
  figures.push({
    group: 'remote',
    title: 'Cross-thread trigger, 200,000 in flight, 1 producer thread, an fd number',
    unit: 'tasks/s',
    implementations: [
      impl('remote trigger()', 'remote', 'inflight', 1, 'fd', rate),
      impl('one-way MessagePort', 'messageport', 'inflight', 1, 'fd', rate),
    ],
    comparisons: [{ subject: 'remote trigger()', baseline: 'one-way MessagePort', target: { op: '>=', ratio: 2 } }],
  });
  for (const [stat, key, other] of [['p50', 'p50_us', 'p99_us'], ['p99', 'p99_us', 'p50_us']]) {
    const pick = (r) => ({ value: r[key], note: `${stat === 'p50' ? 'p99' : 'p50'} ${fmtUs(r[other])}` });
    figures.push({
      group: 'remote',
      title: `Cross-thread round trip (trigger and await), ${stat}`,
      unit: 'µs',
      lowerIsBetter: true,
      implementations: [
        impl('remote trigger()', 'remote', 'latency', 1, 'fd', pick),
        impl('MessagePort', 'messageport', 'latency', 1, 'fd', pick),
        // Two threads asleep in epoll_wait passing one wake each way: what any design pays
        // whose threads sleep while they wait (both above do), so how close 0.5× can come.
        {
          label: 'C two-wake floor',
          run: async () => {
            const r = await runJson(cBin('pingpong'), [timing.measureMs, timing.warmupMs], limit());
            return { ...r, ...pick(r) };
          },
        },
      ],
      comparisons: [
        { subject: 'remote trigger()', baseline: 'MessagePort', target: { op: '<=', ratio: 0.5 } },
        { subject: 'MessagePort', baseline: 'C two-wake floor' },
        { subject: 'remote trigger()', baseline: 'C two-wake floor' },
      ],
    });
  }
}

/** One worker per CPU for every multicore design, so that they compare like for like. */
const multicoreWorkers = os.availableParallelism();

function reactorFigures() {
  const designs = [
    ['reactor (acceptor + remote trigger)', 'reactor'],
    ['node:cluster', 'cluster'],
    // SO_REUSEPORT balances connections on Linux only (macOS hands them all to one socket).
    ...(process.platform === 'linux' ? [['multicore (SO_REUSEPORT)', 'multicore']] : []),
  ];
  const server = (design, kind) => node('multicore_server.js', serverSeconds(), design, kind, multicoreWorkers);
  const comparisons = (target) => [
    { subject: 'reactor (acceptor + remote trigger)', baseline: 'node:cluster', target: target ? { op: '>=', ratio: 1.5 } : undefined },
    ...(process.platform === 'linux'
      ? [{ subject: 'reactor (acceptor + remote trigger)', baseline: 'multicore (SO_REUSEPORT)', target: target ? { op: '>=', ratio: 0.9 } : undefined }]
      : []),
  ];
  const found = findWrk();
  if (!found.wrk) {
    pending.push(`Reactor HTTP: skipped: ${found.why}.`);
  } else {
    for (const conns of [100, 1000]) figures.push({
      group: 'reactor',
      title: `Reactor HTTP plaintext, ${multicoreWorkers} workers, ${conns} connections (wrk)`,
      unit: 'requests/s',
      implementations: designs.map(([label, design]) => ({
        label,
        run: async () => {
          const s = await startServer(...server(design, 'http'));
          try {
            const url = `http://127.0.0.1:${s.port}/`;
            const wrk = (seconds) => runText(found.wrk, ['-t1', `-c${conns}`, `-d${seconds}s`, '--latency', url], seconds * 1000 + 30_000);
            if (!quick) await wrk(1);
            const out = await wrk(timing.wrkSeconds);
            const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
            if (!Number.isFinite(rps)) throw new Error(`could not read wrk's output:\n${out}`);
            const errs = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(out)?.[0];
            const p50 = /50%\s+([\d.]+\w+)/.exec(out)?.[1];
            const p99 = /99%\s+([\d.]+\w+)/.exec(out)?.[1];
            return { value: rps, note: `p50 ${p50}, p99 ${p99}${errs ? `; ${errs}` : ''}` };
          } finally {
            await s.stop();
          }
        },
      })),
      comparisons: comparisons(true),
    });
  }
  for (const conns of [100, 1000]) {
    figures.push({
      group: 'reactor',
      title: `Reactor echo, ${multicoreWorkers} workers, ${conns} connections`,
      unit: 'msgs/s',
      roundCount: echoRounds,
      implementations: designs.map(([label, design]) => {
        let s;
        const loadgen = (measureMs, warmupMs) => runJson(cBin('loadgen'), [s.port, conns, measureMs, warmupMs, 64], limit());
        const stop = async () => {
          const t = s;
          s = undefined;
          await t?.stop();
        };
        return {
          label,
          run: async () => {
            try {
              if (s === undefined) {
                s = await startServer(...server(design, 'echo'));
                await loadgen(100, timing.serverWarmupMs);
              }
              const r = await loadgen(timing.serverMeasureMs, quick ? 30 : 200);
              return { ...r, value: r.rate, note: `p50 ${fmtUs(r.p50_us)}, p99 ${fmtUs(r.p99_us)}` };
            } catch (e) {
              await stop();
              throw e;
            }
          },
          finish: stop,
        };
      }),
      comparisons: comparisons(true),
    });
  }
}

/** A program on the path, or undefined. */
function which(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim() || undefined;
}

/** Bun (for its baselines), found or installed once per run; --quick never installs it. */
let bunFound;
function findBunOnce() {
  bunFound ??= findBun({ install: !quick, log: (m) => console.log(m) });
  if (!bunFound.bun && !bunFound.reported) {
    bunFound.reported = true;
    pending.push(`netpoll/server Bun rows: skipped: ${bunFound.why}${quick ? ' (--quick does not install Bun; `node scripts/fetch-bun.mjs` does)' : ''}.`);
  }
  return bunFound.bun;
}

/** A Bun baseline server (bench/bun_server.mjs), run by Bun itself. */
const viaBun = (bun, kind) => () => [bun, [join(benchDir, 'bun_server.mjs'), serverSeconds(), kind]];

/**
 * Keeps every result (or error) of `impl`'s rounds, in order, so that a second figure can
 * report another quantity of the same runs (the server's RSS beside its throughput).
 */
function recorded(impl) {
  const records = [];
  return {
    ...impl,
    records,
    run: async () => {
      try {
        const r = await impl.run();
        records.push({ r });
        return r;
      } catch (e) {
        records.push({ e });
        throw e;
      }
    },
  };
}

/** A figure of another quantity (`pick` of each round's result) of the same runs as `source`. */
function derivedFigure(source, { pick, ...figure }) {
  return {
    ...figure,
    group: source.group,
    roundCount: source.roundCount,
    implementations: source.implementations.map((impl) => ({
      label: impl.label,
      run: async () => {
        const record = impl.records.shift();
        if (!record) throw new Error('no run of its own figure to report');
        if (record.e) throw record.e;
        return record.r.skipped ? record.r : pick(record.r);
      },
    })),
  };
}

/** netpoll/server (issue 19): echo, Redis protocol, HTTP and idle connections against baselines. */
function serverFigures() {
  const script = (name) => join(distBench, name);
  const viaServer = (name, ...args) => () => node(name, serverSeconds(), ...args);
  const bun = findBunOnce();
  figures.push({
    group: 'server',
    title: 'netpoll/server echo, 64 B, 100 connections',
    unit: 'msgs/s',
    roundCount: echoRounds,
    implementations: [
      echoImplementation('netpoll/server', viaServer('server_echo.js'), 100),
      echoImplementation('raw poller (examples/poller-echo.ts)', viaServer('netpoll_echo.js'), 100),
      echoImplementation('node:net', viaServer('net_echo.js'), 100),
      ...(bun ? [echoImplementation('Bun.listen', viaBun(bun, 'echo'), 100)] : []),
    ],
    comparisons: [
      { subject: 'netpoll/server', baseline: 'raw poller (examples/poller-echo.ts)', target: { op: '>=', ratio: 0.9 } },
      { subject: 'netpoll/server', baseline: 'node:net', target: { op: '>=', ratio: 1.5 } },
      ...(bun ? [{ subject: 'netpoll/server', baseline: 'Bun.listen', context: true }] : []),
    ],
  });

  // 10,000 connections, each with one message in flight: a round trip takes as long as the
  // server needs for all the others, so the window is longer than the 100-connection one's.
  const manyConns = quick ? 500 : 10_000;
  const fdLimit = Number(spawnSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout.trim());
  const fdsOk = !(Number.isFinite(fdLimit) && fdLimit < manyConns + 200);
  if (!fdsOk) pending.push(`netpoll/server ${manyConns} connections: skipped: the hard open-file limit (ulimit -Hn) is ${fdLimit}, below the ${manyConns + 200} that ${manyConns} connections need.`);
  else {
    const many = { measureMs: quick ? 250 : 3000, settleMs: quick ? 100 : 1000 };
    const echoMany = {
      group: 'server',
      title: `netpoll/server echo, 64 B, ${manyConns.toLocaleString('en')} connections`,
      unit: 'msgs/s',
      implementations: [
        echoImplementation('netpoll/server', viaServer('server_echo.js'), manyConns, many),
        ...(bun ? [echoImplementation('Bun.listen', viaBun(bun, 'echo'), manyConns, many)] : []),
        echoImplementation('raw poller (examples/poller-echo.ts)', viaServer('netpoll_echo.js'), manyConns, many),
        echoImplementation('node:net', viaServer('net_echo.js'), manyConns, many),
      ].map(recorded),
      comparisons: [
        ...(bun ? [{ subject: 'netpoll/server', baseline: 'Bun.listen', target: { op: '>=', ratio: 1 } }] : []),
        { subject: 'netpoll/server', baseline: 'raw poller (examples/poller-echo.ts)', context: true },
        { subject: 'netpoll/server', baseline: 'node:net', context: true },
      ],
    };
    figures.push(echoMany);
    figures.push(
      derivedFigure(echoMany, {
        title: `netpoll/server echo, ${manyConns.toLocaleString('en')} connections, server RSS`,
        unit: 'MB',
        lowerIsBetter: true,
        pick: (r) => (Number.isFinite(r.rss) ? { value: r.rss } : { skipped: 'no /proc/<pid>/status to read the RSS from' }),
        comparisons: [
          ...(bun ? [{ subject: 'netpoll/server', baseline: 'Bun.listen', target: { op: '<=', ratio: 1 } }] : []),
          { subject: 'netpoll/server', baseline: 'raw poller (examples/poller-echo.ts)', context: true },
          { subject: 'netpoll/server', baseline: 'node:net', context: true },
        ],
      }),
    );
  }

  const redisBenchmark = which('redis-benchmark');
  if (!redisBenchmark) {
    pending.push('netpoll/server Redis protocol: skipped: redis-benchmark is not installed (Debian: redis-tools).');
  } else {
    const requests = quick ? 50_000 : 1_000_000;
    const redisImplementation = (label, name) => ({
      label,
      run: async () => {
        const server = await startServer(...node(name, serverSeconds()));
        try {
          const bench = (n) =>
            runText(redisBenchmark, ['-h', '127.0.0.1', '-p', String(server.port), '-P', '16', '-c', '50', '-q', '-t', 'set,get', '-n', String(n)], 120_000);
          if (!quick) await bench(200_000); // warm-up: JIT, connections
          const cpuFrom = server.cpu();
          const out = (await bench(requests)).replace(/\r/g, '\n');
          const cpu = server.cpu() - cpuFrom;
          const set = Number(/^SET: ([\d.]+) requests per second/m.exec(out)?.[1]);
          const get = Number(/^GET: ([\d.]+) requests per second/m.exec(out)?.[1]);
          if (!(set > 0 && get > 0)) throw new Error(`could not read redis-benchmark's output:\n${out.trim().slice(-400)}`);
          // Both tests' requests over both tests' time.
          const rate = 2 / (1 / set + 1 / get);
          const cpuUs = (cpu / (2 * requests)) * 1e6;
          return { value: rate, efficiency: 1e6 / cpuUs, note: `SET ${fmtValue(set, '')}/s, GET ${fmtValue(get, '')}/s, server ${cpuUs.toFixed(2)} µs CPU/request` };
        } finally {
          await server.stop();
        }
      },
    });
    figures.push({
      group: 'server',
      title: 'netpoll/server Redis protocol (redis-benchmark -P 16 -c 50, SET and GET)',
      unit: 'requests/s',
      implementations: [redisImplementation('netpoll/server (examples/redis.ts)', 'server_redis.js'), redisImplementation('node:net, same handler', 'net_redis.js')],
      comparisons: [{ subject: 'netpoll/server (examples/redis.ts)', baseline: 'node:net, same handler', target: { op: '>=', ratio: 1.3 } }],
    });
  }

  const found = findWrk();
  if (!found.wrk) {
    pending.push(`netpoll/server HTTP: skipped: ${found.why}.`);
  } else {
    figures.push({
      group: 'server',
      title: 'netpoll/server HTTP plaintext, 100 connections (wrk)',
      unit: 'requests/s',
      implementations: [
        wrkImplementation('netpoll/server', viaServer('server_http.js'), found.wrk),
        wrkImplementation('node:http', viaServer('node_http.js'), found.wrk),
        ...(bun ? [wrkImplementation('Bun.serve', viaBun(bun, 'http'), found.wrk)] : []),
      ],
      comparisons: [
        { subject: 'netpoll/server', baseline: 'node:http', target: { op: '>=', ratio: 2 } },
        ...(bun ? [{ subject: 'netpoll/server', baseline: 'Bun.serve', target: { op: '>=', ratio: 1.2 } }] : []),
      ],
    });
    // Two event loops (worker threads) against two node:cluster worker processes.
    figures.push({
      group: 'server',
      title: 'netpoll/server multicore HTTP plaintext, 2 loops, 100 connections (wrk)',
      unit: 'requests/s',
      implementations: [
        wrkImplementation('netpoll/server (multicore, numEventLoop 2)', viaServer('server_http.js', 'multicore', 2), found.wrk),
        wrkImplementation('node:cluster, 2 workers', viaServer('multicore_server.js', 'cluster', 'http', 2), found.wrk),
      ],
      comparisons: [{ subject: 'netpoll/server (multicore, numEventLoop 2)', baseline: 'node:cluster, 2 workers', target: { op: '>=', ratio: 1.5 } }],
    });
  }

  // Each side holds its connections' fds, and the client process as many again.
  const conns = quick ? 500 : 10_000;
  const softLimit = Number(spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim());
  if (Number.isFinite(softLimit) && softLimit < conns + 200) {
    pending.push(`netpoll/server idle connections: skipped: the open-file limit (ulimit -n) is ${softLimit}, below the ${conns + 200} that ${conns} connections need.`);
    return;
  }
  const idleMs = quick ? 250 : 3000;
  const idleImplementation = (label, kind) => ({
    label,
    run: async () => {
      const r = await runJson(process.execPath, ['--expose-gc', script('server_idle.js'), kind, conns, idleMs], 120_000);
      if (r.connections !== conns) throw new Error(`${r.connections} of ${conns} connections were open at the end`);
      return { ...r, value: r.bytes_per_conn, note: `RSS growth; ${r.idle_cpu_ms_per_s.toFixed(2)} ms CPU per second while idle` };
    },
  });
  const idle = {
    group: 'server',
    title: `netpoll/server ${conns.toLocaleString('en')} idle connections with an idle timeout, memory per connection`,
    unit: 'bytes',
    lowerIsBetter: true,
    implementations: [idleImplementation('netpoll/server (idleTimeout)', 'server'), idleImplementation('node:net (socket.setTimeout)', 'net')].map(recorded),
    comparisons: [{ subject: 'netpoll/server (idleTimeout)', baseline: 'node:net (socket.setTimeout)', context: true }],
  };
  figures.push(idle);
  // The timer wheel arms one timer for its earliest bucket and runs nothing until then.
  figures.push(
    derivedFigure(idle, {
      title: `netpoll/server ${conns.toLocaleString('en')} idle connections with an idle timeout, CPU while idle`,
      unit: 'ms CPU/s',
      lowerIsBetter: true,
      pick: (r) => ({ value: r.idle_cpu_ms_per_s }),
      comparisons: [{ subject: 'netpoll/server (idleTimeout)', baseline: 'node:net (socket.setTimeout)', absTarget: { op: '<=', value: 1 } }],
    }),
  );
}

function memoryFigures() {
  const budget = 256;
  figures.push({
    group: 'memory',
    title: 'Memory per registered fd, 10,000 fds',
    unit: 'bytes',
    lowerIsBetter: true,
    implementations: [
      {
        label: 'netpoll',
        run: async () => {
          const r = await runJson(process.execPath, ['--expose-gc', join(distBench, 'memory.js'), 10_000], 60_000);
          return { ...r, value: r.bytes_per_fd, note: `JS heap ${r.heap_per_fd.toFixed(0)} B + native ${r.native_per_fd.toFixed(0)} B (RSS growth ${r.rss_per_fd.toFixed(0)} B)` };
        },
      },
      { label: 'budget', run: async () => ({ value: budget }) },
    ],
    comparisons: [{ subject: 'netpoll', baseline: 'budget', target: { op: '<=', ratio: 1 } }],
  });
}

// ---- statistics and formatting ----

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function fmtUs(us) {
  return us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(1)} µs`;
}

function fmtValue(v, unit) {
  if (unit === 'µs') return fmtUs(v);
  if (unit === 'bytes') return `${v.toFixed(0)} B`;
  if (unit === 'MB') return `${(v / 1e6).toFixed(1)} MB`;
  if (unit === 'ms CPU/s') return `${v.toFixed(2)} ms CPU/s`;
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
  return v.toFixed(0);
}

/** A value with its unit, where fmtValue does not already say it. */
function withUnit(v, unit) {
  return ['bytes', 'µs', 'MB', 'ms CPU/s'].includes(unit) ? fmtValue(v, unit) : `${fmtValue(v, unit)} ${unit}`;
}

function fmtRatio(r) {
  return r === undefined ? '—' : `${r.toFixed(r >= 10 ? 0 : 2)}×`;
}

function meets(target, ratio) {
  if (!target) return undefined;
  if (target.op === '>=') return ratio >= target.ratio;
  if (target.op === '>') return ratio > target.ratio;
  return ratio <= target.ratio;
}

function meetsAbs(target, value) {
  return target.op === '<=' ? value <= target.value : value >= target.value;
}

async function runFigure(fig, results) {
  fig.rounds = [];
  try {
    await runRounds(fig);
  } finally {
    for (const impl of fig.implementations) await impl.finish?.();
  }
  summarize(fig, results);
}

async function runRounds(fig) {
  for (let r = 0; r < (fig.roundCount ?? rounds); r++) {
    const order = fig.implementations.map((_, i) => fig.implementations[(i + r) % fig.implementations.length]);
    const round = {};
    for (const impl of order) {
      try {
        round[impl.label] = await impl.run();
      } catch (e) {
        const error = String(e.message ?? e).split('\n').slice(0, 3).join(' | ');
        errors.push(`${fig.title} | ${impl.label}: ${error}`);
        round[impl.label] = { error };
      }
    }
    fig.rounds.push(round);
  }
}

function summarize(fig, results) {
  const abs = {};
  for (const impl of fig.implementations) {
    const got = fig.rounds.map((round) => round[impl.label]);
    const values = got.filter((g) => typeof g.value === 'number').map((g) => g.value);
    const failed = got.find((g) => g.skipped || g.error);
    if (values.length) {
      const value = median(values);
      // The details (latencies, CPU) of the round closest to the median.
      const typical = got.filter((g) => typeof g.value === 'number').reduce((a, b) => (Math.abs(b.value - value) < Math.abs(a.value - value) ? b : a));
      abs[impl.label] = { value, note: typical.note, samples: values };
    } else {
      abs[impl.label] = { skipped: failed?.skipped ?? failed?.error ?? 'no result' };
    }
  }
  fig.abs = abs;
  for (const cmp of fig.comparisons) {
    const ratios = fig.rounds
      .map((round) => [round[cmp.subject]?.value, round[cmp.baseline]?.value])
      .filter(([s, b]) => typeof s === 'number' && typeof b === 'number' && b > 0)
      .map(([s, b]) => s / b);
    // The same ratio of work per CPU-second, where both sides report it.
    const cpuRatios = fig.rounds
      .map((round) => [round[cmp.subject]?.efficiency, round[cmp.baseline]?.efficiency])
      .filter(([s, b]) => Number.isFinite(s) && Number.isFinite(b) && b > 0)
      .map(([s, b]) => s / b);
    const row = { figure: fig, ...cmp, ratios, cpuRatio: cpuRatios.length ? median(cpuRatios) : undefined };
    if (ratios.length) {
      row.ratio = median(ratios);
      row.min = Math.min(...ratios);
      row.max = Math.max(...ratios);
      row.met = meets(cmp.target, row.ratio);
      if (cmp.absTarget && row.met !== false) row.met = meetsAbs(cmp.absTarget, abs[cmp.subject].value);
    } else if (cmp.absTarget && typeof abs[cmp.subject]?.value === 'number') {
      // No ratio (a baseline of 0 or none), but the subject's absolute target can still be judged.
      row.met = meetsAbs(cmp.absTarget, abs[cmp.subject].value);
    } else {
      row.skipped = abs[cmp.subject].skipped ?? abs[cmp.baseline].skipped;
    }
    results.push(row);
  }
  for (const [label, a] of Object.entries(abs)) {
    const shown = a.skipped ? `skipped (${a.skipped})` : `${withUnit(a.value, fig.unit)}${a.note ? ` (${a.note})` : ''}`;
    console.log(`  ${fig.title} | ${label}: ${shown}`);
  }
}

function targetText(row) {
  const parts = [];
  if (row.target) parts.push(`${row.target.op.replace('>=', '≥').replace('<=', '≤')} ${row.target.ratio}×`);
  if (row.absTarget) parts.push(`${row.absTarget.op.replace('>=', '≥').replace('<=', '≤')} ${withUnit(row.absTarget.value, row.figure.unit)}`);
  if (!parts.length && row.context) parts.push('none (context)');
  return parts.join(', ');
}

function tableRows(results) {
  return results.map((row) => {
    const fig = row.figure;
    const s = fig.abs[row.subject];
    const b = fig.abs[row.baseline];
    const absText = (a) => (a.skipped ? 'skipped' : `${withUnit(a.value, fig.unit)}${a.note ? ` (${a.note})` : ''}`);
    const verdict = row.skipped ? `skipped: ${row.skipped}` : row.met === undefined ? '' : row.met ? 'met' : 'NOT met';
    return {
      group: fig.group,
      // c: context only (no target, not drawn); l: lower is better.
      flags: `${row.context ? 'c' : ''}${fig.lowerIsBetter ? 'l' : ''}`,
      figure: fig.title,
      subject: row.subject,
      baseline: row.baseline,
      ratio: fmtRatio(row.ratio),
      cpuRatio: row.cpuRatio === undefined ? '' : fmtRatio(fig.lowerIsBetter ? 1 / row.cpuRatio : row.cpuRatio),
      spread: row.ratios.length > 1 ? `${row.min.toFixed(2)}–${row.max.toFixed(2)}` : '',
      target: targetText(row),
      verdict,
      subjectAbs: absText(s),
      baselineAbs: absText(b),
    };
  });
}

function printTable(rows) {
  const cols = ['figure', 'subject', 'baseline', 'ratio', 'spread', 'target', 'verdict', 'cpuRatio', 'subjectAbs', 'baselineAbs'];
  const head = { figure: 'figure', subject: 'netpoll', baseline: 'baseline', ratio: 'ratio', spread: 'rounds', target: 'target', verdict: '', cpuRatio: 'per CPU', subjectAbs: 'netpoll (abs)', baselineAbs: 'baseline (abs)' };
  const width = Object.fromEntries(cols.map((c) => [c, Math.min(48, Math.max(head[c].length, ...rows.map((r) => String(r[c]).length)))]));
  const line = (r) => cols.map((c) => String(r[c]).slice(0, 48).padEnd(width[c])).join('  ');
  console.log(`\n${line(head)}\n${cols.map((c) => '-'.repeat(width[c])).join('  ')}`);
  for (const r of rows) console.log(line(r));
}

function machine() {
  let model = os.cpus()[0]?.model ?? 'unknown';
  try {
    const lscpu = execFileSync('lscpu', { encoding: 'utf8' });
    model = /Model name:\s*(.*)/.exec(lscpu)?.[1]?.trim() ?? model;
    const hv = /Hypervisor vendor:\s*(.*)/.exec(lscpu)?.[1]?.trim();
    if (hv) model += ` (virtual machine, ${hv})`;
  } catch {
    // no lscpu: os.cpus() it is
  }
  return {
    cpu: model,
    cores: os.availableParallelism?.() ?? os.cpus().length,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`,
  };
}

// ---- the report ----

function escapeXml(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A horizontal bar per ratio on a log scale centred on 1×, with the target as a red tick. */
function svgChart(tableRows) {
  // From the table's own cells, so that rows kept from an earlier run (--only) are drawn too.
  const number = (text) => Number(/([\d.]+)×/.exec(text)?.[1] ?? NaN);
  const rows = tableRows
    .filter((r) => !r.flags.includes('c') && Number.isFinite(number(r.ratio)))
    .map((r) => ({
      label: `${r.figure}: ${r.subject} vs ${r.baseline}`,
      ratio: number(r.ratio),
      target: Number.isFinite(number(r.target)) ? { ratio: number(r.target) } : undefined,
      met: r.verdict === 'met' ? true : r.verdict === 'NOT met' ? false : undefined,
      lowerIsBetter: r.flags.includes('l'),
    }));
  const label = (r) => r.label;
  const labelWidth = 430;
  const chartWidth = 420;
  const rowHeight = 22;
  const top = 40;
  const height = top + rows.length * rowHeight + 40;
  const width = labelWidth + chartWidth + 90;
  const all = rows.flatMap((r) => [r.ratio, r.target?.ratio ?? 1]);
  const lo = Math.min(0.1, 10 ** Math.floor(Math.log10(Math.min(...all, 1))));
  const hi = Math.max(10, 10 ** Math.ceil(Math.log10(Math.max(...all, 1))));
  const x = (v) => labelWidth + ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * chartWidth;
  const parts = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="100%" height="100%" fill="#fff"/>`);
  parts.push(`<text x="10" y="20" font-size="14" font-weight="bold">netpoll / baseline (log scale; &gt; 1× is better except latency and memory; red tick: target)</text>`);
  for (let p = Math.log10(lo); p <= Math.log10(hi) + 1e-9; p++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** p;
      if (v < lo || v > hi) continue;
      const gx = x(v).toFixed(1);
      parts.push(`<line x1="${gx}" y1="${top - 6}" x2="${gx}" y2="${height - 30}" stroke="${v === 1 ? '#333' : '#ddd'}"/>`);
      parts.push(`<text x="${gx}" y="${height - 14}" text-anchor="middle" fill="#555">${v >= 1 ? v : v.toFixed(1)}×</text>`);
    }
  }
  rows.forEach((r, i) => {
    const y = top + i * rowHeight;
    const x0 = x(1);
    const x1 = x(r.ratio);
    const good = r.met ?? (r.lowerIsBetter ? r.ratio <= 1 : r.ratio >= 1);
    parts.push(`<text x="${labelWidth - 8}" y="${y + 14}" text-anchor="end">${escapeXml(label(r))}</text>`);
    parts.push(`<rect x="${Math.min(x0, x1).toFixed(1)}" y="${y + 3}" width="${Math.max(1, Math.abs(x1 - x0)).toFixed(1)}" height="${rowHeight - 6}" fill="${good ? '#4a9d5b' : '#d9822b'}"/>`);
    const labelX = Math.max(x0, x1, r.target ? x(r.target.ratio) : 0) + 4;
    parts.push(`<text x="${labelX.toFixed(1)}" y="${y + 14}">${r.ratio.toFixed(r.ratio >= 10 ? 0 : 2)}×</text>`);
    if (r.target) {
      const tx = x(r.target.ratio).toFixed(1);
      parts.push(`<line x1="${tx}" y1="${y + 1}" x2="${tx}" y2="${y + rowHeight - 1}" stroke="#c00" stroke-width="2"/>`);
    }
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

/** The groups in the order their rows appear in the report. */
const GROUPS = ['dispatch', 'echo', 'http', 'trigger', 'remote', 'reactor', 'memory', 'server'];

/** Where the report keeps which group each row and note belongs to (an HTML comment, invisible). */
const DATA_MARK = '<!-- bench-data ';

const escCell = (s) => String(s).replace(/\|/g, '\\|');

/**
 * The rows, notes and run descriptions of an existing report, for --only to keep the other
 * groups'. A report written before reports carried their data is grouped by figure title.
 */
function readReport(file) {
  if (!existsSync(file)) return undefined;
  const text = readFileSync(file, 'utf8');
  const cols = ['figure', 'subject', 'baseline', 'ratio', 'spread', 'target', 'verdict', 'cpuRatio', 'subjectAbs', 'baselineAbs'];
  const table = text
    .split('\n')
    .filter((l) => l.startsWith('| ') && !l.startsWith('| figure |') && !l.startsWith('| ---'))
    .map((l) => Object.fromEntries(l.slice(2, -2).split(/ (?<!\\)\| /).map((c, i) => [cols[i], c.replace(/\\\|/g, '|')])));
  const notes = [];
  const at = text.indexOf('Not measured in this run:');
  if (at >= 0) for (const l of text.slice(at).split('\n').slice(2)) {
    if (!l.startsWith('- ')) break;
    notes.push(l.slice(2));
  }
  const dataAt = text.indexOf(DATA_MARK);
  let data;
  try {
    data = dataAt >= 0 ? JSON.parse(text.slice(dataAt + DATA_MARK.length, text.indexOf(' -->', dataAt))) : undefined;
  } catch {
    data = undefined;
  }
  if (data && data.rows.length === table.length && data.pending.length === notes.length) {
    return {
      rows: table.map((r, i) => ({ ...r, group: data.rows[i][0], flags: data.rows[i][1] })),
      pending: notes.map((text, i) => ({ group: data.pending[i], text })),
      runs: data.runs,
    };
  }
  const prefixes = [['Dispatch', 'dispatch'], ['Echo', 'echo'], ['HTTP', 'http'], ['trigger()', 'trigger'], ['Cross-thread', 'remote'], ['Reactor', 'reactor'], ['Memory', 'memory'], ['netpoll/server', 'server']];
  const groupOf = (title) => prefixes.find(([p]) => title.startsWith(p))?.[1] ?? 'other';
  const date = /on (\d{4}-\d\d-\d\d)/.exec(text)?.[1] ?? 'an earlier run';
  const load = /at start \/ end: ([\d.]+) \/ ([\d.]+)/.exec(text);
  const run = `${date}${load ? `, load ${load[1]} / ${load[2]}` : ''}`;
  return {
    rows: table.map((r) => ({ ...r, group: groupOf(r.figure), flags: r.target ? '' : 'c' })),
    pending: notes.map((text) => ({ group: groupOf(text), text })),
    runs: Object.fromEntries([...GROUPS, 'other'].map((g) => [g, run])),
  };
}

/** This run's rows and notes in place of the same groups' in `old` (--only); the rest kept. */
function mergeReport(old, fresh, ranGroups) {
  const order = [...GROUPS, 'other'];
  const byGroup = (list) => [...list].sort((a, b) => order.indexOf(a.group) - order.indexOf(b.group));
  const keep = (x) => !ranGroups.includes(x.group);
  return {
    rows: byGroup([...old.rows.filter(keep), ...fresh.rows]),
    pending: byGroup([...old.pending.filter(keep), ...fresh.pending]),
    runs: { ...Object.fromEntries(Object.entries(old.runs).filter(([g]) => !ranGroups.includes(g))), ...fresh.runs },
  };
}

function markdown({ rows, pending, runs }, m, started) {
  const esc = escCell;
  const runText = [...new Set(Object.values(runs))];
  const lines = [];
  lines.push('# Benchmarks');
  lines.push('');
  lines.push(`Generated by \`npm run bench\` (bench/run.mjs) on ${started.toISOString().slice(0, 10)}${quick ? ' in --quick mode (one short round: these numbers are only a smoke test)' : ''}${runText.length > 1 ? ', some groups with `--only` (see Machine)' : ''}.`);
  lines.push('Every figure is a ratio to a baseline measured in the same run: each implementation runs in');
  lines.push(`a process of its own, alternating with its baselines, ${rounds} round${rounds === 1 ? '' : 's'} (echo: ${echoRounds}; the order rotates each round), and the`);
  lines.push('ratio is the median of the per-round ratios ("rounds" shows their spread). Absolute numbers');
  lines.push('depend on the machine and its load and are given as context only. "per CPU" is the same');
  lines.push('comparison per CPU-second spent (events or tasks per CPU-second of the process; for servers,');
  lines.push('the server\'s CPU time per message or request over the measured window, inverted): on a busy');
  lines.push('machine it moves far less than the wall-clock ratio, which is the one the targets are set on.');
  lines.push('');
  lines.push('## Machine');
  lines.push('');
  lines.push(`- CPU: ${m.cpu}, ${m.cores} cores; memory ${m.memory}`);
  lines.push(`- Kernel: ${m.kernel}`);
  lines.push(`- Node.js: ${m.node}`);
  if (runText.length === 1) lines.push(`- Run: ${runText[0]} (load average, 1 min, at start / end)`);
  else {
    lines.push('- Runs, merged with `--only` (load average, 1 min, at start / end):');
    for (const t of runText) lines.push(`  - ${Object.keys(runs).filter((g) => runs[g] === t).join(', ')}: ${t}`);
  }
  lines.push(`- ${runText.length > 1 ? 'Timing of the newest run: echo' : 'Echo'}: ${echoRounds} rounds; each server is started once per figure and warmed up for ${timing.serverWarmupMs} ms, then the servers take turns, ${timing.serverMeasureMs} ms measured each. HTTP: a fresh server per round, wrk for 1 s, then ${timing.wrkSeconds} s measured`);
  lines.push('');
  lines.push('## Results');
  lines.push('');
  lines.push('| figure | netpoll | baseline | ratio | rounds | target | | per CPU | netpoll (absolute) | baseline (absolute) |');
  lines.push('| --- | --- | --- | ---: | --- | --- | --- | ---: | --- | --- |');
  for (const r of rows) {
    lines.push(`| ${[r.figure, r.subject, r.baseline, r.ratio, r.spread, r.target, r.verdict, r.cpuRatio, r.subjectAbs, r.baselineAbs].map(esc).join(' | ')} |`);
  }
  lines.push('');
  if (pending.length) {
    lines.push('Not measured in this run:');
    lines.push('');
    for (const p of pending) lines.push(`- ${p.text}`);
    lines.push('');
  }
  lines.push(`${DATA_MARK}${JSON.stringify({ rows: rows.map((r) => [r.group, r.flags]), pending: pending.map((p) => p.group), runs })} -->`);
  lines.push('');
  lines.push('![netpoll / baseline ratios](benchmarks.svg)');
  lines.push('');
  lines.push('## What each figure measures');
  lines.push('');
  lines.push('- **Dispatch**: events per second delivered to JavaScript from 1, 100 and 1000 pipe read ends that');
  lines.push('  always hold one unread byte, registered level-triggered, so every wait reports every fd again.');
  lines.push('  The callback only counts. Baselines: the same loop in C (bench/dispatch.c, epoll_wait with a');
  lines.push('  1024-entry list) and the `epoll` npm package (a thread that hands events to the main thread one');
  lines.push('  at a time). The `for await` rows iterate the poller (`events()` and `events({ batch: true })`).');
  lines.push('- **Echo**: bench/loadgen.c keeps one 64-byte message in flight on each of 1, 100 and 1000');
  lines.push('  loopback TCP connections, for a fixed time, and reports round trips per second with p50/p99');
  lines.push('  round-trip latency. Servers: the C epoll echo server (bench/echo_server.c), node:net');
  lines.push('  (bench/net_echo.ts), netpoll (examples/poller-echo.ts), and the Node-loop floor (bench/floor_echo.ts');
  lines.push('  with bench/floor/floor.c): the least a server on Node\'s event loop can do, one uv_poll per');
  lines.push('  socket on Node\'s own loop and one callback per readable event, which makes the same two');
  lines.push('  Node-API calls per message as netpoll (recv, send) and nothing else. Its ratio to C is what');
  lines.push('  the loop itself leaves of C\'s speed; netpoll\'s ratio to it is the cost of netpoll.');
  lines.push('- **HTTP plaintext**: `wrk -t1 -c100` against node:http (bench/node_http.ts) and the netpoll HTTP example.');
  lines.push('- **trigger()**: tasks per second through `trigger()` including the promise it returns (1024 tasks');
  lines.push('  queued per loop turn, then the last one awaited), against `setImmediate` wrapped in a promise;');
  lines.push('  and the p50 time from calling it to the task running, one task at a time.');
  lines.push('- **Cross-thread trigger**: 1 or 4 producer worker threads trigger a task on a poller polling on');
  lines.push('  the main thread (bench/remote.ts), with an fd number or a 1 KiB Buffer as the param, 512 in flight');
  lines.push('  per producer; each counts when its promise settles in the producer. Baseline: MessagePort');
  lines.push('  `postMessage` of the same request to the same thread, which answers with a message that');
  lines.push('  settles a promise. Round trip: one trigger awaited at a time, p50 and p99.');
  lines.push('  Hand-off and 200,000 in flight (issue 18): against one-way `postMessage` (no reply message),');
  lines.push('  each message counted once the owner ran it (a round trip after each window says so). Hand-off:');
  lines.push('  `post()` in windows of 32 Ki tasks; in flight: 200,000 `trigger()` calls, then the last awaited.');
  lines.push(`- **Reactor**: ${multicoreWorkers} workers each (one per CPU) for examples/reactor.ts (netpoll/server's acceptor hands`);
  lines.push('  each connection to a loop thread with a remote trigger), node:cluster (round-robin, node:http');
  lines.push('  or node:net per process) and examples/multicore.ts (the same with reusePort: SO_REUSEPORT, Linux');
  lines.push('  only); HTTP plaintext under `wrk -t1` and echo under bench/loadgen.c (as in the echo figures),');
  lines.push('  each at 100 and 1000 connections (bench/multicore_server.ts starts the servers).');
  lines.push('- **netpoll/server** (issue 19): echo as in the echo figures at 100 connections, bench/server_echo.ts');
  lines.push('  (examples/echo.ts) against the raw-poller echo example (examples/poller-echo.ts), node:net and');
  lines.push('  `Bun.listen` (bench/bun_server.mjs, run by Bun; context, no target);');
  lines.push('  10,000 connections echoing: the same load generator with one 64-byte message in flight on each of');
  lines.push('  10,000 connections, 3 s measured after 1 s of settling (each round trip waits for the other 9,999),');
  lines.push('  against `Bun.listen`, the raw poller and node:net; the "server RSS" rows are each server\'s resident');
  lines.push('  memory (with its child processes) read as the measured window closes, every connection still open;');
  lines.push('  the Redis protocol under `redis-benchmark -P 16 -c 50 -q -t set,get` (the value is both tests\'');
  lines.push('  requests over both tests\' time), examples/redis.ts against the same commands on node:net');
  lines.push('  (bench/net_redis.ts; both use examples/redis-commands.ts, so only the transport differs);');
  lines.push('  HTTP plaintext under `wrk -t1 -c100`, bench/server_http.ts against node:http and `Bun.serve`;');
  lines.push('  multicore HTTP: the same responder with `multicore: true, numEventLoop: 2` (two loop threads');
  lines.push('  and the acceptor) against node:cluster with 2 node:http workers (bench/multicore_server.ts), CPU');
  lines.push('  per request counted over the whole process tree; and idle connections: the server\'s RSS growth');
  lines.push('  per connection once a child process has opened them all (full GC before each reading;');
  lines.push('  bench/server_idle.ts), with an idle timeout far longer than the run, against node:net with');
  lines.push('  `socket.setTimeout`; "CPU while idle" is the server process\'s CPU time (all threads) over 3 s in');
  lines.push('  which the connections sit open and silent and no timeout is due, per second: the timer wheel arms');
  lines.push('  one timer for its earliest bucket and runs nothing until then, so the target is an absolute');
  lines.push('  ≤ 1 ms per second (0.1% of a core). Bun is found or installed by scripts/fetch-bun.mjs;');
  lines.push('  without it, and for rows whose tool (redis-benchmark, wrk) is absent, the rows are skipped, saying why.');
  lines.push('- **Memory**: bytes the process holds per registered fd with 10,000 fds (socketpairs opened');
  lines.push('  first, then registered with `addRead({ fd, callback })`; full GC before each measurement): live JS');
  lines.push('  heap growth plus growth outside V8\'s heap (RSS growth minus V8 heap growth). The kernel\'s own');
  lines.push('  per-registration memory is the same for every epoll user and is not counted.');
  lines.push('');
  lines.push(PROFILE_NOTES);
  return lines.join('\n');
}

// Written by hand from perf profiles (perf record -g, node --perf-basic-prof) on the
// 2-core development VM; not regenerated by a run.
const PROFILE_NOTES = `## Where the time goes (perf profiles, not regenerated)

- **Dispatch.** Per event, netpoll and the C loop do the same kernel work (epoll re-polls each
  level-triggered fd and copies the event out): 70–80% of all samples at 100 fds. Per batch,
  netpoll adds one turn of Node's event loop (libuv's \`epoll_pwait\` on the poller's fd, which
  for a nested epoll fd rescans its ready list, and Node's check phase, which opens a callback
  scope every turn), the poller's own \`epoll_wait\`, and one \`napi_make_callback\` with its
  microtask checkpoint; the JavaScript loop over the batch is 2–3% of samples. So the ratio
  grows with the batch: about 0.15–0.3× at 1 fd (each event pays the whole turn), 0.8–0.9×
  at 100 and 1000 fds.
- **for await.** The single form pays a promise, an iterator result and a \`PollEvent\` per
  event; the batch form a \`PollEvent\` per event and one array and promise per batch. A pause
  requested inside a batch (backpressure) now waits until the batch's microtasks ran: a
  consumer that asks again in them, as a for-await loop does, no longer stops and restarts the
  libuv watcher (an \`epoll_ctl\` DEL and ADD of a nested epoll fd) on every batch, which
  had been 35% of the time; the batch form went from about 2.4M to 4.8M events per CPU-second
  at 100 fds.
- **Echo.** With one connection every message is a batch of one and pays a whole turn of
  Node's loop: libuv's wait (twice when the loop goes idle, because Node measures idle time
  and libuv then polls once with a zero timeout first), the poller's own wait on its epoll fd,
  read and send (four or five syscalls where the C server makes three), Node's check phase
  (a callback scope and a new object every turn, whatever runs), and one
  \`napi_make_callback\`. Sampled at 10 kHz, the server spent 29 µs of CPU per message against
  the C server's 19 µs: 2 µs more kernel time (the extra wait, and the nested epoll's re-polls
  of the socket) and 8 µs more user time, about half of it Node's own turn, then
  \`make_callback\` (1.2 µs), the two Node-API calls and the JavaScript (about 1 µs together).
  node:net, with no nested epoll and no addon, ran at 0.7–0.9× the C server in the same runs,
  and the Node-loop floor (no nested epoll, no batch, the same two Node-API calls per message)
  at about 0.9×: that is what Node's loop leaves of C's speed with one connection, and netpoll
  ran at 0.94–0.98× of that floor (the poller's own wait and its batch callback).
  With 100 connections each wait returns about 100 events, so per-batch costs vanish (and
  netpoll runs above the floor, which pays a callback per event): kernel
  time is 90% of the server's CPU and is the same TCP work as the C server's; user time is
  about 1.5 µs per message (JavaScript dispatch about 0.5 µs, the read and write calls about
  0.8 µs). Two changes in this version: read and write use Node-API directly (4–6 calls each
  instead of 7–12 through node-addon-api's wrappers), and the addon's exports are copied into an
  object with fast properties, since V8 keeps an addon's exports object in dictionary mode and
  every \`binding.read\` had been a generic lookup.
- **trigger().** Throughput: no allocation per task beyond the promise and its resolvers (the
  queue is a ring of slots). A trigger on the poller's own thread costs no syscall: it arms an
  idle handle (so libuv's poll does not block) and a check handle that runs the round after the
  poll phase, the mechanism \`setImmediate\` uses; a trigger inside the poller's own batch is
  armed when the batch returns, without a native call. The eventfd is written only by other
  threads (and on the waiter-thread path). Before this, every wake was an eventfd write and a
  full loop turn: 2.5× setImmediate's p50.
- **Cross-thread trigger.** A producer's triggers of one tick cross in one native call as one
  block (numbers and byte params copied into it, other values through v8.serialize); the
  poller takes every queued block in one call per round and answers in one call per round and
  caller thread. Request blocks come from a pool of the producer thread's and go back to it
  once answered: blocks malloc'ed on one thread and freed on another made glibc trim and
  re-fault their pages every round (page faults were a quarter of the profile). Byte params of
  one delivery share one Buffer, of which each param is a view. MessagePort pays a
  structured clone, a message object and a wake-up per message.
- **Cross-thread round trip.** One trigger awaited at a time pays two wakes of a sleeping
  thread (the owner's, then the caller's), as a MessagePort request and reply does: the same
  syscalls per round trip were counted for both (strace: about 4 loop waits, 2 eventfd
  writes and 1 read). The C two-wake floor (bench/pingpong.c: two threads asleep in
  epoll_wait passing one eventfd wake each way) is that part alone, and on this VM it was
  24 µs at p50, 0.73× of MessagePort's 33 µs. So the ≤ 0.5× MessagePort target cannot be met by
  any design whose threads sleep while they wait; only busy-waiting (a caller or owner that
  spins instead of sleeping, at a core's cost) would, and netpoll does not spin. What the
  cross-thread design removes is the per-message cost, which is why throughput is many times
  MessagePort's while a lone round trip is on par with it.
- **Reactor, echo.** On this 2-core VM the load generator shares the two cores with the two
  workers, and an echo message costs the server little more than its two syscalls, so every
  design is bounded by the same kernel work: the reactor ran level with the SO_REUSEPORT
  design (0.97–1.01×) and 1.17–1.25× node:cluster, against a 1.5× target; under HTTP, where
  node:http's own cost per request shows, it ran 1.70–1.75× cluster.
`;

// ---- main ----

async function main() {
  const unknown = only?.filter((g) => !GROUPS.includes(g)) ?? [];
  if (unknown.length) throw new RangeError(`--only: no group ${unknown.join(', ')}; the groups are ${GROUPS.join(', ')}`);
  const started = new Date();
  const loadStart = os.loadavg()[0].toFixed(2);
  build();
  // Which group each "not measured" note belongs to (the floor's, from build(), is echo's).
  const pendingGroup = pending.map(() => 'echo');
  const makers = { dispatch: dispatchFigures, echo: echoFigures, http: httpFigures, trigger: triggerFigures, remote: remoteFigures, reactor: reactorFigures, memory: memoryFigures, server: serverFigures };
  for (const group of GROUPS.filter(wanted)) {
    makers[group]();
    while (pendingGroup.length < pending.length) pendingGroup.push(group);
  }
  const m = machine();
  console.log(`\n${m.cpu}, ${m.cores} cores, ${m.kernel}, Node ${m.node}; load ${loadStart}; ${rounds} round(s)${quick ? ', quick' : ''}\n`);
  const results = [];
  for (const fig of figures) await runFigure(fig, results);
  const rows = tableRows(results);
  printTable(rows);
  for (const p of pending) console.log(`pending: ${p}`);
  const loadEnd = os.loadavg()[0].toFixed(2);
  const elapsedS = (Date.now() - started.getTime()) / 1000;
  mkdirSync(outDir, { recursive: true });
  const ran = GROUPS.filter(wanted);
  const run = `${started.toISOString().slice(0, 10)}, load ${loadStart} / ${loadEnd}, ${rounds} round${rounds === 1 ? '' : 's'}${quick ? ' (--quick)' : ''}, ${elapsedS.toFixed(0)} s${bunFound?.version ? `; Bun ${bunFound.version}` : ''}`;
  const fresh = {
    rows,
    pending: pending.map((text, i) => ({ group: pendingGroup[i] ?? 'other', text })),
    runs: Object.fromEntries(ran.map((g) => [g, run])),
  };
  const reportFile = join(outDir, 'benchmarks.md');
  const old = only ? readReport(reportFile) : undefined;
  const report = old ? mergeReport(old, fresh, ran) : fresh;
  writeFileSync(reportFile, markdown(report, m, started));
  writeFileSync(join(outDir, 'benchmarks.svg'), svgChart(report.rows));
  mkdirSync(buildDir, { recursive: true });
  writeFileSync(join(buildDir, 'benchmarks.json'), JSON.stringify({ machine: m, quick, rounds, figures: figures.map((f) => ({ title: f.title, unit: f.unit, rounds: f.rounds, abs: f.abs })) }, null, 1) + '\n');
  console.log(`\n${old ? `replaced the ${ran.join(', ')} rows of` : 'wrote'} ${relative(root, reportFile)} and benchmarks.svg (${elapsedS.toFixed(0)} s)`);
  if (errors.length) {
    // A benchmark that broke (as opposed to one skipped for a stated reason) fails the run.
    console.error(`\n${errors.length} benchmark run(s) failed:\n${errors.join('\n')}`);
    process.exitCode = 1;
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
