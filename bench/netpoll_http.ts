// The netpoll HTTP server under test: examples/http.ts (the full HTTP/1.1 parser, pipelining
// and keep-alive, on netpoll/server), started the way the other benchmark servers are.
//
//   node dist/bench/netpoll_http.js <max_seconds>
// listens on 127.0.0.1 (any port), prints "PORT <n>", exits on SIGTERM or after max_seconds.
import { startHttp } from '../examples/http.js';
import { serveEngine } from './server_util.js';

serveEngine(startHttp('tcp://127.0.0.1:0', { backlog: 4096 }));
