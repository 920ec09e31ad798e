// Errors: gnet's sentinel errors, Go's errors.Is over `cause`, Node-style
// SystemErrors from the negative errnos the binding returns. The argument checks are
// src/validate.ts (as Node core keeps internal/validators apart from internal/errors).
import * as fs from 'node:fs';
import * as util from 'node:util';

/**
 * An Error with a stable `code`, as Node's own errors have: the type of the sentinel
 * errors and of the `ERR_POLLER_BUSY` / `ERR_NO_CALLBACK` state errors.
 *
 * @example
 * ```ts
 * try { await poller.polling(cb); } catch (e) {
 *   if ((e as CodedError).code === 'ERR_POLLER_BUSY') console.error('already polling');
 * }
 * ```
 * @category Errors
 */
export interface CodedError extends Error {
  /** A stable identifier to branch on, such as `'ERR_POLLER_CLOSED'`; messages may change. */
  readonly code: string;
}

/** The type-only mark of a {@link StopError}: nothing at run time carries it. */
declare const stopErrorMark: unique symbol;

/**
 * The type of the errors that stop a loop when a callback returns them: {@link ErrEngineShutdown}
 * and {@link ErrAcceptSocket}. A {@link PollEventHandler} may return only these (or nothing), so
 * `return new Error('bad client')`, which gnet's loop (and this one) would ignore, does not
 * type-check. An Error wrapping one (`{ cause: ErrAcceptSocket }`) stops the loop too; say so
 * to the compiler with a cast: `new Error('accept failed', { cause: ErrAcceptSocket }) as StopError`.
 *
 * @example
 * ```ts
 * const stop: StopError = ErrEngineShutdown;
 * const handler: PollEventHandler = (fd, event) => (isReadEvent(event) ? stop : undefined);
 * ```
 * @category Errors
 */
export interface StopError extends CodedError {
  /** @internal A mark for the type checker only: no Error has it at run time. */
  readonly [stopErrorMark]: true;
}

function sentinel(message: string, code: string): CodedError {
  const err = new Error(message) as Error & { code: string };
  err.code = code;
  // A sentinel is compared by identity; its stack (from module load) would mislead.
  err.stack = `Error [${code}]: ${message}`;
  return Object.freeze(err) as CodedError;
}

/**
 * Returned by a callback or a task to stop the loop (gnet's `errors.ErrEngineShutdown`);
 * also what `polling()` resolves with when the poller is closed while polling.
 * Code `'ERR_ENGINE_SHUTDOWN'`; frozen, compared by identity or with {@link errorIs}.
 *
 * @example
 * ```ts
 * const err = await poller.polling((fd, event) => {
 *   if (isReadEvent(event) && read(fd, buf) === 0) return ErrEngineShutdown; // peer closed
 * });
 * err === ErrEngineShutdown; // true
 * ```
 * @category Errors
 */
export const ErrEngineShutdown: StopError = sentinel('server is going to be shutdown', 'ERR_ENGINE_SHUTDOWN') as StopError;

/**
 * Returned by a callback to stop the loop after a failed accept (gnet's
 * `errors.ErrAcceptSocket`). Code `'ERR_ACCEPT_SOCKET'`. Tasks cannot stop the loop with
 * it: as in gnet, only callbacks can.
 *
 * @example
 * ```ts
 * const err = await poller.polling(() => new Error('accept failed', { cause: ErrAcceptSocket }) as StopError);
 * errorIs(err, ErrAcceptSocket); // true
 * ```
 * @category Errors
 */
export const ErrAcceptSocket: StopError = sentinel('accept a new connection error', 'ERR_ACCEPT_SOCKET') as StopError;

/**
 * Thrown (or rejected with) by every call on a closed poller, and by pending `trigger()`
 * promises at close. Code `'ERR_POLLER_CLOSED'`.
 *
 * @example
 * ```ts
 * poller.close();
 * try { poller.addRead({ fd }); } catch (e) { e === ErrPollerClosed; } // true
 * ```
 * @category Errors
 */
export const ErrPollerClosed: CodedError = sentinel('poller is closed', 'ERR_POLLER_CLOSED');

