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
