// Every example, started as its npm script would start it, driven by real clients
// (node:net, node:http, curl and wrk when installed), checked, and stopped.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile, fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { startCounterServer, type Counts } from '../examples/electron/server.js';
import type { MainMessage, UtilityMessage } from '../examples/electron/utility.js';
import { survivesBadEchoClients, survivesBadHttpClients } from './clients.js';
import { sleep, within } from './helpers.js';

const examples = path.join(__dirname, '..', 'examples');

interface Running {
  child: ChildProcess;
  port: number;
  output(): string;
  /** Sends SIGTERM and resolves with the exit code and everything printed. */
  stop(): Promise<{ code: number | null; output: string }>;
}

/** Starts `node dist/examples/<script> ...args` on a free port and waits for its "listening on" line. */
async function start(script: string, args: string[] = [], env: Record<string, string> = {}): Promise<Running> {
  const child = spawn(process.execPath, [path.join(examples, script), ...args], {
    env: { ...process.env, PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const port = await within(
    new Promise<number>((resolve, reject) => {
      const check = (): void => {
        const m = /listening on (?:\[[^\]]+\]|[\d.]+):(\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      };
      child.stdout!.on('data', check);
      void exited.then((code) => reject(new Error(`${script} exited (${code}) before listening:\n${out}`)));
    }),
    10000,
    `${script} listening`,
  ).catch((e) => {
    child.kill('SIGKILL');
    throw e;
  });
  return {
    child,
    port,
    output: () => out,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const code = await within(exited, 10000, `${script} stopping`).catch((e) => {
        child.kill('SIGKILL');
        throw e;
      });
      return { code, output: out };
    },
  };
}

/** Runs `fn` against a started example and always stops it. */
async function withExample(script: string, args: string[], env: Record<string, string>, fn: (r: Running) => Promise<void>): Promise<string> {
  const r = await start(script, args, env);
  try {
    await fn(r);
  } catch (e) {
    r.child.kill('SIGKILL');
    throw e;
  }
  const { code, output } = await r.stop();
  assert.is(code, 0, `exit code 0 after SIGTERM; output:\n${output}`);
  return output;
}

/** Sends `data` on a new connection (optionally pausing the reader for `pauseMs`) and resolves with all it got back once `expect` bytes arrived. */
function echoRoundTrip(port: number, data: Buffer, pauseMs = 0): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const c = net.connect(port, '127.0.0.1', () => {
      c.write(data);
      if (pauseMs > 0) {
        c.pause();
        setTimeout(() => c.resume(), pauseMs);
      }
    });
    c.on('data', (d) => {
      chunks.push(d);
      got += d.length;
      if (got >= data.length) c.end();
    });
    c.on('close', () => resolve(Buffer.concat(chunks)));
    c.on('error', reject);
  });
}

/** Writes raw bytes (optionally in pieces, with pauses) and resolves with everything read until the server closes or `until` matches. */
function rawExchange(port: number, pieces: (string | Buffer)[], until?: (text: string) => boolean, gapMs = 0): Promise<{ text: string; closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    let text = '';
    let finished = false;
    const c = net.connect(port, '127.0.0.1', async () => {
      for (const p of pieces) {
        c.write(p);
        if (gapMs > 0) await sleep(gapMs);
      }
    });
    c.setEncoding('latin1');
    c.on('data', (d: string) => {
      text += d;
      if (until?.(text) && !finished) {
        finished = true;
        c.destroy();
        resolve({ text, closedByServer: false });
      }
    });
    c.on('end', () => {
      if (finished) return;
      finished = true;
      c.destroy();
      resolve({ text, closedByServer: true });
    });
    c.on('error', reject);
  });
}

function get(agent: http.Agent, port: number, urlPath: string, method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, reused: req.reusedSocket }));
    });
    req.on('error', reject);
    req.end();
  });
}

