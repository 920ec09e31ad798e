// The Node-loop floor for the echo figures (see bench/floor/floor.c): an echo server that
// does the least a server on Node's event loop can do per message. Each socket gets its
// own uv_poll on Node's loop and one callback per readable event; the callback makes
// the two Node-API calls a netpoll server makes (recv, send). No nested epoll, no batch,
// no streams. Listening and accepting use netpoll's toolkit (not measured: the
// connections open before the measured window).
//
//   node dist/bench/floor_echo.js <max_seconds>
// listens on 127.0.0.1 (any port), prints "PORT <n>", exits on SIGTERM or after max_seconds.
import * as os from 'node:os';
import * as path from 'node:path';
import { socket } from '../src/index.js';
import { intArg } from './util.js';

interface FloorAddon {
  watch(fd: number, callback: (fd: number) => void): object;
  unwatch(handle: object): void;
  recv(fd: number, buf: Buffer): number;
  send(fd: number, buf: Buffer, length: number): number;
}

// eslint-disable-next-line @typescript-eslint/no-var-requires
const floor = require(path.resolve(__dirname, '..', '..', 'bench', 'floor', 'build', 'Release', 'floor.node')) as FloorAddon;

const listenFd = socket.listenTCP('127.0.0.1', 0, { backlog: 4096 });
const watches = new Map<number, object>();
const buf = Buffer.allocUnsafe(64 * 1024);
const EAGAIN = os.constants.errno.EAGAIN;

function drop(fd: number): void {
  const w = watches.get(fd);
  if (w === undefined) return;
  watches.delete(fd);
  floor.unwatch(w);
  socket.close(fd);
}

// One read per event, as the C server and the netpoll example do for a 64-byte message.
function onReadable(fd: number): void {
  const n = floor.recv(fd, buf);
  if (n > 0) {
    // The reply always fits a loopback socket's buffer here; a short write would be a
    // benchmark bug, so it ends the connection rather than pretend.
    if (floor.send(fd, buf, n) !== n) drop(fd);
  } else if (n !== -EAGAIN) {
    drop(fd); // end of stream or an error; EAGAIN is a spurious wakeup
  }
}

const listener = floor.watch(listenFd, () => {
  for (;;) {
    const c = socket.accept(listenFd);
    if (c === null) return;
    socket.setNoDelay(c.fd);
    watches.set(c.fd, floor.watch(c.fd, onReadable));
  }
});

function stop(): void {
  for (const fd of [...watches.keys()]) drop(fd);
  floor.unwatch(listener);
  socket.close(listenFd);
  process.exit(0);
}

process.stdout.write(`PORT ${socket.localAddress(listenFd).port}\n`);
process.once('SIGTERM', stop);
setTimeout(stop, intArg(2, 60) * 1000).unref();
