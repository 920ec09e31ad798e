// Clients that misbehave the ways real ones do, for the server examples (docs and
// examples/): they reset, leave with replies unread, read slowly and half-close. A server
// must survive each on that one connection, and keep serving everyone else.
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { within } from './helpers.js';

function connect(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, host, () => resolve(s));
    s.once('error', reject);
  });
}

/** Writes `data` and resets the connection (RST): at once, or once `afterBytes` came back. */
export async function resettingClient(port: number, data: Buffer, afterBytes = 0): Promise<void> {
  const s = await connect(port);
  s.on('error', () => undefined);
  s.write(data);
  if (afterBytes > 0) {
    let got = 0;
    await new Promise<void>((resolve) => {
      s.on('data', (d: Buffer) => {
        got += d.length;
        if (got >= afterBytes) resolve();
      });
      s.on('close', () => resolve());
    });
  }
  s.resetAndDestroy();
}

/**
 * Writes `data` and never reads: the server's replies pile up until its writes come back
 * short, and then this closes with them unread, which the kernel answers with a reset, so
 * the server's next write fails (EPIPE or ECONNRESET).
 */
export async function abandoningClient(port: number, data: Buffer, lingerMs = 200): Promise<void> {
  const s = await connect(port);
  s.on('error', () => undefined);
  s.pause();
  s.write(data);
  await new Promise((resolve) => setTimeout(resolve, lingerMs));
  s.destroy();
}

/** Writes `data`, pauses reading for `pauseMs`, and resolves with what came back once it is all there. */
export async function echoedBack(port: number, data: Buffer, pauseMs = 0): Promise<Buffer> {
  const s = await connect(port);
  const chunks: Buffer[] = [];
  let got = 0;
  const done = new Promise<Buffer>((resolve, reject) => {
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (got >= data.length) {
        s.end();
        resolve(Buffer.concat(chunks));
      }
    });
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks)));
  });
  s.write(data);
  if (pauseMs > 0) {
    s.pause();
    setTimeout(() => s.resume(), pauseMs);
  }
  return done;
}

/**
 * Writes `data`, then shuts down its writing side (FIN: a half-close) and reads on until
 * the server closes: everything the server sent, and whether it closed cleanly.
 */
export async function halfClosingClient(port: number, data: Buffer): Promise<{ received: Buffer; ended: boolean }> {
  const s = await connect(port);
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    let ended = false;
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('end', () => (ended = true));
    s.on('error', reject);
    s.on('close', () => resolve({ received: Buffer.concat(chunks), ended }));
    s.end(data);
  });
}

/**
 * Runs every kind of bad client against an echo server at once, checks that the
 * well-behaved among them (the slow reader, the half-closers) got their bytes back,
 * and that a fresh client is still served afterwards.
 */
export async function survivesBadEchoClients(port: number): Promise<void> {
  const slow = randomBytes(4 * 1024 * 1024);
  const halves = [0, 1, 2].map((i) => randomBytes(1000 + i * 30000));
  const jobs: Promise<unknown>[] = [
    ...Array.from({ length: 6 }, (_, i) => resettingClient(port, randomBytes(1000 + i * 20000))),
    ...Array.from({ length: 4 }, (_, i) => resettingClient(port, randomBytes(50000), 1000 + i * 10000)),
    ...Array.from({ length: 3 }, () => abandoningClient(port, randomBytes(4 * 1024 * 1024))),
    echoedBack(port, slow, 300).then((back) => assert.ok(back.equals(slow), `the slow reader got its ${slow.length} bytes back (${back.length})`)),
    ...halves.map((h) =>
      halfClosingClient(port, h).then(({ received, ended }) => {
        assert.ok(received.equals(h), `a half-closing client got its ${h.length} bytes back (${received.length})`);
        assert.ok(ended, 'and then the server closed');
      }),
    ),
  ];
  await within(Promise.all(jobs), 30000, 'the bad clients');
  const hello = Buffer.from('still serving?');
  assert.ok((await within(echoedBack(port, hello), 10000, 'a client after them')).equals(hello), 'the server still echoes');
}

/** `count` pipelined GET requests. */
function pipelined(count: number): Buffer {
  return Buffer.from('GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(count), 'latin1');
}

/** Sends `count` pipelined requests, pauses reading for `pauseMs`, and resolves with how many replies came back. */
async function repliesTo(port: number, count: number, pauseMs: number): Promise<number> {
  const s = await connect(port);
  s.setEncoding('latin1');
  let text = '';
  let replies = 0;
  const done = new Promise<number>((resolve, reject) => {
    s.on('data', (d: string) => {
      text += d;
      // Count whole replies as they complete, keeping only the unfinished tail.
      for (let at = text.indexOf('Hello, World!'); at >= 0; at = text.indexOf('Hello, World!')) {
        replies++;
        text = text.slice(at + 13);
      }
      if (replies >= count) {
        s.destroy();
        resolve(replies);
      }
    });
    s.on('error', reject);
    s.on('close', () => resolve(replies));
  });
  s.write(pipelined(count));
  if (pauseMs > 0) {
    s.pause();
    setTimeout(() => s.resume(), pauseMs);
  }
  return done;
}

/**
 * The same bad clients against an HTTP server that answers GET /plaintext with
 * "Hello, World!": resets mid-request and mid-reply, pipelined requests whose replies
 * are never read, a slow reader of thousands of replies, a client that half-closes
 * after its request; and then a fresh request is still answered.
 */
export async function survivesBadHttpClients(port: number): Promise<void> {
  const halfRequest = Buffer.from('GET /plaintext HTTP/1.1\r\nHo', 'latin1');
  const jobs: Promise<unknown>[] = [
    ...Array.from({ length: 4 }, () => resettingClient(port, halfRequest)),
    ...Array.from({ length: 4 }, (_, i) => resettingClient(port, pipelined(2000), 1000 + i * 20000)),
    ...Array.from({ length: 3 }, () => abandoningClient(port, pipelined(40000))),
    repliesTo(port, 20000, 300).then((n) => assert.is(n, 20000, 'the slow reader got every reply')),
    halfClosingClient(port, pipelined(3)).then(({ received, ended }) => {
      assert.is(received.toString('latin1').split('Hello, World!').length - 1, 3, 'a half-closing client got its 3 replies');
      assert.ok(ended, 'and then the server closed');
    }),
  ];
  await within(Promise.all(jobs), 30000, 'the bad clients');
  assert.is(await within(repliesTo(port, 1, 0), 10000, 'a request after them'), 1, 'the server still answers');
}