/**
 * The sentinel errors, grouped as gnet's `pkg/errors` is, for code ported from Go that
 * writes `errors.ErrEngineShutdown`. Frozen.
 *
 * @example
 * ```ts
 * import { errors } from 'netpoll';
 * poller.polling(() => errors.ErrEngineShutdown);
 * ```
 * @category Errors
 */
export const errors = Object.freeze({ ErrEngineShutdown, ErrAcceptSocket, ErrPollerClosed });

/**
 * Go's `errors.Is`: whether `err` is `target` or wraps it, following `cause` and the
 * `errors` of an AggregateError (Go's joined errors). Cycles are tolerated.
 *
 * @param err - the error to examine; any value is accepted.
 * @param target - the error to look for, usually a sentinel such as {@link ErrEngineShutdown}.
 * @throws Never.
 * @example
 * ```ts
 * const wrapped = new Error('listener failed', { cause: ErrAcceptSocket });
 * errorIs(wrapped, ErrAcceptSocket); // true
 * ```
 * @category Errors
 */
export function errorIs(err: unknown, target: unknown): boolean {
  const seen = new Set<unknown>();
  const stack: unknown[] = [err];
  while (stack.length > 0) {
    const e = stack.pop();
    if (e === target) return true;
    if (e === null || typeof e !== 'object' || seen.has(e)) continue;
    seen.add(e);
    const cause = (e as { cause?: unknown }).cause;
    if (cause !== undefined) stack.push(cause);
    if (e instanceof AggregateError) for (const inner of e.errors) stack.push(inner);
  }
  return false;
}

/** Whether a callback's result stops polling, as gnet's loop decides. */
export function isStopError(result: unknown): boolean {
  if (result === ErrEngineShutdown || result === ErrAcceptSocket) return true;
  if (result === null || typeof result !== 'object') return false;
  // As for a task (isShutdown): a result whose `cause` getter or Proxy trap throws asked
  // for nothing; it is reported as any other returned value, and polling goes on.
  try {
    return errorIs(result, ErrEngineShutdown) || errorIs(result, ErrAcceptSocket);
  } catch {
    return false;
  }
}

/** Whether a task's result stops polling: gnet checks only ErrEngineShutdown for tasks. */
export function isShutdown(result: unknown): boolean {
  if (result === ErrEngineShutdown) return true;
  if (result === null || typeof result !== 'object') return false;
  // A result whose `cause` getter or Proxy trap throws asked for nothing: the task's
  // answer (its caller's business) must not stop the loop that checks it.
  try {
    return errorIs(result, ErrEngineShutdown);
  } catch {
    return false;
  }
}

/**
 * A kernel error in node:net's shape: `code`, negative `errno`, `syscall`. The message
 * reads `syscall CODE (description)`, and for a poller's registration calls it goes on to
 * say what that means for the fd, e.g. `epoll_ctl add EEXIST (file already exists): fd 7
 * is already registered with this poller; …`. Branch on `code`, not on the message.
 * {@link isSystemError} tells one from other errors, with the type narrowed.
 *
 * @example
 * ```ts
 * try { poller.addRead({ fd }); } catch (e) {
 *   if (isSystemError(e) && e.code === 'EEXIST') poller.modRead({ fd }); // already registered
 *   else throw e;
 * }
 * ```
 * @category Errors
 */
export interface SystemError extends Error {
  /** The errno name: `'EEXIST'`, `'ENOENT'`, `'EBADF'`, `'EMFILE'`, … */
  readonly code: string;
  /** The errno, negative as in Node's own errors: `util.getSystemErrorName(err.errno)` gives `code`. */
  readonly errno: number;
  /** The failing call, as gnet names it: `'epoll_ctl add'`, `'epoll_wait'`, `'read'`, `'connect'`, … */
  readonly syscall: string;
  /** The descriptor the call was about, when there is one. */
  readonly fd?: number;
  /** The address `dialTCP` tried, for connect errors. */
  readonly address?: string;
  /** The port `dialTCP` tried, for connect errors. */
  readonly port?: number;
}

