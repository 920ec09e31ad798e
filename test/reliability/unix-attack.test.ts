// listenUnix(path, { mode }) against a local attacker of another uid who can write the
// directory that holds the socket (issue 18 §1). Root listens again and again while the
// attacker (uid 65534) swaps the fresh socket for a symlink to a root-owned 0600 file, and
// flips the socket's parent directory between a real directory and a symlink into a
// directory only root can enter, where another service's 0600 socket lives. Whatever the
// timing, root must never change the mode of, or delete, anything but its own socket:
// with /proc and without it (a mount namespace with /proc unmounted, as in a chroot or a
// sandbox), where the old code fell back to chmod by name.
//
// Needs root on Linux (to run the attacker as another user and to unmount /proc in a
// mount namespace); skipped elsewhere. Bounded: NETPOLL_ATTACK_LISTENS listens (default
// 1000) or NETPOLL_ATTACK_MS milliseconds (default 4000) per run, whichever ends first.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { socket } from '../../src/index.js';
import { nodeThroughLauncher, within } from '../helpers.js';

const LISTENS = Number(process.env.NETPOLL_ATTACK_LISTENS ?? 1000);
const MS = Number(process.env.NETPOLL_ATTACK_MS ?? 4000);
const ATTACKER = 65534;
const index = path.resolve(__dirname, '..', '..', 'src', 'index.js');

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'Linux only';
  if (process.getuid?.() !== 0) return 'needs root to run an attacker as another user';
  if (nodeThroughLauncher) return 'children start through a launcher';
  if (spawnSync('setpriv', ['--reuid', String(ATTACKER), '--regid', String(ATTACKER), '--clear-groups', 'true']).status !== 0) return 'setpriv cannot drop to uid 65534';
  return undefined;
}

// The attacker, in C for speed: renameat2(RENAME_EXCHANGE) swaps two names atomically in
// one system call, so (1) `shared/d` flips between a real directory and a symlink to the
// victim directory, and (2) root's fresh socket `shared/svc.sock` flips with a symlink to
// the canary, as fast as the kernel allows. Between bursts it restores the real
// arrangement and clears root's socket away, so that root's next bind succeeds.
const attackerSource = String.raw`
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE 2
#endif
static int exchange(const char *a, const char *b) { return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE); }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static int is_socket(const char *p) { struct stat st; return lstat(p, &st) == 0 && S_ISSOCK(st.st_mode); }
int main(int argc, char **argv) {
  if (argc != 4 || chdir(argv[1]) != 0) return 2;
  char target[4096];
  snprintf(target, sizeof target, "%s/canary", argv[2]);
  if (symlink(argv[2], "dlink") != 0 || symlink(target, "slink") != 0) return 3;
  double end = now() + atof(argv[3]) / 1000;
  long rounds = 0, flips = 0, swaps = 0;
  close(open("ready", O_CREAT | O_WRONLY, 0644));
  while (now() < end) {
    rounds++;
    int n = 0;
    for (int i = 0; i < 64; i++) n += exchange("d", "dlink") == 0;
    if (n % 2) n += exchange("d", "dlink") == 0;
    flips += n;
    unlink("d/svc.sock");
    n = 0;
    for (int i = 0; i < 64; i++) n += exchange("svc.sock", "slink") == 0;
    if (n % 2) n += exchange("svc.sock", "slink") == 0;
    swaps += n;
    if (is_socket("svc.sock")) unlink("svc.sock");
  }
  printf("{\"rounds\":%ld,\"flips\":%ld,\"swaps\":%ld}", rounds, flips, swaps);
  return 0;
}
`;

// Root's side: listens with mode 0o666 under umask 0o022 (so a mode step after bind would
// have bits to add) at both attacked names, and reports what happened.
const listenerScript = `
const fs = require('fs');
const { socket } = require(process.argv[1]);
const [shared, ms, count, own] = process.argv.slice(2);
process.umask(0o022);
const end = Date.now() + Number(ms);
const codes = {};
let listens = 0, ok = 0;
const gone = (p) => { try { fs.lstatSync(p); return false; } catch { return true; } };
while (!fs.existsSync(shared + '/ready') && Date.now() < end) {}
while (listens < Number(count) && Date.now() < end) {
  for (const p of [shared + '/svc.sock', shared + '/d/svc.sock']) {
    // Give the attacker time to clear the last round's socket away.
    for (const until = Date.now() + 20; !gone(p) && Date.now() < until;) {}
    listens++;
    try { socket.close(socket.listenUnix(p, { mode: 0o666 })); ok++; }
    catch (e) { codes[e.code] = (codes[e.code] || 0) + 1; }
  }
}
// And in a directory nobody else can write: the exact mode, /proc or not.
socket.close(socket.listenUnix(own, { mode: 0o666 }));
const ownMode = fs.statSync(own).mode & 0o7777;
process.stdout.write(JSON.stringify({ listens, ok, codes, ownMode, proc: fs.existsSync('/proc/self/fd') }));
`;

