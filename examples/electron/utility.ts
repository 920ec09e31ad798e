// The Electron example's server in a utility process: main-utility.ts starts this file
// with utilityProcess.fork(). Electron recommends a utility process for heavy or
// untrusted networking: a stall here freezes no window, and a crash takes down this
// process, not the app. netpoll runs in it as in Node (a utility process is a Node
// process with Electron's parentPort instead of IPC).
//
// It talks to main through process.parentPort only; nothing here imports Electron, so
// the test suite runs this very file under plain Node, with a stand-in parentPort.
import { startCounterServer, type CounterServer, type CounterServerOptions, type Counts } from './server';

/** The part of Electron's `process.parentPort` this module uses. */
export interface ParentPort {
  on(event: 'message', listener: (messageEvent: { data: unknown }) => void): unknown;
  postMessage(message: unknown): void;
}

/** What the utility process tells main. */
export type UtilityMessage =
  | { type: 'listening'; counts: Counts }
  | { type: 'counts'; counts: Counts }
  | { type: 'stopped' }
  | { type: 'failed'; message: string };

/** What main tells the utility process. */
export type MainMessage = { type: 'stop' };

/**
 * Starts the counter server and wires it to `parentPort`: counts go out as they change,
 * `{ type: 'stop' }` closes the server, and `stopped` (or `failed`) says it is done.
 * Resolves with the server once it listens (undefined when it could not start: `failed` said why).
 */
export async function runUtility(parentPort: ParentPort, options: Omit<CounterServerOptions, 'onCounts'> = {}): Promise<CounterServer | undefined> {
  const send = (message: UtilityMessage): void => parentPort.postMessage(message);
  let server: CounterServer;
  try {
    server = await startCounterServer({ ...options, onCounts: (counts) => send({ type: 'counts', counts }) });
  } catch (err) {
    send({ type: 'failed', message: err instanceof Error ? err.message : String(err) });
    return undefined;
  }
  parentPort.on('message', ({ data }) => {
    if ((data as MainMessage | null)?.type === 'stop') server.close();
  });
  server.done.then(
    () => send({ type: 'stopped' }),
    (err: unknown) => send({ type: 'failed', message: err instanceof Error ? err.message : String(err) }),
  );
  send({ type: 'listening', counts: server.counts() });
  return server;
}

// Started by utilityProcess.fork() (or the test suite's stand-in): there is a parentPort.
const parentPort = (process as NodeJS.Process & { parentPort?: ParentPort | null }).parentPort;
if (parentPort) void runUtility(parentPort, { port: Number(process.env.PORT ?? 7070) });
