// The node:net echo server the echo benchmark compares against: what a Node
// program would write (a 'data' listener that writes the chunk back), with
// noDelay as the C server has it.
//
//   node dist/bench/net_echo.js <max_seconds>
// listens on 127.0.0.1 (any port), prints "PORT <n>", exits on SIGTERM or after max_seconds.
import * as net from 'node:net';
import { intArg } from './util.js';

const maxSeconds = intArg(2, 60);

const server = net.createServer({ noDelay: true }, (socket) => {
  socket.on('data', (chunk) => socket.write(chunk));
  socket.on('error', () => socket.destroy());
});
server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
  const address = server.address() as net.AddressInfo;
  process.stdout.write(`PORT ${address.port}\n`);
});
setTimeout(() => process.exit(0), maxSeconds * 1000).unref();
