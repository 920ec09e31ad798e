// Stands in for Electron's utility process under plain Node. Started with
// child_process.fork(thisFile, [module]): it gives the process the parentPort Electron
// would (an EventEmitter whose 'message' events carry { data, ports }, with
// postMessage()), carried over Node's IPC channel, then loads that module as
// utilityProcess.fork(module) would. Not a test file itself (no .test. in the name).
import { EventEmitter } from 'node:events';
import * as path from 'node:path';

const entry = process.argv[2];
if (entry === undefined || process.send === undefined) {
  console.error('usage: child_process.fork(electron-parent-port.js, [module]) with an IPC channel');
  process.exit(2);
}
const send = process.send.bind(process);
const parentPort = Object.assign(new EventEmitter(), { postMessage: (message: unknown) => void send(message) });
process.on('message', (data) => parentPort.emit('message', { data, ports: [] }));
(process as NodeJS.Process & { parentPort?: unknown }).parentPort = parentPort;
require(path.resolve(entry));