/**
 * Whether `e` is a {@link SystemError}: an Error with a string `code`, a numeric `errno` and
 * a string `syscall`. netpoll's kernel errors are, and so are Node's own (from `fs`, `net`,
 * …). Unlike a cast, it narrows the type only when the fields are there.
 *
 * @param e - any value, typically what a `catch` caught.
 * @throws Never.
 * @example
 * ```ts
 * try { poller.delete(fd); } catch (e) {
 *   if (!isSystemError(e) || e.code !== 'ENOENT') throw e; // ENOENT: it was not registered
 * }
 * ```
 * @category Errors
 */
export function isSystemError(e: unknown): e is SystemError {
  if (!(e instanceof Error)) return false;
  const { code, errno, syscall } = e as Partial<Record<'code' | 'errno' | 'syscall', unknown>>;
  return typeof code === 'string' && typeof errno === 'number' && typeof syscall === 'string';
}

let errorMap: Map<number, [string, string]> | undefined;

/**
 * Turns a negative errno from the binding into a SystemError: `syscall CODE (description)`,
 * then `: hint` when there is one. `errno` stays negative, as in Node's own errors, so
 * `util.getSystemErrorName(err.errno)` works.
 */
export function systemError(negErrno: number, syscall: string, extra?: { fd?: number; address?: string; port?: number }, hint?: string): SystemError {
  errorMap ??= util.getSystemErrorMap();
  const errno = negErrno < 0 ? negErrno : -negErrno;
  const [code, description] = errorMap.get(errno) ?? [`E${-errno}`, 'unknown error'];
  let where = '';
  if (extra?.address !== undefined) where = ` ${extra.address}${extra.port !== undefined ? `:${extra.port}` : ''}`;
  const err = new Error(`${syscall} ${code}${where} (${description})${hint ? `: ${hint}` : ''}`) as Error & Record<string, unknown>;
  err.code = code;
  err.errno = errno;
  err.syscall = syscall;
  if (extra) Object.assign(err, extra);
  Error.captureStackTrace(err, systemError);
  return err as unknown as SystemError;
}

/**
 * The SystemError of a poller's add, mod or delete of `fd`. The kernel's words alone
 * ("file already exists") do not say which fd or what to do, so the three errors a
 * registration mistake gives name the fd and the way out.
 */
export function ctlError(negErrno: number, syscall: string, fd: number): SystemError {
  errorMap ??= util.getSystemErrorMap();
  const code = errorMap.get(negErrno < 0 ? negErrno : -negErrno)?.[0];
  let hint: string | undefined;
  if (code === 'EEXIST') {
    hint = `fd ${fd} is already registered with this poller; change its interest with modRead/modWrite/modReadWrite, or delete(${fd}) first`;
  } else if (code === 'ENOENT') {
    hint = `fd ${fd} is not registered with this poller (never added, deleted, or closed since)`;
  } else if (code === 'EPERM') {
    const kind = unpollableKind(fd);
    if (kind !== undefined) {
      hint = `fd ${fd} is ${kind}, and regular files and directories cannot be polled: they are always ready (epoll refuses them, and netpoll does on kqueue too); read them with node:fs`;
    }
  }
  const err = systemError(negErrno, syscall, { fd }, hint);
  Error.captureStackTrace(err, ctlError);
  return err;
}

/** "a regular file" or "a directory" for such an fd; undefined for anything else (or a closed fd). */
function unpollableKind(fd: number): string | undefined {
  try {
    const st = fs.fstatSync(fd);
    if (st.isFile()) return 'a regular file';
    if (st.isDirectory()) return 'a directory';
  } catch {
    // closed meanwhile: the message does without
  }
  return undefined;
}

/** An Error with a code, for misuse that is neither a type nor a range problem. */
export function stateError(message: string, code: string): CodedError {
  const err = new Error(message) as Error & { code: string };
  err.code = code;
  return err;
}

/** The error an aborted iteration rejects with, shaped as node:events' AbortError. */
export function abortError(reason: unknown): Error {
  const err = new Error('The operation was aborted', { cause: reason }) as Error & { code: string };
  err.name = 'AbortError';
  err.code = 'ABORT_ERR';
  return err;
}
