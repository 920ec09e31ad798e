// The netpoll/server Redis-protocol server under test: examples/redis.ts, started the way
// the other benchmark servers are (bench/net_redis.ts is the same handler on node:net).
//
//   node dist/bench/server_redis.js <max_seconds>
// listens on 127.0.0.1 (any port), prints "PORT <n>", exits on SIGTERM or after max_seconds.
import { startRedisServer } from '../examples/redis.js';
import { serveEngine } from './server_util.js';

serveEngine(startRedisServer('tcp://127.0.0.1:0'));