function which(cmd: string): Promise<boolean> {
  return new Promise((resolve) => execFile('sh', ['-c', `command -v ${cmd}`], (err) => resolve(!err)));
}

function run(cmd: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { timeout: 10000 }, (err, stdout, stderr) => (err ? reject(err) : resolve({ stdout, stderr }))),
  );
}

const countMatches = (text: string, re: RegExp): number => (text.match(re) ?? []).length;

// ---- echo ----

test('echo example: many concurrent clients get their bytes back, a slow reader too', async () => {
  const output = await withExample('echo.js', [], {}, async ({ port }) => {
    const payloads = Array.from({ length: 40 }, (_, i) => randomBytes(1 + ((i * 7919) % 20000)));
    const replies = await within(Promise.all(payloads.map((p) => echoRoundTrip(port, p))), 20000, '40 echo clients');
    replies.forEach((r, i) => assert.ok(r.equals(payloads[i]), `client ${i} got its ${payloads[i].length} bytes back`));
    // 8 MiB to a client that does not read for a while: the server must queue, wait and resume.
    const big = randomBytes(8 * 1024 * 1024);
    const back = await within(echoRoundTrip(port, big, 300), 30000, 'the 8 MiB echo');
    assert.is(back.length, big.length);
    assert.ok(back.equals(big), '8 MiB came back intact');
  });
  assert.match(output, /echo server stopped after 41 connections/);
});

test('echo example: clients that reset, abandon their replies, read slowly or half-close cost only their own connection', async () => {
  await withExample('echo.js', [], {}, async ({ port }) => {
    await survivesBadEchoClients(port);
  });
});

// ---- the raw-poller echo (the benchmarks' baseline) ----

test('poller-echo example: concurrent clients, an 8 MiB echo to a slow reader, and bad clients', async () => {
  const output = await withExample('poller-echo.js', [], {}, async ({ port }) => {
    const payloads = Array.from({ length: 20 }, (_, i) => randomBytes(1 + ((i * 7919) % 20000)));
    const replies = await within(Promise.all(payloads.map((p) => echoRoundTrip(port, p))), 20000, '20 echo clients');
    replies.forEach((r, i) => assert.ok(r.equals(payloads[i]), `client ${i} got its ${payloads[i].length} bytes back`));
    const big = randomBytes(8 * 1024 * 1024);
    assert.ok((await within(echoRoundTrip(port, big, 300), 30000, 'the 8 MiB echo')).equals(big), '8 MiB came back intact');
    await survivesBadEchoClients(port);
  });
  assert.match(output, /poller echo server stopped after \d+ connections/);
});

// ---- HTTP ----

test('http example: keep-alive, status codes and headers over node:http', async () => {
  await withExample('http.js', [], {}, async ({ port }) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await get(agent, port, '/plaintext');
      assert.is(first.status, 200);
      assert.is(first.body, 'Hello, World!');
      assert.is(first.headers['content-length'], '13');
      assert.match(first.headers['content-type'] ?? '', /^text\/plain/);
      assert.ok(!Number.isNaN(Date.parse(first.headers.date ?? '')), 'a Date header');
      for (let i = 0; i < 5; i++) {
        const r = await get(agent, port, i % 2 ? '/' : '/plaintext?x=1');
        assert.is(r.status, 200);
        assert.is(r.body, 'Hello, World!');
        assert.ok(r.reused, 'the connection is kept alive and reused');
      }
      const head = await get(agent, port, '/plaintext', 'HEAD');
      assert.is(head.status, 200);
      assert.is(head.body, '');
      assert.is(head.headers['content-length'], '13');
      assert.is((await get(agent, port, '/nothing-here')).status, 404);
      const post = await get(agent, port, '/plaintext', 'POST');
      assert.is(post.status, 405);
      assert.is(post.headers.allow, 'GET, HEAD');
    } finally {
      agent.destroy();
    }
  });
});

