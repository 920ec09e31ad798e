// A counter server in Redis's inline protocol (`INCR key`, `GET key`, `PING`, `QUIT`, one
// command a line) on netpoll/server's multicore engine, with the counts right.
//
// State is per loop thread: a `Map` of counters per loop would answer `INCR c` from four
// connections as 1 1 2 2. Here each key is owned by one loop (a hash of the key names it,
// the same on every thread), only the owner touches its count, and a loop that gets a
// command for a key it does not own forwards it to the owner with the remote trigger
// (engine.offer() in each loop's onBoot, engine.peer(owner).trigger(...) to reach it). The
// owner runs its tasks one at a time on its own loop, so no lock is needed. The connection
// waits (conn.pause()) until the owner answers, so replies leave in command order.
//
// This file is both the program and the handler module each loop thread imports.
//
//   npm run example:sharded-counter                 # port 6380, min(4, CPUs) loops
//   WORKERS=4 PORT=0 node dist/examples/sharded-counter.js
//   printf 'INCR c\r\nINCR c\r\nGET c\r\n' | nc -N 127.0.0.1 6380
//
// Inline commands only: redis-cli speaks RESP arrays, which this example does not parse.
import * as os from 'node:os';
import { pathToFileURL } from 'node:url';
import { ErrPollerClosed, Priority } from 'netpoll';
import { serve, Action, type Engine, type EventHandler } from 'netpoll/server';
import { addressFromCli, reportLoop, runUntilSignalled } from './cli.js';

// ---- the sharded design (docs/guide.md shows this part) ----

/** The tasks each loop offers the others: run on the key owner's thread. */
export type ShardTasks = {
  /** The key's owner increments it and returns the new count. */
  incr: (key: string) => number;
  /** The key's owner returns its count (0 when never incremented). */
  get: (key: string) => number;
};

/** Which loop owns `key`: the same answer on every thread (FNV-1a of its UTF-16 units). */
export function ownerOf(key: string, loops: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return (h >>> 0) % loops;
}

/** Only the keys this loop owns; only this thread reads or writes them. */
const counts = new Map<string, number>();
const owned: ShardTasks = {
  incr: (key) => {
    const n = (counts.get(key) ?? 0) + 1;
    counts.set(key, n);
    return n;
  },
  get: (key) => counts.get(key) ?? 0,
};
let engine!: Engine; // set in onBoot
/** Commands this loop sent to another loop. */
let forwarded = 0;

/** A command here when this loop owns the key, else at its owner: a count, or a promise of one. */
function command(name: keyof ShardTasks, key: string): number | Promise<number> {
  const owner = ownerOf(key, engine.numEventLoop);
  if (owner === engine.loopIndex) return owned[name](key);
  forwarded++;
  return engine.peer<ShardTasks>(owner).trigger(Priority.High, name, key);
}

// ---- the protocol: one loop's connections ----

/** Longest command line accepted. */
const MAX_LINE = 4096;

const handler: EventHandler = {
  onBoot(e) {
    engine = e;
    e.offer(owned);
  },
  onTraffic(conn) {
    for (let input = conn.peek(), nl = input.indexOf(10); ; input = conn.peek(), nl = input.indexOf(10)) {
      if (nl < 0) {
        if (input.length <= MAX_LINE) return Action.None; // the rest of the line comes later
        conn.write('-ERR line too long\r\n');
        return Action.Close;
      }
      const [name = '', key, ...rest] = input.toString('latin1', 0, nl).trim().split(/\s+/);
      conn.discard(nl + 1);
      const cmd = name.toUpperCase();
      if ((cmd === 'INCR' || cmd === 'GET') && key !== undefined && rest.length === 0) {
        const n = command(cmd === 'INCR' ? 'incr' : 'get', key);
        if (typeof n === 'number') {
          conn.write(`:${n}\r\n`);
          continue;
        }
        // Forwarded: read nothing more until the owner answers (the replies stay in order,
        // and a client cannot pile up commands waiting on other loops); then go on.
        conn.pause();
        void n.then((v) => `:${v}\r\n`, errorReply).then((reply) => {
          void conn.asyncWrite(reply);
          conn.resume(); // onTraffic again for what is buffered
        });
        return Action.None;
      }
      if (cmd === 'QUIT') {
        conn.write('+OK\r\n');
        return Action.Close; // what follows QUIT is not read
      }
      if (cmd === 'PING' && key === undefined) conn.write('+PONG\r\n');
      else if (cmd !== '') conn.write(`-ERR unknown command or wrong arguments: '${input.toString('latin1', 0, Math.min(nl, 64)).trim()}'\r\n`);
    }
  },
  onShutdown: (e) => reportLoop(e, `, ${forwarded} forwarded to their key's owner`),
};
export default handler;

function errorReply(err: unknown): string {
  // ErrPollerClosed: the owner stopped (the server is shutting down).
  return err === ErrPollerClosed ? '-ERR shutting down\r\n' : `-ERR ${String((err as Error)?.message ?? err)}\r\n`;
}

/** Serves the counter on `addr` with `loops` loop threads, each importing this file. */
export function startShardedCounter(addr: string, loops: number): Promise<Engine> {
  return serve(pathToFileURL(__filename), addr, { multicore: true, numEventLoop: loops });
}

if (require.main === module) {
  const loops = Number(process.env.WORKERS ?? Math.min(4, os.availableParallelism()));
  if (!Number.isInteger(loops) || loops < 1) {
    console.error(`bad loop count ${process.env.WORKERS}`);
    process.exit(2);
  }
  runUntilSignalled(startShardedCounter(addressFromCli(6380, process.argv[2]), loops), 'sharded counter', ` (${loops} loops)`);
}
