// The one thing the window may do: hear about new counts.
import { contextBridge, ipcRenderer } from 'electron';

contextBridge.exposeInMainWorld('netpoll', {
  onCounts(callback: (counts: unknown) => void): void {
    ipcRenderer.on('counts', (_event, counts: unknown) => callback(counts));
  },
});
