// The raw-poller echo server under test: examples/poller-echo.ts (one poller on this thread,
// the socket toolkit, write backpressure), netpoll/server's baseline, started the way the
// other benchmark servers are.
//
//   node dist/bench/netpoll_echo.js <max_seconds>
// listens on 127.0.0.1 (any port), prints "PORT <n>", exits on SIGTERM or after max_seconds.
import { startPollerEcho } from '../examples/poller-echo.js';
import { serve } from './util.js';

serve(startPollerEcho('127.0.0.1', 0, 4096));
