// gnet's three load balancers: which loop gets the next connection.
import type { SocketAddress } from '../index.js';

/**
 * How a multicore engine spreads connections over its loops (gnet's `LoadBalancing`):
 * `'round-robin'` (each loop in turn), `'least-connections'` (the loop with the fewest open),
 * `'source-addr-hash'` (the same peer address, the same loop).
 *
 * @example
 * ```ts
 * await serve(new URL('./handler.js', import.meta.url), 'tcp://:7000', { multicore: true, lb: 'least-connections' });
 * ```
 * @category Server
 */
export type LoadBalancing = 'round-robin' | 'least-connections' | 'source-addr-hash';

/** Picks a loop among `alive` ones; -1 when none is left. */
export class Balancer {
  #next = 0;
  /**
   * Connections handed to each loop whose adoption it has not confirmed yet: `counts` only
   * shows those a loop has opened, so without these a burst of accepts would all go to the
   * loop that looked emptiest before the burst.
   */
  readonly #inFlight: Int32Array;
  constructor(
    readonly kind: LoadBalancing,
    readonly counts: Int32Array,
    readonly alive: boolean[],
  ) {
    this.#inFlight = new Int32Array(alive.length);
  }

  /** Loop `i` was handed a connection (a pick that is followed by a hand-off). */
  handedOff(i: number): void {
    this.#inFlight[i]!++;
  }

  /** Loop `i` answered a hand-off: adopted (now in `counts`) or refused. */
  landed(i: number): void {
    if (this.#inFlight[i]! > 0) this.#inFlight[i]!--;
  }

  #load(i: number): number {
    return Atomics.load(this.counts, i) + this.#inFlight[i]!;
  }

  pick(remote: SocketAddress | undefined): number {
    const n = this.alive.length;
    if (this.kind === 'least-connections') {
      let best = -1;
      for (let i = 0; i < n; i++) if (this.alive[i] && (best < 0 || this.#load(i) < this.#load(best))) best = i;
      return best;
    }
    let start: number;
    if (this.kind === 'source-addr-hash') {
      // gnet hashes the address string (CRC32); any stable string hash does.
      const key = remote === undefined ? '' : `${remote.address}:${remote.port}`;
      let h = 0x811c9dc5;
      for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193) >>> 0;
      start = h % n;
    } else {
      start = this.#next;
      this.#next = (this.#next + 1) % n;
    }
    for (let k = 0; k < n; k++) {
      const i = (start + k) % n;
      if (this.alive[i]) return i;
    }
    return -1;
  }
}
