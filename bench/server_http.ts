// The netpoll/server HTTP responder of the plaintext benchmark: what bench/node_http.ts
// answers (200 "Hello, World!" with Content-Type, Content-Length, Date and Server headers)
// to every request, pipelining included. It only finds where each request head ends (no
// request bodies: wrk sends none); examples/http.ts is the full parser (bench/netpoll_http.ts).
//
//   node dist/bench/server_http.js <max_seconds>
// listens on 127.0.0.1 (any port), prints "PORT <n>", exits on SIGTERM or after max_seconds.
import { serve } from 'netpoll/server';
import { serveEngine } from './server_util.js';

const HEAD_END = Buffer.from('\r\n\r\n');
let response = build();
// The Date header changes once a second; the reply is rebuilt then, not per request.
setInterval(() => (response = build()), 1000).unref();

function build(): Buffer {
  return Buffer.from(
    'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n' +
      `Date: ${new Date().toUTCString()}\r\nServer: netpoll\r\n\r\nHello, World!`,
    'latin1',
  );
}

serveEngine(
  serve(
    {
      onTraffic(conn) {
        const input = conn.peek();
        let from = 0;
        for (let end = input.indexOf(HEAD_END, from); end >= 0; end = input.indexOf(HEAD_END, from)) {
          from = end + 4;
          conn.write(response);
        }
        conn.discard(from);
      },
    },
    'tcp://127.0.0.1:0',
    { backlog: 4096 },
  ),
);
