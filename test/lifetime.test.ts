// Lifetime: worker threads, keeping the process alive (or not), garbage
// collection and environment teardown releasing fds.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { close, openPoller } from '../src/index.js';
import { openFdCount, sleep, within } from './helpers.js';

const indexPath = path.resolve(__dirname, '..', 'src', 'index.js');

/** Runs a script in a fresh node process; returns its status, output and run time. */
function runScript(source: string, timeoutMs = 5000): { status: number | null; stdout: string; stderr: string; ms: number; signal: string | null } {
  const started = Date.now();
  const r = spawnSync(process.execPath, ['-e', source], { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, NETPOLL_INDEX: indexPath } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - started, signal: r.signal };
}

const prelude = `const np = require(process.env.NETPOLL_INDEX);`;

test('an idle poller with registered fds does not keep the process alive', () => {
  const r = runScript(`${prelude}
    const p = np.openPoller(); const [a, b] = np.pipe(); p.addRead({ fd: a });
    void p.trigger(np.Priority.High, () => 1);
    console.log('opened');`);
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout.trim(), 'opened');
  assert.ok(r.ms < 4000);
});

test('a polling poller keeps the process alive until it stops', () => {
  const r = runScript(`${prelude}
    const p = np.openPoller();
    const t0 = Date.now();
    p.polling(() => undefined).then((e) => console.log('stopped', e.message, Date.now() - t0 >= 250));
    // No timer keeps this process alive: only the poller does. A second process-level
    // handle would hide the bug, so stop it from a child's later exit instead:
    const { spawn } = require('node:child_process');
    spawn(process.execPath, ['-e', 'setTimeout(() => {}, 300)']).on('exit', () => p.close()).unref();`);
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout.trim(), 'stopped server is going to be shutdown true');
});

test('an unref()\'d polling poller lets the process exit; ref() holds it again', () => {
  const r = runScript(`${prelude}
    const p = np.openPoller();
    p.unref();
    p.polling(() => undefined);
    console.log('polling', p.hasRef());`);
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout.trim(), 'polling false');
  const held = runScript(`${prelude}
    const p = np.openPoller();
    p.unref(); p.ref();
    p.polling(() => undefined);
    console.log('polling');`, 1500);
  assert.is(held.signal, 'SIGTERM', 'the ref()\'d poller kept the process alive until the timeout');
});

test('a poller in a worker thread polls its own fds, and the worker exits cleanly', async () => {
  const code = `
    const { parentPort } = require('node:worker_threads');
    const np = require(${JSON.stringify(indexPath)});
    const p = np.openPoller();
    const [r, w] = np.pipe();
    p.addRead({ fd: r });
    np.write(w, Buffer.from('from worker'));
    const buf = Buffer.alloc(32);
    p.polling((fd) => { const n = np.read(fd, buf); parentPort.postMessage(buf.toString('utf8', 0, n)); return np.ErrEngineShutdown; })
      .then((e) => { parentPort.postMessage(e.message); p.close(); np.close(r); np.close(w); });`;
  const worker = new Worker(code, { eval: true });
  const messages: string[] = [];
  worker.on('message', (m) => messages.push(m));
  const exit = new Promise<number>((resolve) => worker.on('exit', resolve));
  assert.is(await within(exit, 5000, 'worker exit'), 0);
  assert.equal(messages, ['from worker', 'server is going to be shutdown']);
});

test('workers terminated mid-poll release their pollers\' fds (cleanup hook)', async () => {
  const baseline = openFdCount();
  for (let round = 0; round < 5; round++) {
    const workers = Array.from({ length: 4 }, () => new Worker(`
      const { parentPort } = require('node:worker_threads');
      const np = require(${JSON.stringify(indexPath)});
      const pollers = [np.openPoller(), np.openPoller()];
      const [r, w] = np.pipe();
      pollers[0].addRead({ fd: r });
      np.write(w, Buffer.from('busy'));
      void pollers[0].polling(() => undefined);   // level-triggered: always busy
      void pollers[1].polling(() => undefined);   // idle but polling
      parentPort.postMessage([r, w]);`, { eval: true }));
    const pipes = await Promise.all(workers.map((w) => new Promise<number[]>((resolve) => w.once('message', resolve))));
    await Promise.all(workers.map((w) => w.terminate()));
    // The pipes are the user's, not the poller's: the test closes them itself.
    for (const fds of pipes) fds.forEach(close);
  }
  await sleep(50);
  // Leaked, the pollers' fds would be 2 pollers x (epoll fd + eventfd) x 4 workers x 5 rounds = 80.
  const leaked = openFdCount() - baseline;
  assert.ok(leaked <= 2, `fds after terminate: +${leaked}`);
});

test('pollers dropped without close() release their fds when garbage-collected', async () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return; // the test runner passes --expose-gc
  const baseline = openFdCount();
  for (let i = 0; i < 200; i++) openPoller();
  assert.ok(openFdCount() - baseline >= 400, 'each poller holds two fds');
  for (let i = 0; i < 10 && openFdCount() - baseline > 10; i++) {
    gc();
    await sleep(20); // finalizers run after the collection, on the loop
  }
  assert.ok(openFdCount() - baseline <= 10, `left open: ${openFdCount() - baseline}`);
});

test.run();
