#!/usr/bin/env node
// Builds the kqueue backend on Linux against a libkqueue install, and runs the
// whole test suite against it, so the kqueue code is tested without a Mac.
//
//   NETPOLL_KQUEUE_PREFIX=/path/to/prefix node scripts/kqueue.mjs build|test [filter...]
//
// The prefix is where libkqueue was installed (include/kqueue/sys/event.h and
// lib/libkqueue.so). The addon goes to build-kqueue/build/Release/netpoll.node;
// the default build in build/ is left alone. NETPOLL_KQUEUE_WAKER=pipe builds the
// pipe waker of OpenBSD and older NetBSD instead (into build-kqueue-pipe/).
// Without a prefix, `test` prints why it skips and succeeds, so CI stays green.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
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
const nodeGyp = process.env.npm_config_node_gyp;
const gypArgs = ['rebuild', `--kqueue_prefix=${resolve(prefix)}`, ...(pipeWaker ? ['--kqueue_waker=pipe'] : [])];
const status = nodeGyp
  ? run(process.execPath, [nodeGyp, ...gypArgs], { cwd: buildDir })
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
