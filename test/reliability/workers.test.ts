// Worker threads terminated abruptly while polling: 8 workers, each polling a busy
// socketpair echo, an idle poller and a trigger storm, terminated mid-poll, for 50
// rounds. The process must not crash, nothing may reject unhandled, and the fds
// the pollers held must all be released (the environment cleanup hook).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { close } from '../../src/index.js';
import { openFdCount, sleep, within } from '../helpers.js';
import { trapProcessFailures } from './support.js';

const ROUNDS = Number(process.env.NETPOLL_WORKER_ROUNDS ?? 50);
const WORKERS = 8;
const indexPath = path.resolve(__dirname, '..', '..', 'src', 'index.js');

// Echo over a socketpair: the worker writes on one end, its poller echoes on the other
// and reads the echo back, forever; it reports after its first verified echoes.
const workerSource = `
  const { parentPort } = require('node:worker_threads');
  const np = require(${JSON.stringify(indexPath)});
  const busy = np.openPoller();
  const idle = np.openPoller();
  const [server, client] = np.socketpair();
  parentPort.postMessage({ fds: [server, client] });
  const buf = Buffer.alloc(4096);
  let echoes = 0, reported = false;
  const message = Buffer.from('ping '.repeat(100));
  busy.addRead({ fd: server, callback: (fd) => { const n = np.read(fd, buf); if (n > 0) np.write(fd, buf.subarray(0, n)); } });
  busy.addRead({ fd: client, callback: (fd) => {
    const n = np.read(fd, buf);
    if (n > 0) { echoes++; np.write(client, message); }
    if (echoes >= 20 && !reported) { reported = true; parentPort.postMessage({ echoing: echoes }); }
  } });
  void idle.polling(() => undefined);
  (async () => { for await (const _ of np.openPoller().events({ batch: true })) break; })(); // a third, iterating (never yields)
  // The busy part starts when every worker has loaded, so that they do not slow each other's start.
  parentPort.once('message', () => {
    np.write(client, message);
    // Tasks in flight when the worker dies: their promises must not surface anywhere.
    const storm = () => { for (let i = 0; i < 64; i++) void busy.trigger(i % 2, () => i); setImmediate(storm); };
    storm();
    void busy.polling();
  });
  parentPort.postMessage({ loaded: true });
`;

test(`${WORKERS} workers polling and echoing, terminated mid-poll for ${ROUNDS} rounds, leave no fd behind`, async () => {
  const trap = trapProcessFailures();
  const baseline = openFdCount();
  const started = Date.now();
  const workerErrors: unknown[] = [];
  let echoes = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const workers = Array.from({ length: WORKERS }, () => new Worker(workerSource, { eval: true }));
    const userFds: number[] = [];
    const loaded = workers.map((w) => new Promise<void>((resolve) => w.on('message', (m: { loaded?: boolean }) => m.loaded && resolve())));
    const ready = workers.map(
      (w) =>
        new Promise<void>((resolve, reject) => {
          w.on('error', (e) => {
            workerErrors.push(e);
            reject(e);
          });
          w.on('message', (m: { fds?: number[]; echoing?: number }) => {
            if (m.fds) userFds.push(...m.fds);
            if (m.echoing) {
              echoes += m.echoing;
              resolve();
            }
          });
        }),
    );
    await within(Promise.all(loaded), 20000, `round ${round}: workers loaded`);
    for (const w of workers) w.postMessage('go');
    await within(Promise.all(ready), 20000, `round ${round}: workers echoing`);
    // Let them run a moment longer, by a different amount each round, then cut them off.
    await sleep(round % 5);
    const exits = await within(Promise.all(workers.map((w) => w.terminate())), 20000, `round ${round}: terminate`);
    assert.ok(exits.every((code) => code === 1), `terminated workers exit with 1: ${exits}`);
    // The socketpairs are the user's (the workers'): the test closes them itself.
    for (const fd of userFds) close(fd);
  }
  await sleep(50);
  const leaked = openFdCount() - baseline;
  console.log(`  [workers] ${ROUNDS} rounds x ${WORKERS} workers (${echoes}+ echoes) in ${((Date.now() - started) / 1000).toFixed(1)} s; fds ${baseline} -> ${baseline + leaked}`);
  // Leaked, each round would leave 8 workers x 3 pollers x 2 fds = 48.
  assert.ok(leaked <= 2, `fds left after ${ROUNDS} rounds: +${leaked}`);
  assert.equal(workerErrors, [], 'no worker raised an error');
  assert.equal(trap.failures, [], 'no unhandled rejection or uncaught exception');
});

test.run();
