/**
 * The one written contract between src/ and the native addon (csrc/binding.cc).
 *
 * Kernel errors never throw here: calls return a negative errno and src/errors.ts
 * turns it into a Node-style SystemError. Only wrong argument types throw (TypeError).
 */

/** gnet's per-backend numbers, read from the C core so that no JS file hard-codes them. */
export interface BackendInfo {
  readonly name: 'epoll' | 'kqueue';
  readonly InitPollEventsCap: number;
  readonly MaxPollEventsCap: number;
  readonly MinPollEventsCap: number;
  readonly MaxAsyncTasksAtOneTime: number;
  readonly ReadEvents: number;
  readonly WriteEvents: number;
  readonly ReadWriteEvents: number;
  readonly ErrEvents: number;
  /** true on kqueue, where an event is a filter compared by equality, not a mask. */
  readonly eventsAreFilters: boolean;
  /** The syscall names errors carry, as gnet names them. */
  readonly syscalls: {
    readonly add: string;
    readonly modRead: string;
    readonly modReadWrite: string;
    readonly del: string;
    readonly wait: string;
  };
}

/**
 * Called once per batch: `n` events wait in `events` (three int32 each: fd, event,
 * flags); `woke` tells that the waker fired; a negative `n` is the errno of a failed wait.
 */
export type BatchCallback = (n: number, woke: boolean) => void;

export declare class NativePoller {
  constructor();
  /** Opens the selector and the waker: 0, or a negative errno (see failedSyscall). */
  open(): number;
  /** Registers, modifies or deletes an fd (CTL_* and INTEREST_* bits): 0 or a negative errno. */
  ctl(op: number, fd: number, interest: number): number;
  /**
   * Starts watching the backend fd on this thread's libuv loop. `resource` becomes the
   * async resource every batch runs in. 0, or a negative errno.
   */
  start(onBatch: BatchCallback, resource: object): number;
  /** Stops watching and drops the references start() took. */
  stop(): void;
  /** Stops reading the kernel but keeps start()'s state (iterator backpressure). */
  pause(): void;
  /** Reads the kernel again after pause(): 0, or a negative errno. */
  resume(): number;
  /** Writes the waker: 0, or a negative errno. */
  wake(): number;
  /** Closes the backend fd and the waker. Idempotent. */
  close(): void;
  /** Whether a polling poller keeps the event loop alive. */
  setRef(ref: boolean): void;
  /** The epoll/kqueue descriptor, or -1 once closed. */
  readonly fd: number;
  /** The waker's descriptor (eventfd or pipe), or -1 when it has none (EVFILT_USER) or is closed. */
  readonly wakerFd: number;
  /** The current event-list size (gnet's el.size). */
  readonly capacity: number;
  /** The shared batch buffer: MaxPollEventsCap entries of (fd, event, flags). */
  readonly events: Int32Array;
  /** Which syscall failed in open(). */
  readonly failedSyscall: string;
}

export interface Binding {
  /**
   * The sha256 of the native sources (csrc/ and binding.gyp) this binary was built from,
   * as scripts/source-hash.cjs computes it; "unknown" when built without binding.gyp's define.
   */
  readonly sourceHash: string;
  readonly NativePoller: typeof NativePoller;
  readonly backend: BackendInfo;
  readonly CTL_ADD: number;
  readonly CTL_MOD: number;
  readonly CTL_DEL: number;
  readonly INTEREST_READ: number;
  readonly INTEREST_WRITE: number;
  readonly INTEREST_EDGE: number;
  /** [readFd, writeFd], nonblocking and close-on-exec, or a negative errno. */
  pipe(): [number, number] | number;
  /** Two connected AF_UNIX stream sockets, nonblocking and close-on-exec, or a negative errno. */
  socketpair(): [number, number] | number;
  /** A TCP socket fd connected to a numeric address (nonblocking = 1: maybe still connecting), or a negative errno. */
  dialTCP(host: string, port: number, nonblocking: number): number;
  /** The socket's pending error (SO_ERROR) as a negative errno, or 0. */
  socketError(fd: number): number;
  /** Bytes read (0 at end of stream) or a negative errno. */
  read(fd: number, buf: ArrayBufferView | ArrayBuffer): number;
  /** Bytes written or a negative errno. */
  write(fd: number, buf: ArrayBufferView | ArrayBuffer): number;
  /** 0 or a negative errno. */
  close(fd: number): number;
}
