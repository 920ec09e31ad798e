// The netpoll echo server under test: examples/echo.ts (one poller on this
// thread, the socket toolkit, write backpressure), started the way the other
// benchmark servers are.
//
//   node dist/bench/netpoll_echo.js <max_seconds>
// listens on 127.0.0.1 (any port), prints "PORT <n>", exits on SIGTERM or after max_seconds.
import { startEchoServer } from '../examples/echo.js';
import { serve } from './util.js';

serve(startEchoServer({ host: '127.0.0.1', port: 0, backlog: 4096 }));
