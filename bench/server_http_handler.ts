// The netpoll/server HTTP responder of the plaintext benchmarks, as a handler module (so that
// a multicore engine's loop threads can import it): what bench/node_http.ts answers (200
// "Hello, World!" with Content-Type, Content-Length, Date and Server headers) to every
// request, pipelining included. It only finds where each request head ends (no request
// bodies: wrk sends none); examples/http.ts is the full parser on the raw poller.
import type { EventHandler } from 'netpoll/server';

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

const handler: EventHandler = {
  onTraffic(conn) {
    const input = conn.peek();
    let from = 0;
    for (let end = input.indexOf(HEAD_END, from); end >= 0; end = input.indexOf(HEAD_END, from)) {
      from = end + 4;
      conn.write(response);
    }
    conn.discard(from);
  },
};
export default handler;
