// Memory: what registering an fd costs this process, at 10,000 fds. The same fds
// (socketpairs) are opened first and measured unregistered, then registered with
// addRead({ fd, callback }) (one shared callback, an attachment object per fd, as
// a server would hold), and measured again after a full GC.
//
//   node --expose-gc dist/bench/memory.js <fds>
// prints one JSON line: {"fds", "bytes_per_fd", "heap_per_fd", "native_per_fd", "rss_per_fd", "external_per_fd"}
// bytes_per_fd = live JS heap growth + growth of the memory outside V8's heap
// (RSS growth minus V8 heap growth): what the process holds per registered fd.
// The kernel's own per-registration memory (struct epitem) is not the process's
// and is the same for every epoll user, so it is not counted.
import { close, openPoller, socketpair } from '../src/index.js';
import { intArg, printResult } from './util.js';

const nfds = intArg(2, 10_000);

function settle(): NodeJS.MemoryUsage {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with --expose-gc');
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage();
}

function main(): void {
  const poller = openPoller();
  const fds: number[] = [];
  for (let i = 0; i < nfds / 2; i++) fds.push(...socketpair());
  const onEvent = (): void => {};
  const before = settle();
  const beforeHeapTotal = before.heapTotal;
  for (const fd of fds) poller.addRead({ fd, callback: onEvent });
  const after = settle();
  const heap = after.heapUsed - before.heapUsed;
  const external = after.external - before.external;
  const rss = after.rss - before.rss;
  const outsideHeap = Math.max(0, rss - (after.heapTotal - beforeHeapTotal));
  const n = fds.length;
  printResult({
    fds: n,
    bytes_per_fd: (heap + outsideHeap) / n,
    heap_per_fd: heap / n,
    native_per_fd: outsideHeap / n,
    rss_per_fd: rss / n,
    external_per_fd: external / n,
  });
  poller.close();
  for (const fd of fds) close(fd);
}

main();
