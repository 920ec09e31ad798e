// Electron's main process, utility-process variant: the netpoll server runs in a
// utilityProcess (utility.ts), and main relays its counts to the window over a
// MessagePort. Main itself loads no native module and does no networking.
// Run with `npm run start:utility` in this folder.
import { app, BrowserWindow, MessageChannelMain, utilityProcess } from 'electron';
import * as path from 'node:path';
import type { MainMessage, UtilityMessage } from './utility';

app.whenReady().then(() => {
  const server = utilityProcess.fork(path.join(__dirname, 'utility.js'), [], {
    serviceName: 'netpoll echo server',
    env: { ...process.env, PORT: process.env.PORT ?? '7070' },
  });

  // Main keeps one end of a channel; the window gets the other (see preload.ts). What main
  // posts before the window has its end waits in the channel.
  const { port1: toWindow, port2: windowEnd } = new MessageChannelMain();

  server.on('message', (message: UtilityMessage) => {
    if (message.type === 'listening') console.log(`netpoll echo server (utility process ${server.pid}) listening on ${message.counts.address}`);
    if (message.type === 'failed') console.error('the netpoll server failed:', message.message);
    if (message.type === 'stopped' || message.type === 'failed') server.kill();
    if (message.type === 'listening' || message.type === 'counts') toWindow.postMessage(message.counts);
  });
  server.on('exit', (code) => {
    if (code !== 0) console.error(`the utility process exited with code ${code}`);
    app.quit();
  });

  const window = new BrowserWindow({
    width: 440,
    height: 280,
    title: 'netpoll in a utility process',
    webPreferences: { preload: path.join(__dirname, 'preload.js'), contextIsolation: true, sandbox: true },
  });
  window.webContents.once('did-finish-load', () => window.webContents.postMessage('counts-port', null, [windowEnd]));
  void window.loadFile(path.join(__dirname, '..', 'index.html'));

  // Closing the window stops the server; its exit quits the app.
  app.on('window-all-closed', () => server.postMessage({ type: 'stop' } satisfies MainMessage));
});
