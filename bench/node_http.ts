// The node:http server the HTTP benchmark compares against: the plaintext test
// (a fixed "Hello, World!" body) as TechEmpower defines it.
//
//   node dist/bench/node_http.js <max_seconds>
// listens on 127.0.0.1 (any port), prints "PORT <n>", exits on SIGTERM or after max_seconds.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { intArg } from './util.js';

const maxSeconds = intArg(2, 60);
const body = Buffer.from('Hello, World!');

const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length, Server: 'node' });
  res.end(body);
});
server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
  process.stdout.write(`PORT ${(server.address() as AddressInfo).port}\n`);
});
setTimeout(() => process.exit(0), maxSeconds * 1000).unref();
