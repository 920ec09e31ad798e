// Lifetime: worker threads, keeping the process alive (or not), garbage
// collection and environment teardown releasing fds.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { close, openPoller } from '../src/index.js';
import { binding } from '../src/binding.js';
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
  // Leaked, the pollers' fds would be 2 pollers x (epoll fd, its private dup, eventfd) x 4 workers x 5 rounds = 120.
  const leaked = openFdCount() - baseline;
  assert.ok(leaked <= 2, `fds after terminate: +${leaked}`);
});

test('pollers dropped without close() release their fds when garbage-collected', async () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return; // the test runner passes --expose-gc
  const baseline = openFdCount();
  for (let i = 0; i < 200; i++) openPoller();
  assert.ok(openFdCount() - baseline >= 400, 'each poller holds two fds at least');
  for (let i = 0; i < 10 && openFdCount() - baseline > 10; i++) {
    gc();
    await sleep(20); // finalizers run after the collection, on the loop
  }
  assert.ok(openFdCount() - baseline <= 10, `left open: ${openFdCount() - baseline}`);
});

for (const waiterThread of [false, true]) {
  const route = waiterThread ? 'waiter thread' : 'the loop watching';
  test(`poller.fd closed with fs.closeSync in the same tick as polling() rejects polling() with EBADF, never an abort (${route})`, () => {
    // libuv starts watching on the next loop turn, after the check polling() makes at
    // once: given the closed number, it would abort the process.
    const r = runScript(`${prelude}
      const fs = require('node:fs');
      const p = np.openPoller({ waiterThread: ${waiterThread} });
      const [r, w] = np.pipe();
      p.addRead({ fd: r });
      np.write(w, Buffer.from('x'));
      const running = p.polling(() => np.ErrEngineShutdown);
      fs.closeSync(p.fd);
      running.then((e) => console.log('resolved', e.message), (e) => console.log('rejected', e.code, e.syscall, p.fd))
        .then(() => p.polling()).catch((e) => console.log('again', e.code))
        .finally(() => { p.close(); np.close(r); np.close(w); });`);
    assert.is(r.signal, null, `killed by ${r.signal}: ${r.stderr}`);
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stdout.trim(), `rejected EBADF ${binding.backend.syscalls.wait} -1\nagain EBADF`, 'poller.fd reads -1 once the poller found its number gone');
  });

  test(`a poller whose fd number was closed behind its back and taken by another poller neither polls nor closes that poller's fd (${route})`, () => {
    const r = runScript(`${prelude}
      const fs = require('node:fs');
      const a = np.openPoller({ waiterThread: ${waiterThread} });
      const n = a.fd;
      fs.closeSync(n);
      const b = np.openPoller({ waiterThread: ${waiterThread} });
      if (b.fd !== n) { console.log('number not reused', n, b.fd); process.exit(0); }
      const [r, w] = np.pipe();
      b.addRead({ fd: r });
      np.write(w, Buffer.from('x'));
      (async () => {
        const stolen = [];
        const first = await a.polling((fd) => { stolen.push(fd); return np.ErrEngineShutdown; }).then(() => 'resolved', (e) => e.code);
        a.close();
        const second = await b.polling(() => np.ErrEngineShutdown).then((e) => e.message, (e) => e.code);
        let open = true;
        try { fs.fstatSync(n); } catch { open = false; }
        console.log(first, stolen.length, second, open, b.fd === n);
        b.close(); np.close(r); np.close(w);
      })();`);
    assert.is(r.signal, null, `killed by ${r.signal}: ${r.stderr}`);
    assert.is(r.status, 0, r.stderr);
    if (r.stdout.startsWith('number not reused')) return; // something else took it: nothing to check
    assert.is(r.stdout.trim(), 'EBADF 0 server is going to be shutdown true true');
  });
}

test('a worker cannot close() the main thread\'s poller fd (EBUSY); once fs.closeSync freed the number for its own pipe, the main poller\'s close() leaves that pipe open', async () => {
  const poller = openPoller();
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const fs = require('node:fs');
     const np = require(${JSON.stringify(indexPath)});
     const fd = workerData;
     let viaClose;
     try { np.close(fd); viaClose = 'closed'; } catch (e) { viaClose = e.code; }
     fs.closeSync(fd); // behind netpoll's back
     const [r1, w1] = np.pipe();
     const keep = np.socket.dup(r1);
     let mine;
     try { np.close(r1); mine = 'closed'; } catch (e) { mine = e.code; } // the number is the worker's now
     const [r, w] = np.pipe();
     parentPort.postMessage({ viaClose, mine, reused: r1 === fd && r === fd });
     parentPort.once('message', () => {
       let result;
       try {
         np.write(w, Buffer.from('still open'));
         const buf = Buffer.alloc(32);
         result = buf.toString('utf8', 0, np.read(r, buf));
       } catch (e) { result = e.code; }
       for (const x of [r, w, w1, keep]) np.close(x);
       parentPort.postMessage(result);
     });`,
    { eval: true, workerData: poller.fd },
  );
  try {
    const next = () => within(new Promise<any>((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); }), 5000, 'the worker');
    const first = await next();
    assert.is(first.viaClose, 'EBUSY', 'netpoll\'s close() refuses another thread\'s poller fd');
    assert.is(first.mine, 'closed', 'but not a number the poller no longer owns');
    const checked = next();
    poller.close();
    worker.postMessage('check');
    const result = await checked;
    if (!first.reused) return; // the worker's pipes got other numbers: nothing was at risk
    assert.is(result, 'still open');
  } finally {
    poller.close();
    await worker.terminate();
  }
});

test.run();
