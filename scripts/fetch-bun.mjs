#!/usr/bin/env node
// Finds a Bun binary for the benchmarks' Bun baselines (bench/run.mjs), installing it on
// demand into a cache directory outside the repository, as scripts/test-node-matrix.mjs does
// for Node's official binaries.
//
//   node scripts/fetch-bun.mjs            prints the path of a runnable bun (installs it if needed)
//   NETPOLL_BUN=/path/to/bun              use that binary; nothing is looked up or installed
//   NETPOLL_BUN_CACHE=dir                 where installed binaries live (default ~/.cache/netpoll-bun)
//
// Order: $NETPOLL_BUN, then `bun` on the PATH, then the cache. The npm package `bun` ships
// Bun's binary in one optional dependency per platform (`@oven/bun-linux-x64`, …); its newest
// version is looked up with `npm view`, the platform's package fetched with `npm pack` (which
// checks the registry's integrity hash) and only its bin/bun unpacked into the cache. A cached
// version is reused; with no registry (offline) the newest cached one is used.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));

function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', timeout: 300_000, ...opts });
  return { ok: r.status === 0, out: (r.stdout ?? '').trim(), err: (r.stderr ?? '').trim() || r.error?.message || `exit ${r.status}` };
}

/** The version `bin` prints, or undefined when it does not run. */
function versionOf(bin) {
  const r = run(bin, ['--version'], { timeout: 30_000 });
  return r.ok && /^\d+\.\d+\.\d+/.test(r.out) ? r.out : undefined;
}

const compareVersions = (a, b) => {
  const x = a.split('.').map(Number), y = b.split('.').map(Number);
  return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
};

/** Which of the `bun` package's platform packages runs here (names as the package lists them). */
function platformPackage(optionalDependencies) {
  const os = { linux: 'linux', darwin: 'darwin' }[process.platform];
  const arch = { x64: 'x64', arm64: 'aarch64' }[process.arch];
  if (!os || !arch) return undefined;
  const names = Object.keys(optionalDependencies ?? {});
  const musl = process.platform === 'linux' && !process.report?.getReport?.().header?.glibcVersionRuntime;
  const base = `@oven/bun-${os}-${arch}${musl ? '-musl' : ''}`;
  // Bun's default x64 build needs AVX2; its "-baseline" build (where published) does not.
  const avx2 = process.arch !== 'x64' || process.platform !== 'linux' || /\bavx2\b/.test(readFileSafe('/proc/cpuinfo'));
  const candidates = avx2 ? [base, `${base}-baseline`] : [`${base}-baseline`, base];
  return candidates.find((n) => names.includes(n));
}

function readFileSafe(path) {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/**
 * A runnable Bun: `{ bun, version }`, or `{ why }` saying why there is none. With
 * `install: false` nothing is fetched (the cache and the PATH only).
 */
export function findBun(options = {}) {
  try {
    return lookUp(options);
  } catch (e) {
    // Say why rather than end the benchmark run (a full disk, a concurrent install, …).
    return { why: `Bun could not be set up: ${e.message}` };
  }
}

function lookUp({ install = true, log = () => {} }) {
  if (process.env.NETPOLL_BUN) {
    const version = versionOf(process.env.NETPOLL_BUN);
    return version ? { bun: process.env.NETPOLL_BUN, version } : { why: `$NETPOLL_BUN (${process.env.NETPOLL_BUN}) does not run` };
  }
  const onPath = run('sh', ['-c', 'command -v bun']).out;
  if (onPath) {
    const version = versionOf(onPath);
    if (version) return { bun: onPath, version };
  }
  const cache = resolve(process.env.NETPOLL_BUN_CACHE || join(homedir(), '.cache', 'netpoll-bun'));
  // About 100 MB per version: never inside the checkout, where git or npm pack would see it.
  if (cache === root || cache.startsWith(root + sep)) return { why: `the cache ${cache} is inside the repository; point NETPOLL_BUN_CACHE elsewhere` };
  const cached = () =>
    (existsSync(cache) ? readdirSync(cache) : [])
      .filter((d) => /^bun-v\d+\.\d+\.\d+$/.test(d))
      .map((d) => d.slice('bun-v'.length))
      .sort(compareVersions)
      .reverse()
      .map((version) => ({ bun: join(cache, `bun-v${version}`, 'bun'), version }))
      .filter((c) => versionOf(c.bun) === c.version);
  if (!install) {
    const have = cached()[0];
    return have ?? { why: `Bun is not on the PATH nor in ${cache} (node scripts/fetch-bun.mjs installs it)` };
  }
  mkdirSync(cache, { recursive: true });
  for (const d of readdirSync(cache).filter((d) => d.startsWith('.pack-'))) rmSync(join(cache, d), { recursive: true, force: true });
  const view = run('npm', ['view', 'bun', 'version', 'optionalDependencies', '--json'], { cwd: cache });
  let info;
  try {
    info = view.ok ? JSON.parse(view.out) : undefined;
  } catch {
    info = undefined;
  }
  if (!info?.version) {
    const have = cached()[0];
    const reason = view.err.split('\n').find((l) => /\bcode\b|ERR/.test(l)) ?? view.err.split('\n')[0];
    return have ?? { why: `the npm registry could not be asked for the bun package (${reason}), and ${cache} holds no Bun` };
  }
  const have = cached().find((c) => c.version === info.version);
  if (have) return have;
  const pkg = platformPackage(info.optionalDependencies);
  if (!pkg) return { why: `the bun package ships no binary for ${process.platform}-${process.arch}` };
  const tmp = mkdtempSync(join(cache, '.pack-'));
  try {
    log(`installing Bun ${info.version} (${pkg}@${info.version}) into ${cache}`);
    const packed = run('npm', ['pack', `${pkg}@${info.version}`, '--pack-destination', tmp, '--silent'], { cwd: tmp });
    if (!packed.ok) return { why: `npm pack ${pkg}@${info.version} failed: ${packed.err.split('\n').at(-1)}` };
    const tarball = join(tmp, packed.out.split('\n').at(-1));
    const untar = run('tar', ['-xzf', tarball, '-C', tmp, 'package/bin/bun']);
    if (!untar.ok) return { why: `unpacking ${tarball} failed: ${untar.err}` };
    const dest = join(cache, `bun-v${info.version}`);
    rmSync(dest, { recursive: true, force: true });
    renameSync(join(tmp, 'package', 'bin'), dest); // whole or not at all: an interrupted run leaves only .pack-*
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const bun = join(cache, `bun-v${info.version}`, 'bun');
  const version = versionOf(bun);
  return version ? { bun, version } : { why: `the unpacked ${bun} does not run` };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const found = findBun({ log: (m) => process.stderr.write(`[fetch-bun] ${m}\n`) });
  if (found.bun) process.stdout.write(`${found.bun}\n`);
  else {
    process.stderr.write(`[fetch-bun] ${found.why}\n`);
    process.exit(1);
  }
}
