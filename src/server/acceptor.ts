// Accepting on a listener: until EAGAIN (bounded per event), backing off on EMFILE; used by the
// engine's own listener and, with `reusePort` multicore, by each loop thread for its own.
import { isSystemError, socket, type SocketAddress } from '../index.js';
import { publish } from './diagnostics.js';
import type { EventLoop } from './eventloop.js';

/** At most this many accepts per listener event: the loop's connections get their turn too. */
const MAX_ACCEPTS_PER_EVENT = 128;

/** How long the listener is left unwatched after the process ran out of descriptors. */
const EMFILE_BACKOFF_MS = 100;

export class Acceptor {
  #timer: NodeJS.Timeout | undefined;
  #watching = false;

  constructor(
    readonly loop: EventLoop,
    readonly fd: number,
    readonly isTcp: boolean,
    /** Takes an accepted connection; owns its fd from then on (closes it when it throws). */
    readonly handOut: (fd: number, address: SocketAddress, isTcp: boolean) => void,
    /** False once the engine stops: no more accepts. */
    readonly running: () => boolean,
  ) {}

  watch(): void {
    if (this.#watching) return;
    this.#watching = true;
    this.loop.watch(this.fd, false, () => this.#acceptSome());
  }

  /** Stops watching (the caller closes the fd). */
  unwatch(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!this.#watching) return;
    this.#watching = false;
    this.loop.unwatch(this.fd);
  }

  #acceptSome(): void {
    for (let i = 0; i < MAX_ACCEPTS_PER_EVENT && this.running(); i++) {
      let c: ReturnType<typeof socket.accept>;
      try {
        c = socket.accept(this.fd);
      } catch (e) {
        if (isSystemError(e) && (e.code === 'EMFILE' || e.code === 'ENFILE' || e.code === 'ENOBUFS' || e.code === 'ENOMEM')) {
          // Out of descriptors: the listener stays readable, and level-triggered polling would
          // report it again at once, forever. Stop watching it for a while instead.
          publish({ type: 'error', source: 'accept', error: e, conn: undefined });
          this.unwatch();
          this.#timer = setTimeout(() => {
            this.#timer = undefined;
            if (this.running()) this.watch();
          }, EMFILE_BACKOFF_MS);
          this.#timer.unref();
          return;
        }
        if (isSystemError(e) && (e.code === 'ECONNABORTED' || e.code === 'EPROTO' || e.code === 'EPERM')) continue;
        publish({ type: 'error', source: 'accept', error: e, conn: undefined });
        return;
      }
      if (c === null) return;
      try {
        this.handOut(c.fd, c.address, this.isTcp);
      } catch (e) {
        publish({ type: 'error', source: 'socket-option', error: e, conn: undefined });
      }
    }
  }
}