test('http example: pipelined requests are answered in order; split and closing requests work', async () => {
  const output = await withExample('http.js', [], {}, async ({ port }) => {
    // 100 requests in one write, alternating paths: the replies come back in the same order.
    const requests: string[] = [];
    for (let i = 0; i < 100; i++) requests.push(`GET ${i % 2 ? '/missing' : '/plaintext'} HTTP/1.1\r\nHost: x\r\n\r\n`);
    const { text, closedByServer } = await within(
      rawExchange(port, [requests.join('')], (t) => countMatches(t, /HTTP\/1\.1 \d{3} /g) === 100),
      10000,
      '100 pipelined replies',
    );
    assert.not.ok(closedByServer);
    const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
    assert.equal(statuses, Array.from({ length: 100 }, (_, i) => (i % 2 ? 404 : 200)));
    assert.is(countMatches(text, /Hello, World!/g), 50);

    // A request in small pieces (the parser waits for the rest), then one with a body.
    const split = await within(
      rawExchange(port, ['GE', 'T /plain', 'text HTTP/1.1\r', '\nHost: x\r\n', '\r\n'], (t) => t.endsWith('Hello, World!'), 20),
      10000,
      'a split request',
    );
    assert.match(split.text, /^HTTP\/1\.1 200 OK\r\n/);
    const withBody = await within(
      rawExchange(port, ['POST /missing HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n'], (t) => t.endsWith('Hello, World!')),
      10000,
      'a request after a body',
    );
    assert.equal([...withBody.text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]), ['404', '200']);

    // Connection: close and HTTP/1.0 get their reply, then the server closes.
    const closing = await within(rawExchange(port, ['GET /plaintext HTTP/1.1\r\nConnection: close\r\n\r\n']), 10000, 'Connection: close');
    assert.ok(closing.closedByServer);
    assert.match(closing.text, /\r\nConnection: close\r\n/);
    assert.ok(closing.text.endsWith('Hello, World!'));
    const old = await within(rawExchange(port, ['GET / HTTP/1.0\r\n\r\n']), 10000, 'HTTP/1.0');
    assert.ok(old.closedByServer);
    assert.ok(old.text.endsWith('Hello, World!'));
    const oldKeepAlive = await within(
      rawExchange(port, ['GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'], (t) => t.endsWith('Hello, World!')),
      10000,
      'HTTP/1.0 keep-alive',
    );
    assert.not.ok(oldKeepAlive.closedByServer);
    assert.match(oldKeepAlive.text, /\r\nConnection: keep-alive\r\n/);

    // Garbage gets 400 and a close; a chunked body 501.
    const bad = await within(rawExchange(port, ['HELLO\r\n\r\n']), 10000, 'a bad request');
    assert.ok(bad.closedByServer);
    assert.match(bad.text, /^HTTP\/1\.1 400 Bad Request\r\n/);
    const chunked = await within(rawExchange(port, ['POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n']), 10000, 'a chunked request');
    assert.match(chunked.text, /^HTTP\/1\.1 501 /);
  });
  assert.match(output, /http server stopped after 8 connections/);
});

test('http example: clients that reset, abandon their replies, read slowly or half-close cost only their own connection', async () => {
  await withExample('http.js', [], {}, async ({ port }) => {
    await survivesBadHttpClients(port);
  });
});

test('http example: curl gets Hello, World! and reuses the connection (skipped without curl)', async () => {
  if (!(await which('curl'))) {
    console.log('  (curl not installed: skipped)');
    return;
  }
  await withExample('http.js', [], {}, async ({ port }) => {
    const url = `http://127.0.0.1:${port}/plaintext`;
    const one = await run('curl', ['-s', '-i', url]);
    assert.match(one.stdout, /^HTTP\/1\.1 200 OK\r\n/);
    assert.ok(one.stdout.endsWith('Hello, World!'));
    const two = await run('curl', ['-s', '-v', url, url]);
    assert.is(two.stdout, 'Hello, World!Hello, World!');
    assert.match(two.stderr, /Re-?using existing connection/i);
  });
});

