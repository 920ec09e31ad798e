// The netpoll/server examples, started as their npm scripts start them, driven by clients
// nobody here wrote: redis-cli, redis-benchmark and socat (each skipped, with a message,
// where it is not installed), and node:net.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { within } from '../helpers.js';

const examples = path.join(__dirname, '..', '..', 'examples');

function installed(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

interface Running {
  where: string;
  port: number;
  stop(): Promise<string>;
}

/** Starts `node dist/examples/<script> <arg>` and waits for its "listening on" line. */
async function start(script: string, arg: string): Promise<Running> {
  const child: ChildProcess = spawn(process.execPath, [path.join(examples, script), arg], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const where = await within(
    new Promise<string>((resolve, reject) => {
      child.stdout!.on('data', () => {
        const m = /listening on (\S+)/.exec(out);
        if (m) resolve(m[1]);
      });
      void exited.then(() => reject(new Error(`${script} exited before listening:\n${out}`)));
    }),
    10000,
    `${script} listening`,
  ).catch((e) => {
    child.kill('SIGKILL');
    throw e;
  });
  return {
    where,
    port: Number(/:(\d+)$/.exec(where)?.[1] ?? 0),
    async stop() {
      child.kill('SIGTERM');
      await within(exited, 10000, `${script} stopping`).catch((e) => {
        child.kill('SIGKILL');
        throw e;
      });
      return out;
    },
  };
}

function run(cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: 60000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

test('redis example: redis-cli commands, then redis-benchmark with pipelining', async () => {
  if (!installed('redis-cli') || !installed('redis-benchmark')) {
    console.log('  (redis-cli or redis-benchmark not installed: skipped; Debian: apt-get install redis-tools)');
    return;
  }
  const server = await start('redis.js', '0');
  try {
    const cli = (...args: string[]): Promise<string> => run('redis-cli', ['-p', String(server.port), ...args]).then((s) => s.trim());
    assert.is(await cli('ping'), 'PONG');
    assert.is(await cli('set', 'greeting', 'hello world'), 'OK');
    assert.is(await cli('get', 'greeting'), 'hello world');
    assert.is(await cli('incr', 'n'), '1');
    assert.is(await cli('incr', 'n'), '2');
    assert.is(await cli('del', 'greeting', 'n', 'missing'), '2');
    assert.is(await cli('get', 'greeting'), '');
    assert.match(await cli('nosuch'), /ERR unknown command/);
    // Pipelined: redis-cli --pipe sends everything at once.
    const pipe = await run('redis-cli', ['-p', String(server.port), '--pipe'], 'SET a 1\r\nINCR a\r\nINCR a\r\nGET a\r\n');
    assert.match(pipe, /errors: 0, replies: 4/);
    assert.is(await cli('get', 'a'), '3');
    const bench = await run('redis-benchmark', ['-p', String(server.port), '-q', '-n', '2000', '-c', '10', '-P', '16', '-t', 'ping,set,get,incr']);
    for (const t of ['PING_INLINE', 'PING_MBULK', 'SET', 'GET', 'INCR']) assert.match(bench, new RegExp(`${t}: [\\d.]+ requests per second`), t);
    console.log(`  redis-benchmark -n 2000 -c 10 -P 16: ${bench.split('\n').map((l) => /(\w+): ([\d.]+) requests/.exec(l)).filter(Boolean).map((m) => `${m![1]} ${Math.round(Number(m![2]))}/s`).join(', ')}`);
  } finally {
    assert.match(await server.stop(), /redis server stopped/);
  }
});

test('redis example on unix://, driven by socat', async () => {
  if (!installed('socat')) {
    console.log('  (socat not installed: skipped)');
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netpoll-redis-'));
  const file = path.join(dir, 'redis.sock');
  const server = await start('redis.js', `unix://${file}`);
  try {
    assert.is(server.where, file);
    const out = await run('socat', ['-t', '2', '-', `UNIX-CONNECT:${file}`], 'PING\r\nSET k v\r\nGET k\r\nQUIT\r\n');
    assert.is(out, '+PONG\r\n+OK\r\n$1\r\nv\r\n+OK\r\n');
  } finally {
    await server.stop();
    assert.not.ok(fs.existsSync(file), 'stop() removed the socket file');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('echo example on unix://: node:net clients, a large payload, a half-close, and socat', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netpoll-echo-'));
  const file = path.join(dir, 'echo.sock');
  const server = await start('echo.js', `unix://${file}`);
  let connections = 11;
  try {
    assert.is(server.where, file);
    const roundTrip = (data: Buffer): Promise<Buffer> =>
      new Promise((resolve, reject) => {
        const chunks: Buffer[] = [];
        const s = net.connect(file, () => s.end(data));
        s.on('data', (d) => chunks.push(d));
        s.on('error', reject);
        s.on('close', () => resolve(Buffer.concat(chunks)));
      });
    const small = await within(Promise.all(Array.from({ length: 10 }, (_, i) => roundTrip(Buffer.from(`client ${i}`)))), 10000, 'clients');
    small.forEach((b, i) => assert.is(b.toString(), `client ${i}`));
    const big = Buffer.alloc(2 << 20, 'ab');
    assert.ok((await within(roundTrip(big), 20000, 'the 2 MiB echo')).equals(big));
    if (installed('socat')) {
      assert.is(await run('socat', ['-t', '2', '-', `UNIX-CONNECT:${file}`], 'one\ntwo\n'), 'one\ntwo\n');
      connections++;
    } else console.log('  (socat not installed: that part skipped)');
  } finally {
    assert.match(await server.stop(), new RegExp(`echo server stopped after ${connections} connections`));
    assert.not.ok(fs.existsSync(file), 'stop() removed the socket file');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