function run(file: string, args: string[], opts: { uid?: number; gid?: number } = {}): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  return within(new Promise((resolve) => child.on('close', (code) => resolve({ code, out, err }))), MS + 30000, file);
}

interface Scene {
  base: string;
  shared: string;
  victim: string;
  canary: string;
  service: string;
  serviceFd: number;
}

function makeScene(): Scene {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'netpoll-attack-'));
  fs.chmodSync(base, 0o755);
  const victim = path.join(base, 'victim');
  fs.mkdirSync(victim, { mode: 0o700 });
  const canary = path.join(victim, 'canary');
  fs.writeFileSync(canary, 'secret', { mode: 0o600 });
  const service = path.join(victim, 'svc.sock');
  const serviceFd = socket.listenUnix(service, { mode: 0o600 });
  const shared = path.join(base, 'shared');
  fs.mkdirSync(shared, { mode: 0o755 });
  fs.mkdirSync(path.join(shared, 'd'), { mode: 0o755 });
  fs.chownSync(shared, ATTACKER, ATTACKER);
  fs.chownSync(path.join(shared, 'd'), ATTACKER, ATTACKER);
  return { base, shared, victim, canary, service, serviceFd };
}

async function attack(noProc: boolean): Promise<void> {
  const why = skipReason();
  if (why !== undefined) {
    console.log(`  (${why}: skipped)`);
    return;
  }
  if (noProc && /asan|sanitizer/i.test(process.env.LD_PRELOAD ?? '')) {
    console.log('  (a preloaded sanitizer runtime needs /proc itself, at exit: skipped)');
    return;
  }
  if (noProc && spawnSync('unshare', ['-m', 'sh', '-c', 'umount -l /proc']).status !== 0) {
    console.log('  (cannot unmount /proc in a mount namespace: skipped)');
    return;
  }
  const s = makeScene();
  try {
    const attackerBin = path.join(s.base, 'attacker');
    fs.writeFileSync(`${attackerBin}.c`, attackerSource);
    const cc = spawnSync(process.env.CC ?? 'cc', ['-O2', '-o', attackerBin, `${attackerBin}.c`], { encoding: 'utf8' });
    if (cc.error !== undefined || cc.status !== 0) {
      console.log(`  (no C compiler for the attacker: skipped) ${cc.error?.message ?? cc.stderr}`);
      return;
    }
    const attacker = run('setpriv', ['--reuid', String(ATTACKER), '--regid', String(ATTACKER), '--clear-groups', attackerBin, s.shared, s.victim, String(MS)]);
    const listenerArgs = ['-e', listenerScript, index, s.shared, String(MS), String(LISTENS), path.join(s.base, 'own.sock')];
    const listener = noProc
      ? run('unshare', ['-m', 'sh', '-c', 'umount -l /proc && exec "$0" "$@"', process.execPath, ...listenerArgs])
      : run(process.execPath, listenerArgs);
    const [a, l] = await Promise.all([attacker, listener]);
    assert.is(l.code, 0, l.err);
    assert.is(a.code, 0, a.err);
    const report = JSON.parse(l.out) as { listens: number; ok: number; codes: Record<string, number>; ownMode: number; proc: boolean };
    console.log(`  ${report.listens} listens (${report.ok} succeeded, failures ${JSON.stringify(report.codes)}) against the attacker's ${a.out}, /proc ${report.proc ? 'present' : 'absent'}`);
    assert.is(report.proc, !noProc, 'the listener ran with /proc as intended');
    assert.ok(report.listens > 0);
    assert.ok(report.ok > 0, 'some listens succeeded');
    assert.is(report.ownMode, 0o666, 'the socket gets exactly its mode under umask 0o022 (no chmod after bind needed)');
    // Nothing else was touched.
    assert.is(fs.statSync(s.canary).mode & 0o7777, 0o600, 'the canary file keeps its mode');
    assert.is(fs.readFileSync(s.canary, 'utf8'), 'secret');
    const st = fs.lstatSync(s.service);
    assert.ok(st.isSocket(), "the other service's socket still exists");
    assert.is(st.mode & 0o7777, 0o600, "the other service's socket keeps its mode");
    assert.equal(fs.readdirSync(s.victim).sort(), ['canary', 'svc.sock'], 'nothing was created or removed in the private directory');
    // Codes other than these would mean the listener failed for a reason of its own.
    for (const code of Object.keys(report.codes)) assert.ok(['EADDRINUSE', 'ENOENT', 'ENOTDIR', 'EEXIST', 'ELOOP', 'EACCES'].includes(code), `unexpected failure ${code}`);
  } finally {
    socket.close(s.serviceFd);
    fs.rmSync(s.base, { recursive: true, force: true });
  }
}

test('listenUnix with mode, raced by another user swapping the socket and its parent directory, changes and deletes nothing else (with /proc)', async () => {
  await attack(false);
});

test('listenUnix with mode, raced the same way without /proc (a chroot or sandbox), changes and deletes nothing else either', async () => {
  await attack(true);
});

test.run();