test('http example: wrk on 16 keep-alive connections gets only 200s and no socket error (skipped without wrk)', async () => {
  if (!(await which('wrk'))) {
    console.log('  (wrk not installed: skipped)');
    return;
  }
  let requests = 0;
  const output = await withExample('http.js', [], {}, async ({ port }) => {
    const { stdout } = await run('wrk', ['-t1', '-c16', '-d1s', `http://127.0.0.1:${port}/plaintext`]);
    requests = Number(/(\d+) requests in/.exec(stdout)?.[1] ?? 0);
    assert.ok(requests > 0, stdout);
    assert.not.match(stdout, /Socket errors|Non-2xx/, stdout);
  });
  // wrk counts the replies it read; the server may have answered a few more as it stopped.
  const answered = Number(/http server stopped after \d+ connections, (\d+) requests/.exec(output)?.[1] ?? -1);
  assert.ok(answered >= requests, `${answered} answered, ${requests} counted by wrk`);
});

// ---- multicore ----

/** What each loop thread printed as it stopped: its connections, and for HTTP its requests. */
function perLoop(output: string): { connections: number[]; requests: number } {
  const lines = [...output.matchAll(/^loop (\d+): (\d+) connections(?:, (\d+) requests)?/gm)];
  const connections: number[] = [];
  for (const m of lines) connections[Number(m[1])] = Number(m[2]);
  return { connections, requests: lines.reduce((sum, m) => sum + Number(m[3] ?? 0), 0) };
}

for (const kind of ['echo', 'http'] as const) {
  test(`multicore ${kind} example: two loops with reusePort, both take connections`, async () => {
    const clients = 32;
    const output = await withExample('multicore.js', [kind], { WORKERS: '2' }, async ({ port, output }) => {
      assert.match(output(), /\(2 loops, SO_REUSEPORT\)/);
      const jobs = Array.from({ length: clients }, async (_, i) => {
        if (kind === 'echo') {
          const msg = Buffer.from(`message ${i}`);
          assert.ok((await echoRoundTrip(port, msg)).equals(msg));
        } else {
          const r = await rawExchange(port, ['GET /plaintext HTTP/1.1\r\nConnection: close\r\n\r\n']);
          assert.ok(r.text.startsWith('HTTP/1.1 200 OK\r\n') && r.text.endsWith('Hello, World!'), r.text);
        }
      });
      await within(Promise.all(jobs), 20000, `${clients} clients`);
    });
    const { connections, requests } = perLoop(output);
    assert.is(connections.length, 2, output);
    assert.is(connections[0]! + connections[1]!, clients, output);
    // Whoever spreads them (the kernel's SO_REUSEPORT hash, or the acceptor where the OS does
    // not balance), all 32 on one loop would be a 1 in 2^31 event.
    assert.ok(connections[0]! > 0 && connections[1]! > 0, `both loops served: ${connections.join(' + ')}`);
    if (kind === 'http') assert.is(requests, clients);
    assert.match(output, new RegExp(`multicore ${kind} server stopped`));
  });
}

// ---- reactor: the engine's acceptor hands connections to loop threads ----

