// The netpoll/server HTTP plaintext server under test (bench/server_http_handler.ts), on one
// event loop on this thread, or with `multicore` on <loops> loop threads (numEventLoop).
// Its responder only finds where each request head ends (wrk sends no bodies);
// examples/http.ts is the full parser (bench/netpoll_http.ts).
//
//   node dist/bench/server_http.js <max_seconds> [multicore <loops>]
// listens on 127.0.0.1 (any port), prints "PORT <n>", exits on SIGTERM or after max_seconds.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { serve } from 'netpoll/server';
import handler from './server_http_handler.js';
import { intArg } from './util.js';
import { serveEngine } from './server_util.js';

const addr = 'tcp://127.0.0.1:0';
serveEngine(
  process.argv[3] === 'multicore'
    ? serve(pathToFileURL(join(__dirname, 'server_http_handler.js')), addr, { multicore: true, numEventLoop: intArg(4, 2), backlog: 4096 })
    : serve(handler, addr, { backlog: 4096 }),
);
