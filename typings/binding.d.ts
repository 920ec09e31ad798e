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
 * `capacity` is the event-list size the next wait will use (gnet's el.size, resized
 * after each wait by this one's size, before the batch is delivered).
 */
export type BatchCallback = (n: number, woke: boolean, capacity: number) => void;

export declare class NativePoller {
  constructor();
  /**
   * Opens the selector and the waker: 0, or a negative errno (see failedSyscall).
   * Events come through a waiter thread when `waiterThread` is true or when the
   * selector's descriptor cannot be watched by the loop (libkqueue). `events` becomes
   * the shared batch list (see `events`): at least 3 * MaxPollEventsCap int32, best on
   * a SharedArrayBuffer, which cannot be detached; a TypeError otherwise. The native
   * side looks it up again before each batch, and delivers -EFAULT instead of a batch
   * when its buffer was detached. Two int32 after those, when there, are the signals:
   * [0] is 1 while a batch's callback (and its microtasks) runs; setting [1] then asks
   * for wake() when the batch returns (the loop path only: a wake that cannot fail).
   */
  open(waiterThread: boolean, events: Int32Array): number;
  /**
   * Registers, modifies or deletes an fd (CTL_* and INTEREST_* bits): 0 or a negative errno.
   * Events read from the kernel before a delete (or a delete and a new add of the same
   * number) are not delivered after it.
   */
  ctl(op: number, fd: number, interest: number): number;
  /**
   * Starts watching the backend fd on this thread's libuv loop. `resource` becomes the
   * async resource every batch runs in. 0, or a negative errno: -EBADF when `fd` (the
   * number users see) no longer refers to this poller (closed behind its back); the
   * first batch after start checks it again and is -EBADF then.
   */
  start(onBatch: BatchCallback, resource: object): number;
  /** Stops watching and drops the references start() took. */
  stop(): void;
  /**
   * Stops reading the kernel but keeps start()'s state (iterator backpressure). With a
   * waiter thread, a batch it already read waits for resume() (or the next start()).
   */
  pause(): void;
  /** Reads the kernel again after pause(): 0, or a negative errno. */
  resume(): number;
  /**
   * A task was queued on this thread: sets the wake flag (gnet's wakeupCall, shared with
   * other threads' triggers) and, if this call set it, arms a chores round — without a
   * syscall on the loop path, through the waker on the waiter-thread path. 0, or a
   * negative errno.
   */
  wake(): number;
  /**
   * A chores round ran: clears the wake flag, then wakes again when `more` tasks are
   * queued here or other threads queued some. 1 when a wake is pending afterwards, 0
   * when not, or a negative errno.
   */
  endRound(more: boolean): number;
  /**
   * Registers the poller for remote triggers (csrc/remote.h): its id (> 0), or a negative
   * errno (-EBADF closed, -EBUSY registered already). `names` is opaque to the binding
   * (src/remote.ts's JSON); connect() hands it back.
   */
  remoteOpen(taskCount: number, names: string, token: string): number;
  /**
   * Moves queued remote tasks into `hdr` (RemoteCodes.ENTRY doubles each: slot, or
   * NO_REPLY for a posted task, priority | task << 1, kind, num, len) and `values` (the
   * param of payload kinds, same index): how many, at most hdr.length / ENTRY. The
   * blocks they came in are freed then: a pending task keeps only its slot. 0 without a handle or once closed.
   * Takes from the queue only when `refill` is true (the first call of a chores round);
   * later calls go on with what that one took, so a round ends however fast other
   * threads queue.
   */
  remoteTake(hdr: Float64Array, values: unknown[], refill: boolean): number;
  /**
   * Answers `count` taken tasks: entries (slot, 0, kind | ERROR?, num, len) in `hdr`,
   * payloads at [num, num + len) of `staging`. A no-op once closed.
   */
  remoteReply(hdr: Float64Array, count: number, staging: Uint8Array): void;
  /**
   * Closes the backend fd (unless its number no longer refers to this poller: it is
   * then someone else's) and the waker; every remote task queued or taken is answered
   * with ErrPollerClosed first. Idempotent.
   */
  close(): void;
  /** Whether a polling poller keeps the event loop alive. */
  setRef(ref: boolean): void;
  /**
   * The epoll/kqueue descriptor users see, or -1 once closed (or once found closed
   * behind the poller's back). The poller works on a private duplicate of it (except
   * under libkqueue), so closing this number cannot break the event loop.
   */
  readonly fd: number;
  /** The waker's descriptor (eventfd or pipe), or -1 when it has none (EVFILT_USER) or is closed. */
  readonly wakerFd: number;
  /** The current event-list size (gnet's el.size). */
  readonly capacity: number;
  /**
   * When the last batch (n >= 0) was delivered, in uv_hrtime() nanoseconds (process.hrtime's
   * clock), or -1 before the first one and once closed.
   */
  readonly lastBatchTime: number;
  /**
   * Tasks other threads queued for this poller that its chores round has not taken yet
   * (a snapshot: they may add more at any time); 0 once closed.
   */
  readonly remoteQueued: number;
  /** The shared batch list given to open(): MaxPollEventsCap entries of (fd, event, flags). */
  readonly events: Int32Array;
  /** Which syscall failed in open(). */
  readonly failedSyscall: string;
  /** Whether open() chose the waiter thread (stays set after close). */
  readonly waiterThread: boolean;
  /**
   * The native run state: 0 idle, 1 watching (batches are read and delivered), 2 paused
   * (an iteration's consumer is busy: only task rounds come), 3 closed (and before open() succeeded).
   */
  readonly runState: 0 | 1 | 2 | 3;
}

/** A socket address as the binding reports it (node:net's shape; 'Unix' carries the path, port 0). */
export interface NativeAddress {
  address: string;
  family: 'IPv4' | 'IPv6' | 'Unix';
  port: number;
}

/** The numbers the socket calls take, from csrc/fdio.h. */
export interface SocketConstants {
  readonly REUSEADDR: number;
  readonly REUSEPORT: number;
  readonly V6ONLY: number;
  readonly SHUT_RD: number;
  readonly SHUT_WR: number;
  readonly SHUT_RDWR: number;
  /** The most buffers one readv/writev call uses. */
  readonly IOV_MAX: number;
  /**
   * What listenTCP, dialTCP, bindUDP and sendTo return, instead of an errno, when the
   * system refuses a numeric host (an IPv6 zone naming no interface): a bad argument,
   * not a kernel error. Outside the errno range.
   */
  readonly EBADADDR: number;
  readonly options: {
    readonly noDelay: number;
    readonly keepAlive: number;
    readonly keepAliveIdle: number;
    readonly keepAliveInterval: number;
    readonly keepAliveCount: number;
    readonly recvBuffer: number;
    readonly sendBuffer: number;
    readonly reuseAddr: number;
    readonly reusePort: number;
    readonly ipv6Only: number;
  };
}

/** What a value crossing threads is, in a remote task or reply (csrc/binding_remote.cc). */
export interface RemoteCodes {
  readonly UNDEFINED: number;
  readonly NULL: number;
  readonly FALSE: number;
  readonly TRUE: number;
  readonly NUMBER: number;
  /** UTF-16LE code units. */
  readonly STRING: number;
  /** v8.serialize's bytes. */
  readonly SERIALIZED: number;
  /** A sentinel error by index: ErrEngineShutdown 0, ErrAcceptSocket 1, ErrPollerClosed 2. */
  readonly SENTINEL: number;
  readonly ARRAYBUFFER: number;
  readonly BUFFER: number;
  /** The binding could not deliver a value (num: FAILURE_*). */
  readonly FAILURE: number;
  /** TYPED + napi_typedarray_type: a typed array of that type. */
  readonly TYPED: number;
  /** Or'ed into a reply's kind: reject with the value. */
  readonly ERROR: number;
  /** Doubles per entry in the Float64Arrays the remote calls take. */
  readonly ENTRY: number;
  readonly FAILURE_UNKNOWN_TASK: number;
  readonly FAILURE_NO_MEMORY: number;
  readonly MAX_TASKS: number;
  /**
   * The call id of a task nobody waits for (RemotePoller#post): no reply is sent for it,
   * not even ErrPollerClosed; remoteTake gives it as the task's slot.
   */
  readonly NO_REPLY: number;
}

/** A connection from this thread to a poller's request queue (RemoteChannel.connect). */
export interface RemoteLink {
  /** How many tasks the poller offers. */
  readonly taskCount: number;
  /** The task names, as remoteOpen got them. */
  readonly names: string;
  /**
   * Queues `count` tasks (entries: call id or NO_REPLY, priority | task << 1, kind, num,
   * len; payloads in `staging`), in order, waking the poller if no wake is pending.
   * Returns how many were queued: all, the first ones when the poller went away
   * meanwhile, none once it is gone; or -ENOMEM (none queued).
   */
  flush(hdr: Float64Array, count: number, staging: Uint8Array): number;
  /** Lets go of the poller. Idempotent. */
  close(): void;
}

/**
 * This thread's reply channel: replies arrive as `onReplies(n)`, n entries (call id, 0,
 * kind, num, 0) in `hdr` and payload values at the same index of `values`.
 */
export declare class RemoteChannel {
  constructor(onReplies: (n: number) => void, hdr: Float64Array, values: unknown[]);
  /** A link to the poller registered under `id` with `token`, or -ENOENT (none open), -EPIPE (channel closed). */
  connect(id: number, token: string): RemoteLink | number;
  /** Whether the channel keeps the thread alive (while calls are pending). */
  setRef(ref: boolean): void;
  /** Closes the channel: replies to it are dropped. Idempotent. */
  close(): void;
}

export interface Binding {
  /**
   * The sha256 of the native sources (csrc/ and binding.gyp) this binary was built from,
   * as scripts/source-hash.cjs computes it; "unknown" when built without binding.gyp's define.
   */
  readonly sourceHash: string;
  readonly NativePoller: typeof NativePoller;
  readonly RemoteChannel: typeof RemoteChannel;
  readonly remoteCodes: RemoteCodes;
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
  /** A listening TCP socket on a numeric address (`flags`: socketConstants REUSEADDR|REUSEPORT|V6ONLY), a negative errno, or socketConstants.EBADADDR. */
  listenTCP(host: string, port: number, backlog: number, flags: number): number;
  /** The next connection (nonblocking, close-on-exec) and its peer, or a negative errno (-EAGAIN: none waits). */
  accept(listenFd: number): { fd: number; address: NativeAddress } | number;
  /** A TCP socket fd connected to a numeric address (nonblocking = 1: maybe still connecting), a negative errno, or socketConstants.EBADADDR. */
  dialTCP(host: string, port: number, nonblocking: number): number;
  /** The socket's pending error (SO_ERROR) as a negative errno, or 0. */
  socketError(fd: number): number;
  /**
   * A listening Unix stream socket bound to `path`, or a negative errno. With `mode`
   * 0..0o777 the socket file gets exactly that mode and is never reachable with a looser
   * one; with -1 it gets what the umask leaves.
   */
  listenUnix(path: string, backlog: number, mode: number): number;
  /** A Unix stream socket connected to `path`, or a negative errno. */
  dialUnix(path: string): number;
  /** The peer process of a connected Unix socket (`pid` null where the system does not tell it), or a negative errno (-ENOTCONN, -EAFNOSUPPORT for another family). */
  peerCredentials(fd: number): { pid: number | null; uid: number; gid: number } | number;
  /** A UDP socket bound to a numeric address (`flags` as listenTCP), a negative errno, or socketConstants.EBADADDR. */
  bindUDP(host: string, port: number, flags: number): number;
  /** Bytes sent to a numeric address, a negative errno, or socketConstants.EBADADDR. */
  sendTo(fd: number, buf: ArrayBufferView | ArrayBuffer, host: string, port: number): number;
  /** One datagram's size and sender (address '' and port 0, of the socket's family, when the kernel gives none), or a negative errno. */
  recvFrom(fd: number, buf: ArrayBufferView | ArrayBuffer): { bytes: number; address: NativeAddress } | number;
  /** Bytes read (0 at end of stream) or a negative errno. */
  read(fd: number, buf: ArrayBufferView | ArrayBuffer, offset?: number, length?: number): number;
  /** Bytes written or a negative errno. */
  write(fd: number, buf: ArrayBufferView | ArrayBuffer, offset?: number, length?: number): number;
  /**
   * Bytes read into the first IOV_MAX buffers, in order (0 at end of stream), or a negative
   * errno. `bufs` must be an Array (not a Proxy); all its elements are read before any
   * buffer's memory is taken, so a getter cannot free one under the call; a detached
   * buffer counts as empty.
   */
  readv(fd: number, bufs: readonly (ArrayBufferView | ArrayBuffer)[]): number;
  /** Bytes written from the first IOV_MAX buffers, in order, or a negative errno (`bufs` as for readv). */
  writev(fd: number, bufs: readonly (ArrayBufferView | ArrayBuffer)[]): number;
  /** Bytes sent as TCP urgent data (MSG_OOB), or a negative errno. */
  sendUrgent(fd: number, buf: ArrayBufferView | ArrayBuffer): number;
  /** Urgent bytes received (MSG_OOB), or a negative errno (-EINVAL: no urgent data pending). */
  recvUrgent(fd: number, buf: ArrayBufferView | ArrayBuffer): number;
  /** 0 or a negative errno; `how` is socketConstants SHUT_RD | SHUT_WR | SHUT_RDWR. */
  shutdown(fd: number, how: number): number;
  /**
   * 0 or a negative errno; -EBUSY (nothing closed) for a descriptor of any open poller in
   * the process (its backend fd, private duplicate or waker), whichever thread opened it.
   */
  close(fd: number): number;
  /** A close-on-exec duplicate of `fd`, or a negative errno. */
  dup(fd: number): number;
  /** Sets an integer option (`opt` from socketConstants.options): 0 or a negative errno. */
  setSockOpt(fd: number, opt: number, value: number): number;
  /** An integer option's value (>= 0), or a negative errno. */
  getSockOpt(fd: number, opt: number): number;
  /** SO_KEEPALIVE, plus idle/interval/count when `idleSeconds` > 0: 0 or a negative errno. */
  setKeepAlive(fd: number, on: number, idleSeconds: number): number;
  /** getsockname, or a negative errno. */
  localAddress(fd: number): NativeAddress | number;
  /** getpeername, or a negative errno (-ENOTCONN when not connected). */
  remoteAddress(fd: number): NativeAddress | number;
  readonly socketConstants: SocketConstants;
}