for (const [kind, lb] of [
  ['echo', 'round-robin'],
  ['http', 'round-robin'],
  ['echo', 'least-connections'],
  ['http', 'source-addr-hash'],
] as const) {
  test(`reactor ${kind} example (${lb}): the acceptor hands every connection to a loop, and both loops serve`, async () => {
    const clients = 32;
    const output = await withExample('reactor.js', [kind, '--lb', lb], { WORKERS: '2' }, async ({ port, output }) => {
      assert.match(output(), new RegExp(`\\(2 loops, ${lb}\\)`));
      // Two waves: the second one connects while the first one's connections are open.
      for (let wave = 0; wave < 2; wave++) {
        const jobs = Array.from({ length: clients / 2 }, async (_, i) => {
          if (kind === 'echo') {
            const msg = randomBytes(1 + ((i * 7919) % 50000));
            assert.ok((await echoRoundTrip(port, msg)).equals(msg), `client ${i} got its bytes back`);
          } else {
            const r = await rawExchange(port, ['GET /plaintext HTTP/1.1\r\nConnection: close\r\n\r\n']);
            assert.ok(r.text.startsWith('HTTP/1.1 200 OK\r\n') && r.text.endsWith('Hello, World!'), r.text);
          }
        });
        await within(Promise.all(jobs), 20000, `${clients / 2} clients`);
      }
    });
    const { connections, requests } = perLoop(output);
    assert.is(connections.length, 2, output);
    assert.is(connections[0]! + connections[1]!, clients, output);
    if (lb === 'round-robin') assert.equal(connections, [clients / 2, clients / 2], 'round-robin alternates');
    // The hash spreads 32 ephemeral ports; least-connections counts the hand-offs in flight,
    // so each wave's concurrent connections reach both loops.
    else assert.ok(connections[0]! > 0 && connections[1]! > 0, `both loops served: ${connections.join(' + ')}`);
    if (kind === 'http') assert.is(requests, clients);
    assert.match(output, new RegExp(`reactor ${kind} server stopped`));
  });
}

// ---- sharded counter: each key owned by one loop thread, commands forwarded to it ----

/** A client of the counter's inline protocol: one command, then its one-line reply. */
async function counterClient(port: number): Promise<{ command(line: string): Promise<string>; close(): void }> {
  const c = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    c.once('connect', resolve);
    c.once('error', reject);
  });
  c.setEncoding('latin1');
  let buffered = '';
  const waiting: Array<(line: string) => void> = [];
  c.on('data', (d: string) => {
    buffered += d;
    for (let nl = buffered.indexOf('\r\n'); nl >= 0 && waiting.length > 0; nl = buffered.indexOf('\r\n')) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 2);
      waiting.shift()!(line);
    }
  });
  return {
    command(line) {
      return new Promise((resolve) => {
        waiting.push(resolve);
        c.write(`${line}\r\n`);
      });
    },
    close: () => c.destroy(),
  };
}

