import { parentPort } from "node:worker_threads";
import { IoServer } from "./io-bridge.js";

/** Worker entry of IoThread: serves socket I/O for guests on other threads. */
const server = new IoServer();
const port = parentPort!;

port.on("message", async (msg: { id: number; op: string; address?: string }) => {
  try {
    switch (msg.op) {
      case "listen":
        port.postMessage({ id: msg.id, ok: true, value: await server.listen(msg.address!) });
        break;
      case "connect": {
        const c = server.connect();
        port.postMessage({ id: msg.id, ok: true, value: { port: c.port, signal: c.signal } }, [c.port]);
        break;
      }
      case "close":
        await server.close();
        port.postMessage({ id: msg.id, ok: true, value: null });
        break;
      default:
        port.postMessage({ id: msg.id, ok: false, message: `unknown op ${msg.op}` });
    }
  } catch (err) {
    port.postMessage({ id: msg.id, ok: false, message: (err as Error).message });
  }
});
