// The seed example, ported from gnet's pkg/netpoll example_test.go: a TCP server
// (here node:net, in Go a goroutine) answers "Hello, client!" to every message;
// a client socket from dialTCP is registered with addReadWrite and exchanges
// "Hello" messages with it through polling(). Unlike the Go example, which runs
// until interrupted, this one stops after a few round trips so that
// `npm start` ends by itself.
import * as net from 'node:net';
import {
  ErrEngineShutdown,
  close,
  dialTCP,
  isErrorOnlyEvent,
  isReadEvent,
  isWriteEvent,
  openPoller,
  read,
  write,
  type PollAttachment,
} from '../src/index.js';

const ROUND_TRIPS = Number(process.env.ROUND_TRIPS ?? 5);

async function main(): Promise<void> {
  const server = net.createServer((c) => {
    c.on('data', (buf) => {
      console.log(`Received data from client: ${buf.toString()}`);
      // The Go server sleeps 200 ms after each reply; pace the replies the same way.
      setTimeout(() => {
        c.write('Hello, client!');
        console.log('Sent data to client');
      }, 200);
    });
    c.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;

  using poller = openPoller();
  const fd = dialTCP('127.0.0.1', port);
  let closed = false;
  const closeClient = (): void => {
    if (!closed) close(fd);
    closed = true;
  };

  let sendData = true;
  let received = 0;
  const buf = Buffer.alloc(64);
  const pa: PollAttachment = {
    fd,
    callback(_fd, event, flags) {
      // An error or hang-up with nothing to read (gnet's example tests IsErrorEvent here,
      // which would also drop a last reply that came with the server's close).
      if (isErrorOnlyEvent(event, flags)) {
        closeClient();
        return ErrEngineShutdown;
      }
      if (isReadEvent(event)) {
        sendData = true;
        const n = read(fd, buf);
        if (n === 0) {
          closeClient();
          console.log('Error reading data from server: EOF');
          return ErrEngineShutdown;
        }
        if (n > 0) {
          console.log(`Received data from server: ${buf.toString('utf8', 0, n)}`);
          if (++received >= ROUND_TRIPS) return ErrEngineShutdown;
        }
      }
      if (isWriteEvent(event) && sendData) {
        sendData = false;
        write(fd, Buffer.from('Hello, server!'));
        console.log('Sent data to server');
      }
      return undefined;
    },
  };

  poller.addReadWrite(pa, false);

  const err = await poller.polling((fd, event, flags) => pa.callback!(fd, event, flags));
  // gnet's example prints this line as is. "error" is Go's word for the value Polling
  // returns; ErrEngineShutdown is how a callback asks the loop to stop.
  console.log(`Poller exited with error: ${err.message}`);
  if (err === ErrEngineShutdown) {
    console.log(`(expected: that is ErrEngineShutdown, which the callback returned to stop polling after ${received} round trips; not a failure)`);
  } else {
    console.error('unexpected: polling() should end with ErrEngineShutdown here');
    process.exitCode = 1;
  }
  closeClient();
  server.close();
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