test('sharded counter example: 4 clients on 4 loop threads INCR one key 50 times each, and the count is exact', async () => {
  const CLIENTS = 4;
  const ROUNDS = 50;
  const output = await withExample('sharded-counter.js', [], { WORKERS: '4' }, async ({ port }) => {
    // Round-robin: the four connections land on the four loops, so three of them
    // forward every INCR to the key's owner.
    const clients = await within(Promise.all(Array.from({ length: CLIENTS }, () => counterClient(port))), 10000, 'connect');
    const seen = await within(
      Promise.all(
        clients.map(async (client) => {
          const replies: number[] = [];
          for (let i = 0; i < ROUNDS; i++) {
            const reply = await client.command('INCR c');
            assert.match(reply, /^:\d+$/);
            replies.push(Number(reply.slice(1)));
          }
          return replies;
        }),
      ),
      30000,
      `${CLIENTS} clients x ${ROUNDS} INCR`,
    );
    for (const replies of seen) assert.ok(replies.every((n, i) => i === 0 || n > replies[i - 1]!), `each client's counts increase: ${replies.join(' ')}`);
    // Every count from 1 to 200 was given out exactly once: no INCR lost, none counted twice.
    assert.equal([...seen.flat()].sort((a, b) => a - b), Array.from({ length: CLIENTS * ROUNDS }, (_, i) => i + 1));
    assert.is(await clients[0]!.command('GET c'), `:${CLIENTS * ROUNDS}`);
    for (const c of clients) c.close();
    // Pipelined commands for keys of every owner: the replies come back in command order,
    // though the forwarded ones are answered later than the local ones.
    const keys = Array.from({ length: 12 }, (_, i) => `k${i}`);
    const pipelined = [...keys, ...keys].map((k) => `INCR ${k}\r\n`).join('') + 'QUIT\r\n';
    const r = await within(rawExchange(port, [pipelined]), 10000, 'pipelined INCRs');
    assert.is(r.text, [...keys.map(() => ':1\r\n'), ...keys.map(() => ':2\r\n'), '+OK\r\n'].join(''));
    assert.ok(r.closedByServer, 'QUIT ends the connection');
    // A client that half-closes after its commands (`printf … | nc -N`) still gets every answer,
    // the forwarded ones included, then the close.
    const halfClosed = await within(
      new Promise<string>((resolve, reject) => {
        let text = '';
        const c = net.connect(port, '127.0.0.1', () => c.end(keys.map((k) => `GET ${k}\r\n`).join('')));
        c.setEncoding('latin1');
        c.on('data', (d: string) => (text += d));
        c.on('error', reject);
        c.on('close', () => resolve(text));
      }),
      10000,
      'a half-closing client',
    );
    assert.is(halfClosed, keys.map(() => ':2\r\n').join(''));
  });
  const forwarded = [...output.matchAll(/(\d+) forwarded/g)].reduce((sum, m) => sum + Number(m[1]), 0);
  assert.ok(forwarded >= (CLIENTS - 1) * ROUNDS, `INCRs went to the key's owner: ${forwarded} forwarded\n${output}`);
  assert.match(output, /sharded counter stopped/);
});

