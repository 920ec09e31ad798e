// Engine.offer() and Engine.peer(): the tasks each loop offers the others, over netpoll's
// public remote trigger (Poller.handle() and connectPoller()).
import { connectPoller, type PollerHandle, type PollerTasks, type RemotePoller } from '../index.js';
import { codedError } from './eventloop.js';
import { checkInteger, invalidType } from './options.js';

/** The task names the engine's own handle uses (a loop thread's): refused in offer(). */
export const RESERVED_TASKS: readonly string[] = ['adopt', 'stop', 'peers'];

/** One engine's offered tasks and its way to every loop's. */
export class Peers {
  #tasks: PollerTasks | undefined;
  /** offer() is allowed (in onBoot, before the handle is made). */
  #open = true;
  #handles: PollerHandle[] | undefined;
  #closed = false;
  readonly #remotes = new Map<number, RemotePoller>();

  constructor(readonly count: number) {}

  /** Engine.offer(): checks and keeps `tasks` (read once: a getter runs here). */
  offer(tasks: unknown): void {
    if (!this.#open) throw codedError('engine.offer() is for onBoot, once (and not on a multicore server\'s own engine)', 'ERR_INVALID_STATE');
    if (typeof tasks !== 'object' || tasks === null) throw invalidType('tasks', 'an object of functions', tasks);
    // No prototype: a task named __proto__ stays a task (the poller's handle() checks names).
    const copy = Object.create(null) as Record<string, (param: never) => unknown>;
    for (const name of Object.keys(tasks)) {
      const fn: unknown = (tasks as Record<string, unknown>)[name];
      if (typeof fn !== 'function') throw invalidType(`tasks.${name}`, 'a function', fn);
      if (RESERVED_TASKS.includes(name)) {
        throw Object.assign(new RangeError(`The task name "${name}" is the engine's own: choose another`), { code: 'ERR_RESERVED_TASK' });
      }
      copy[name] = fn as (param: never) => unknown;
    }
    this.#tasks = copy;
    this.#open = false;
  }

  /** What was offered (undefined: nothing); offer() is refused from now on. */
  take(): PollerTasks | undefined {
    this.#open = false;
    return this.#tasks;
  }

  /** Every loop's handle, in loop order (undefined for a loop that offered nothing). */
  introduce(handles: (PollerHandle | undefined)[]): void {
    this.#handles = handles as PollerHandle[];
  }

  /** Engine.peer(). */
  peer(index: number): RemotePoller {
    checkInteger(index, 'index', 0, this.count - 1);
    if (this.#closed) throw codedError('the engine stopped: its loops take no more tasks', 'ERR_INVALID_STATE');
    let remote = this.#remotes.get(index);
    if (remote !== undefined) return remote;
    const handle = this.#handles?.[index];
    if (handle === undefined) {
      throw codedError(this.#handles === undefined ? 'the loops are not introduced yet: engine.peer() works once serve() resolved' : `loop ${index} offered no tasks (engine.offer() in its onBoot)`, 'ERR_INVALID_STATE');
    }
    remote = connectPoller(handle);
    this.#remotes.set(index, remote);
    return remote;
  }

  close(): void {
    this.#open = false;
    this.#closed = true;
    for (const r of this.#remotes.values()) r.close();
    this.#remotes.clear();
  }
}
