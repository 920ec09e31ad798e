// The node:net baseline of the Redis benchmark: examples/redis.ts's protocol (the same
// examples/redis-commands.ts) as a node:net program would serve it: a 'data' listener
// appending to an input buffer, the replies of one chunk gathered and written with one
// socket.write(). Only the transport differs from examples/redis.ts.
//
//   node dist/bench/net_redis.js <max_seconds>
// listens on 127.0.0.1 (any port), prints "PORT <n>", exits on SIGTERM or after max_seconds.
import * as net from 'node:net';
import { RedisSession, CLOSE, type RedisDb, type ReplySink } from '../examples/redis-commands.js';
import { intArg } from './util.js';

const maxSeconds = intArg(2, 60);
const db: RedisDb = new Map();

/** The replies of one chunk, gathered for one socket.write(). */
class Replies implements ReplySink {
  parts: (Uint8Array | string)[] = [];
  write(data: Uint8Array | string): void {
    this.parts.push(data);
  }
}

const server = net.createServer({ noDelay: true }, (socket) => {
  let input: Buffer = Buffer.alloc(0);
  let closing = false;
  const out = new Replies();
  const session = new RedisSession(db, out);
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: Buffer) => {
    if (closing) return; // after QUIT or a protocol error, what follows is not read
    input = input.length === 0 ? chunk : Buffer.concat([input, chunk]);
    const used = session.serve(input);
    // Replies may be views of the input: they are copied here, before the input is let go.
    if (out.parts.length) socket.write(Buffer.concat(out.parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p))));
    out.parts.length = 0;
    if (used === CLOSE) (closing = true), socket.end(); // QUIT or a protocol error
    else input = input.subarray(used);
  });
});
server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
  process.stdout.write(`PORT ${(server.address() as net.AddressInfo).port}\n`);
});
setTimeout(() => process.exit(0), maxSeconds * 1000).unref();