test('sharded counter example: the guide\'s snippet is a fragment of it (its lines, in order)', () => {
  const root = path.join(__dirname, '..', '..');
  const guide = fs.readFileSync(path.join(root, 'docs', 'guide.md'), 'utf8');
  const block = /<!-- doctest: typecheck \(a fragment of examples\/sharded-counter\.ts[^\n]*-->\n```ts\n([\s\S]*?)\n```/.exec(guide);
  assert.ok(block, 'docs/guide.md shows the sharded design');
  const example = fs.readFileSync(path.join(root, 'examples', 'sharded-counter.ts'), 'utf8').split('\n');
  let at = 0;
  for (const line of block[1]!.split('\n')) {
    if (line.trim() === '' || line.startsWith('import ')) continue; // the guide's imports are its own
    while (at < example.length && example[at] !== line) at++;
    assert.ok(at < example.length, `guide line not in examples/sharded-counter.ts (or out of order): ${line}`);
    at++;
  }
});

// ---- Electron utility-process module, under plain Node ----
// Before the tests below open pollers in this process: libkqueue (the kqueue backend's
// test build on Linux) closes, in a forked child, descriptors of kqueues it has not yet
// noticed were closed, which can be numbers fork() just gave the child's stdio. Real
// kqueue kernels have no such fork handler.

test('electron example: the utility-process module echoes, sends counts through its parentPort, and stops when main asks', async () => {
  // The stand-in gives the child the parentPort Electron's utilityProcess.fork() would.
  const child = fork(path.join(__dirname, 'electron-parent-port.js'), [path.join(examples, 'electron', 'utility.js')], {
    env: { ...process.env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const messages: UtilityMessage[] = [];
  const waiters: (() => void)[] = [];
  child.on('message', (m: UtilityMessage) => {
    messages.push(m);
    for (const w of waiters.splice(0)) w();
  });
  const next = async (pred: (m: UtilityMessage) => boolean, what: string): Promise<UtilityMessage> => {
    const found = (): UtilityMessage | undefined => messages.find(pred);
    while (found() === undefined) {
      await within(new Promise<void>((resolve) => waiters.push(resolve)), 5000, `${what}; output:\n${output}`);
    }
    return found()!;
  };
  const latestCounts = (): Counts | undefined => {
    const m = [...messages].reverse().find((x) => x.type === 'counts');
    return m?.type === 'counts' ? m.counts : undefined;
  };
  const sockets: net.Socket[] = [];
  try {
    const listening = await next((m) => m.type === 'listening', 'a listening message');
    assert.ok(listening.type === 'listening');
    const port = Number(listening.counts.address.split(':')[1]);
    assert.ok(port > 0);
    assert.equal(listening.counts, { address: `127.0.0.1:${port}`, open: 0, total: 0, bytes: 0 });

    const echoed = await Promise.all(
      [0, 1, 2].map(
        (i) =>
          new Promise<string>((resolve, reject) => {
            const s = net.connect(port, '127.0.0.1', () => s.write(`client ${i}`));
            sockets.push(s);
            s.setEncoding('utf8');
            s.once('data', resolve);
            s.on('error', reject);
          }),
      ),
    );
    assert.equal(echoed, ['client 0', 'client 1', 'client 2']);
    await next(() => { const c = latestCounts(); return c !== undefined && c.open === 3 && c.bytes === 24; }, 'counts of 3 open connections and 24 bytes');
    for (const s of sockets) s.end();
    await next(() => { const c = latestCounts(); return c !== undefined && c.open === 0 && c.total === 3; }, 'counts of 0 open connections');

    child.send({ type: 'stop' } satisfies MainMessage);
    await next((m) => m.type === 'stopped', 'a stopped message');
    assert.not.ok(messages.some((m) => m.type === 'failed'), output);
    // With the server stopped and main gone, nothing of netpoll's keeps the process alive.
    child.disconnect();
    assert.is(await within(exited, 5000, 'the utility process exiting by itself'), 0, output);
  } finally {
    for (const s of sockets) s.destroy();
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

// ---- Electron main-process module, under plain Node ----

test('electron example: the main-process server echoes and reports connection counts', async () => {
  const reports: Counts[] = [];
  const server = await startCounterServer({ intervalMs: 10, onCounts: (c) => reports.push(c) });
  const waitFor = async (pred: (c: Counts) => boolean, what: string): Promise<void> => {
    for (let i = 0; i < 500 && !(reports.length > 0 && pred(reports[reports.length - 1])); i++) await sleep(10);
    assert.ok(reports.length > 0 && pred(reports[reports.length - 1]), what);
  };
  const sockets: net.Socket[] = [];
  try {
    assert.equal(server.counts(), { address: `127.0.0.1:${server.port}`, open: 0, total: 0, bytes: 0 });
    const echoed = await Promise.all(
      [0, 1, 2].map(
        (i) =>
          new Promise<string>((resolve, reject) => {
            const s = net.connect(server.port, '127.0.0.1', () => s.write(`client ${i}`));
            sockets.push(s);
            s.setEncoding('utf8');
            s.once('data', resolve);
            s.on('error', reject);
          }),
      ),
    );
    assert.equal(echoed, ['client 0', 'client 1', 'client 2']);
    await waitFor((c) => c.open === 3 && c.total === 3 && c.bytes === 24, 'a report of 3 open connections and 24 bytes');
    for (const s of sockets) s.end();
    await waitFor((c) => c.open === 0 && c.total === 3, 'a report of 0 open connections');
  } finally {
    for (const s of sockets) s.destroy();
    server.close();
  }
  await within(server.done, 5000, 'server.done');
  assert.is(server.counts().open, 0);
});

test('electron example: the main-process server survives clients that reset, abandon their replies, read slowly or half-close', async () => {
  const server = await startCounterServer();
  try {
    await survivesBadEchoClients(server.port);
    for (let i = 0; i < 200 && server.counts().open > 0; i++) await sleep(10);
    assert.is(server.counts().open, 0, 'every connection was closed and forgotten');
  } finally {
    server.close();
  }
  await within(server.done, 5000, 'server.done');
});

test.run();
