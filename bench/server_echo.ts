// The netpoll/server echo server under test: examples/echo.ts (one event loop on this
// thread), started the way the other benchmark servers are.
//
//   node dist/bench/server_echo.js <max_seconds>
// listens on 127.0.0.1 (any port), prints "PORT <n>", exits on SIGTERM or after max_seconds.
import { startEcho } from '../examples/echo.js';
import { serveEngine } from './server_util.js';

serveEngine(startEcho('tcp://127.0.0.1:0', { backlog: 4096 }));
