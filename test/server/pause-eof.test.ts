// A paused connection whose peer sent its last bytes and then its end of stream: resume()
// must hand the buffered bytes to onTraffic before the end closes the connection, and
// what the handler writes for them must reach the peer (a client that half-closes after
// its requests, as `printf … | nc -N` does, gets every answer).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as net from 'node:net';
import { serve } from '../../src/server.js';
import { within } from '../helpers.js';

test('resume() after the peer half-closed: the buffered lines are answered, then the connection closes', async () => {
  const seen: string[] = [];
  const engine = await serve(
    {
      onTraffic(conn) {
        // One line per call, each answered after a delay with the connection paused (as a
        // handler waiting on another thread would).
        const input = conn.peek();
        const nl = input.indexOf(10);
        if (nl < 0) return;
        const line = input.toString('latin1', 0, nl);
        conn.discard(nl + 1);
        seen.push(line);
        conn.pause();
        setTimeout(() => {
          void conn.asyncWrite(`${line.toUpperCase()}\n`);
          conn.resume();
        }, 20);
      },
    },
    'tcp://127.0.0.1:0',
  );
  try {
    const { port } = engine.address() as { port: number };
    const reply = await within(
      new Promise<string>((resolve, reject) => {
        let out = '';
        const s = net.connect(port, '127.0.0.1', () => s.end('one\ntwo\nthree\n'));
        s.setEncoding('latin1');
        s.on('data', (d: string) => (out += d));
        s.on('error', reject);
        s.on('close', () => resolve(out));
      }),
      10000,
      'the answers and the close',
    );
    assert.equal(seen, ['one', 'two', 'three']);
    assert.is(reply, 'ONE\nTWO\nTHREE\n');
  } finally {
    await engine.stop();
  }
});

test.run();
