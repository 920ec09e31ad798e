// The Bun baselines (run by Bun itself, not Node: scripts/fetch-bun.mjs finds or installs it):
//   echo  Bun.listen, writing every chunk back (what is not taken now waits for `drain`)
//   http  Bun.serve, the plaintext response of bench/node_http.ts (Bun adds the Date header)
//
//   bun bench/bun_server.mjs <max_seconds> echo|http
// listens on 127.0.0.1 (any port), prints "PORT <n>", exits on SIGTERM or after max_seconds.
/* global Bun */
const maxSeconds = Number(process.argv[2] ?? 60);
const kind = process.argv[3];

let server;
if (kind === 'echo') {
  server = Bun.listen({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      data(socket, data) {
        if (socket.data?.pending) return void socket.data.pending.push(Buffer.from(data));
        const n = socket.write(data);
        if (n < data.length) socket.data = { pending: [Buffer.from(data.subarray(Math.max(0, n)))] };
      },
      drain(socket) {
        const pending = socket.data?.pending;
        if (!pending) return;
        const rest = Buffer.concat(pending);
        const n = socket.write(rest);
        socket.data = n < rest.length ? { pending: [rest.subarray(Math.max(0, n))] } : undefined;
      },
      error(socket) {
        socket.end();
      },
    },
  });
} else if (kind === 'http') {
  server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch: () => new Response('Hello, World!', { headers: { 'Content-Type': 'text/plain', Server: 'bun' } }),
  });
} else {
  console.error(`unknown kind ${kind}: echo or http`);
  process.exit(2);
}
process.stdout.write(`PORT ${server.port}\n`);
process.once('SIGTERM', () => {
  server.stop(true);
  process.exit(0);
});
setTimeout(() => process.exit(0), maxSeconds * 1000).unref();
