// The netpoll HTTP server under test: examples/http.ts, started the way the other
// benchmark servers are.
//
//   node dist/bench/netpoll_http.js <max_seconds>
// listens on 127.0.0.1 (any port), prints "PORT <n>", exits on SIGTERM or after max_seconds.
import { startHttpServer } from '../examples/http.js';
import { serve } from './util.js';

serve(startHttpServer({ host: '127.0.0.1', port: 0, backlog: 4096 }));
