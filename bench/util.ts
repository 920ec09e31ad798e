// What every benchmark program shares: arguments and the one JSON line it prints.

/** The integer command-line argument at `index` (after `node script`), or `fallback`. */
export function intArg(index: number, fallback: number): number {
  const raw = process.argv[index];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new RangeError(`argument ${index} must be an integer, got ${raw}`);
  return n;
}

/** Prints the program's result: the driver (bench/run.mjs) reads the last JSON line. */
export function printResult(result: Record<string, number | string>): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** Reports that this implementation could not run here, and why. */
export function skip(why: string): void {
  printResult({ skipped: why });
}

/** What serve() needs of a server: the examples' TcpServer has it. */
interface StoppableServer {
  readonly port: number;
  readonly done: Promise<unknown>;
  close(): void;
}

/**
 * Runs a benchmark server: prints "PORT <n>" (the driver waits for it), stops on
 * SIGTERM, and exits by itself after `argv[2]` seconds (default 60) whatever happens.
 */
export function serve(server: StoppableServer): void {
  const maxSeconds = intArg(2, 60);
  process.stdout.write(`PORT ${server.port}\n`);
  process.once('SIGTERM', () => server.close());
  setTimeout(() => process.exit(0), maxSeconds * 1000).unref();
  server.done.then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
