// gnet's other multicore design, on netpoll/server: with `reusePort: true` each loop thread
// may listen on the same port with SO_REUSEPORT and accept for itself, the kernel spreading
// new connections among them (where the OS does not, the engine's acceptor hands them out,
// as in examples/reactor.ts). Nothing is shared between the loops, so nothing is locked;
// each runs the same echo or HTTP handler module as the single-threaded examples.
//
//   npm run example:multicore-echo            # port 7000, one loop per CPU
//   npm run example:multicore-http -- 8080 4  # port 8080, 4 loops
//   WORKERS=2 PORT=0 node dist/examples/multicore.js http
//
// SO_REUSEPORT balancing is Linux's (and FreeBSD's SO_REUSEPORT_LB); macOS accepts the
// option but hands every connection to one socket.
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { serve } from 'netpoll/server';
import { runUntilSignalled } from './cli.js';
import { parseCli } from './reactor.js';

if (require.main === module) {
  const { kind, addr, loops } = parseCli('multicore.js', false);
  const handler = pathToFileURL(path.join(__dirname, `${kind}.js`)); // examples/echo.ts or http.ts
  const started = serve(handler, addr, { multicore: true, numEventLoop: loops, reusePort: true });
  runUntilSignalled(started, `multicore ${kind} server`, ` (${loops} loops, SO_REUSEPORT)`);
}
