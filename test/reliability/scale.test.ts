// Scale: 8,000 live TCP connections registered with one poller, which serves them
// all. The far ends are node:net sockets that each send a unique message, check the
// echo, and hang up; the poller side reads, echoes, and closes on end of stream.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as net from 'node:net';
import { ErrEngineShutdown, close, dialTCP, isErrorEvent, openPoller, read, write, type IOEvent, type IOFlags, type StopError } from '../../src/index.js';
import { openFdCount, sleep, within } from '../helpers.js';
import { fdLimit, rssMiB, trapProcessFailures } from './support.js';

const WANTED = Number(process.env.NETPOLL_SCALE_CONNECTIONS ?? 8000);
const BATCH = 256; // dials between accepts: stays under the listen backlog

test(`${WANTED} TCP connections on one poller are every one served`, async () => {
  const trap = trapProcessFailures();
  const baseline = openFdCount();
  // Each connection costs two fds here (ours and node's accepted one).
  const limit = fdLimit();
  const n = Math.min(WANTED, Math.floor((limit - baseline - 512) / 2));
  if (n < WANTED) console.log(`  [scale] ulimit -n is ${limit}: scaling down to ${n} connections (raise it to 20000 for ${WANTED})`);
  assert.ok(n >= 100, `ulimit -n ${limit} leaves room for only ${n} connections`);

  let served = 0;
  let accepted = 0;
  const failures: string[] = [];
  const server = net.createServer((socket) => {
    const id = accepted++;
    const message = `connection ${id} says ${Math.random().toString(36).slice(2)}\n`;
    let echoed = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      echoed += chunk;
      if (echoed.length < message.length) return;
      if (echoed === message) served++;
      else failures.push(`connection ${id}: sent ${JSON.stringify(message)}, got back ${JSON.stringify(echoed)}`);
      socket.end();
    });
    socket.on('error', (e) => failures.push(`connection ${id}: ${e.message}`));
    socket.write(message);
  });
  await new Promise<void>((resolve) => server.listen({ port: 0, host: '127.0.0.1', backlog: 1024 }, resolve));
  const port = (server.address() as net.AddressInfo).port;

  const rssStart = rssMiB();
  const started = Date.now();
  const poller = openPoller();
  const buf = Buffer.alloc(4096);
  let open = 0;
  let errors = 0;
  const echo = (fd: number, event: IOEvent, flags: IOFlags): StopError | undefined => {
    const got = read(fd, buf);
    if (got > 0) {
      // Small messages on an idle socket: the kernel takes them whole.
      assert.is(write(fd, buf.subarray(0, got)), got);
      return undefined;
    }
    if (got === -1 && !isErrorEvent(event, flags)) return undefined;
    if (got !== 0) errors++;
    poller.delete(fd);
    close(fd);
    open--;
    return open === 0 && served + errors + failures.length >= n ? ErrEngineShutdown : undefined;
  };
  try {
    for (let dialed = 0; dialed < n; ) {
      const batch = Math.min(BATCH, n - dialed);
      for (let i = 0; i < batch; i++) {
        const fd = dialTCP('127.0.0.1', port);
        poller.addRead({ fd, callback: echo });
        open++;
      }
      dialed += batch;
      // Let node accept them before dialing more (blocking dials would stall on a full backlog).
      const deadline = Date.now() + 10000;
      while (accepted < dialed && Date.now() < deadline) await sleep(1);
      assert.is(accepted, dialed, 'every dial was accepted');
    }
    const connected = Date.now();
    const rssPeak = rssMiB();
    assert.is(open, n);
    const result = await within(poller.polling(), 30000, `serving ${n} connections`);
    const done = Date.now();
    assert.is(result, ErrEngineShutdown);
    console.log(
      `  [scale] ${n} connections: dialed and registered in ${connected - started} ms, all served in ${done - connected} ms; ` +
        `RSS ${rssStart} MiB -> ${rssPeak} MiB connected (+${Math.round((rssPeak - rssStart) * 1024 / n * 10) / 10} KiB each, both ends) -> ${rssMiB()} MiB served; ` +
        `event list grew to ${poller.eventListSize}`,
    );
    assert.equal(failures.slice(0, 5), [], 'every echo came back intact');
    assert.is(served, n, 'every connection was served');
    assert.is(errors, 0, 'no connection failed');
  } finally {
    poller.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  await sleep(50);
  assert.ok(openFdCount() - baseline <= 2, `fds left: +${openFdCount() - baseline}`);
  assert.equal(trap.failures, []);
});

test.run();
