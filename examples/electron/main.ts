// Electron's main process: starts the netpoll/server echo server (server.ts) and a window
// that shows its connection counts. Run with `npm start` in this folder.
import { app, BrowserWindow } from 'electron';
import * as path from 'node:path';
import { startCounterServer, type Counts } from './server';

let window: BrowserWindow | undefined;
let latest: Counts | undefined;

function show(counts: Counts): void {
  latest = counts;
  window?.webContents.send('counts', counts);
}

app.whenReady().then(async () => {
  const server = await startCounterServer({ port: Number(process.env.PORT ?? 7070), onCounts: show });
  server.done.catch((err: unknown) => console.error('the netpoll server failed to stop:', err));
  latest = server.counts();
  console.log(`netpoll echo server listening on ${latest.address}`);

  window = new BrowserWindow({
    width: 440,
    height: 280,
    title: 'netpoll in Electron',
    webPreferences: { preload: path.join(__dirname, 'preload.js'), contextIsolation: true, sandbox: true },
  });
  window.webContents.on('did-finish-load', () => latest && show(latest));
  void window.loadFile(path.join(__dirname, '..', 'index.html'));

  app.on('window-all-closed', () => {
    server.close();
    app.quit();
  });
});
