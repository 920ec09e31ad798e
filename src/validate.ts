// Argument checks: each throws Node's own shapes (a TypeError with code
// ERR_INVALID_ARG_TYPE or ERR_INVALID_ARG_VALUE, a RangeError with ERR_OUT_OF_RANGE) and
// messages, and narrows the type for the caller. Kept apart from src/errors.ts (the
// errors netpoll gives as results: sentinels, SystemErrors), as Node core keeps
// internal/validators apart from internal/errors. Imports nothing of the project's.
import * as util from 'node:util';

function typeError(message: string): TypeError {
  const err = new TypeError(message) as TypeError & { code: string };
  err.code = 'ERR_INVALID_ARG_TYPE';
  return err;
}

function rangeError(message: string): RangeError {
  const err = new RangeError(message) as RangeError & { code: string };
  err.code = 'ERR_OUT_OF_RANGE';
  return err;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return `an instance of ${value.constructor?.name ?? 'Object'}`;
  if (typeof value === 'function') return 'a function';
  return `type ${typeof value} (${util.inspect(value)})`;
}

/** Largest value a file descriptor can take (an int). */
export const MAX_FD = 0x7fffffff;

/** Checks that `fd` is a file-descriptor number: an integer in [0, 2^31 - 1]. */
export function validateFd(fd: unknown, name = 'fd'): asserts fd is number {
  if (typeof fd !== 'number') throw typeError(`The "${name}" argument must be of type number. Received ${describe(fd)}`);
  if (!Number.isInteger(fd) || fd < 0 || fd > MAX_FD) {
    throw rangeError(`The value of "${name}" is out of range. It must be an integer >= 0 && <= ${MAX_FD}. Received ${fd}`);
  }
}

export function validateFunction(value: unknown, name: string): asserts value is (...args: never[]) => unknown {
  if (typeof value !== 'function') throw typeError(`The "${name}" argument must be of type function. Received ${describe(value)}`);
}

export function validateBoolean(value: unknown, name: string): asserts value is boolean {
  if (typeof value !== 'boolean') throw typeError(`The "${name}" argument must be of type boolean. Received ${describe(value)}`);
}

export function validateInteger(value: unknown, name: string, min: number, max: number): asserts value is number {
  if (typeof value !== 'number') throw typeError(`The "${name}" argument must be of type number. Received ${describe(value)}`);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw rangeError(`The value of "${name}" is out of range. It must be an integer >= ${min} && <= ${max}. Received ${value}`);
  }
}

export function validateObject(value: unknown, name: string): asserts value is object {
  if (value === null || typeof value !== 'object') throw typeError(`The "${name}" argument must be of type object. Received ${describe(value)}`);
}

export function validateString(value: unknown, name: string): asserts value is string {
  if (typeof value !== 'string') throw typeError(`The "${name}" argument must be of type string. Received ${describe(value)}`);
}

export function validateBuffer(value: unknown, name: string): asserts value is ArrayBufferView | ArrayBuffer {
  if (!ArrayBuffer.isView(value) && !(value instanceof ArrayBuffer)) {
    throw typeError(`The "${name}" argument must be a Buffer, TypedArray, DataView or ArrayBuffer. Received ${describe(value)}`);
  }
}

/** Checks that `value` is one of `allowed` (a TypeError with code ERR_INVALID_ARG_VALUE otherwise). */
export function validateOneOf<T extends string>(value: unknown, name: string, allowed: readonly T[]): asserts value is T {
  if (!(allowed as readonly unknown[]).includes(value)) {
    const err = new TypeError(`The argument '${name}' must be one of: ${allowed.map((a) => `'${a}'`).join(', ')}. Received ${util.inspect(value)}`) as TypeError & { code: string };
    err.code = 'ERR_INVALID_ARG_VALUE';
    throw err;
  }
}
