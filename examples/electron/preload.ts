// The one thing the window may do: hear about new counts. They come over IPC from
// main.ts (server in the main process), or over a MessagePort that main-utility.ts
// hands over (server in a utility process). The port stays here, in the preload:
// the page sees only the callback.
import { contextBridge, ipcRenderer } from 'electron';

contextBridge.exposeInMainWorld('netpoll', {
  onCounts(callback: (counts: unknown) => void): void {
    ipcRenderer.on('counts', (_event, counts: unknown) => callback(counts));
    ipcRenderer.on('counts-port', (event) => {
      const [port] = event.ports;
      if (port) port.onmessage = (message: { data: unknown }) => callback(message.data);
    });
  },
});
