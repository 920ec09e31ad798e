#!/usr/bin/env node
// Builds the kqueue backend on Linux against a libkqueue install, and runs the
// whole test suite against it, so the kqueue code is tested without a Mac.
//
//   NETPOLL_KQUEUE_PREFIX=/path/to/prefix node scripts/kqueue.mjs build|test [filter...]
//
// (or `npm run build:kqueue` / `npm run test:kqueue [filter...]`, the same thing).
//
// The prefix is where libkqueue was installed (include/kqueue/sys/event.h and
// lib/libkqueue.so). The addon goes to build-kqueue/build/Release/netpoll.node;
// the default build in build/ is left alone. NETPOLL_KQUEUE_WAKER=pipe builds the
// pipe waker of OpenBSD and older NetBSD instead (into build-kqueue-pipe/).
// Without a prefix, `test` prints why it skips and succeeds, so CI stays green.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const [command = 'test', ...filters] = process.argv.slice(2);
const prefix = process.env.NETPOLL_KQUEUE_PREFIX;
const pipeWaker = process.env.NETPOLL_KQUEUE_WAKER === 'pipe';
const buildDir = join(root, pipeWaker ? 'build-kqueue-pipe' : 'build-kqueue');
const addon = join(buildDir, 'build', 'Release', 'netpoll.node');

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...options });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

/**
 * node-gyp, found the same way whether this runs as `npm run build:kqueue` or as
 * `node scripts/kqueue.mjs build`: only npm puts node_modules/.bin on PATH, so a bare
 * `node-gyp` fails with ENOENT when run directly. The project's own devDependency comes
 * first (the version `npm run build:native` uses), run with this node; then the one npm
 * names when it runs a script; then PATH.
 */
function findNodeGyp() {
  try {
    const requireHere = createRequire(join(root, 'package.json'));
    const manifest = requireHere.resolve('node-gyp/package.json');
    const { bin } = JSON.parse(readFileSync(manifest, 'utf8'));
    const script = typeof bin === 'string' ? bin : bin?.['node-gyp'];
    if (script) return { script: join(dirname(manifest), script) };
  } catch {
    // not installed here: fall through
  }
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) return { script: process.env.npm_config_node_gyp };
  const onPath = (process.env.PATH ?? '').split(delimiter).some((dir) => dir && existsSync(join(dir, 'node-gyp')));
  return onPath ? { script: null } : null;
}

/**
 * Outside npm, node-gyp sees no npm config (npm hands it `nodedir` and the like as
 * npm_config_* variables) and downloads headers for this node, which fails offline. The
 * running node's own headers, where its install has them (official tarballs and distro
 * packages put them in <prefix>/include/node), are the same version: use them then.
 */
function nodeDirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const nodePrefix = resolve(dirname(process.execPath), '..');
  return existsSync(join(nodePrefix, 'include', 'node', 'common.gypi')) ? [`--nodedir=${nodePrefix}`] : [];
}

function usage(message) {
  process.stderr.write(`${message}\nusage: NETPOLL_KQUEUE_PREFIX=<libkqueue prefix> node scripts/kqueue.mjs build|test [filter...]\n`);
  process.exit(2);
}

if (command !== 'build' && command !== 'test') usage(`unknown command "${command}"`);

if (process.platform !== 'linux') {
  // macOS and the BSDs build kqueue by default: the ordinary suite is the kqueue suite.
  process.stdout.write('kqueue is this platform\'s own backend: run `npm test`.\n');
  process.exit(command === 'test' ? run(process.execPath, [join(root, 'scripts', 'run-tests.mjs'), ...filters]) : 0);
}

if (!prefix) {
  const why = 'NETPOLL_KQUEUE_PREFIX is not set: it must name a libkqueue install prefix (include/kqueue/sys/event.h, lib/libkqueue.so).';
  if (command === 'build') usage(why);
  process.stdout.write(`test:kqueue skipped: ${why}\n`);
  process.exit(0);
}

const header = join(resolve(prefix), 'include', 'kqueue', 'sys', 'event.h');
if (!existsSync(header)) usage(`no libkqueue under ${resolve(prefix)}: ${header} is missing.`);

// node-gyp builds the binding.gyp of its working directory into ./build; this
// one includes the real one, with paths kept relative to it.
mkdirSync(buildDir, { recursive: true });
writeFileSync(join(buildDir, 'binding.gyp'), '{ "includes": [ "../binding.gyp" ] }\n');
const gypArgs = ['rebuild', `--kqueue_prefix=${resolve(prefix)}`, ...(pipeWaker ? ['--kqueue_waker=pipe'] : []), ...nodeDirArgs()];
const nodeGyp = findNodeGyp();
if (!nodeGyp) usage('node-gyp not found: run `npm install` here (it is a devDependency), or put node-gyp on PATH.');
const status = nodeGyp.script
  ? run(process.execPath, [nodeGyp.script, ...gypArgs], { cwd: buildDir })
  : run('node-gyp', gypArgs, { cwd: buildDir });
if (status !== 0) process.exit(status);

// Proof that the suite will really run on kqueue, not on a stray epoll build.
const probe = spawnSync(process.execPath, ['-p', `require(${JSON.stringify(addon)}).backend.name`], { encoding: 'utf8' });
if (probe.stdout.trim() !== 'kqueue') {
  process.stderr.write(`${addon} reports backend "${probe.stdout.trim()}"${probe.stderr ? `: ${probe.stderr}` : ''}\n`);
  process.exit(1);
}
process.stdout.write(`built ${addon} (kqueue, ${pipeWaker ? 'pipe' : 'EVFILT_USER'} waker)\n`);
if (command === 'build') process.exit(0);

if (run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.json')]) !== 0) process.exit(1);
process.exit(run(process.execPath, [join(root, 'scripts', 'run-tests.mjs'), ...filters], {
  env: { ...process.env, NETPOLL_ADDON: addon },
}));
