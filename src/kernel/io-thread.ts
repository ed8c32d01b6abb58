import { Worker } from "node:worker_threads";
import type { MessagePort } from "node:worker_threads";
import { SyncIoClient, type BlockingIo } from "./io-bridge.js";

type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; message: string };

/**
 * An IoServer on its own worker thread, for guests that run on the calling
 * thread (as `uniwasm run` does): the guest's thread blocks in host calls
 * while this thread's event loop does the socket I/O.
 */
export class IoThread {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(private readonly worker: Worker) {
    worker.on("message", (r: Reply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (r.ok) p.resolve(r.value);
      else p.reject(new Error(r.message));
    });
    worker.on("error", (err) => {
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    });
  }

  static start(): IoThread {
    return new IoThread(new Worker(new URL("./io-thread-worker.js", import.meta.url)));
  }

  private request<T>(msg: Record<string, unknown>): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, ...msg });
    });
  }

  /** Opens a listening socket on the I/O thread; returns the handle to grant and the bound address. */
  listen(address: string): Promise<{ handle: number; address: string }> {
    return this.request({ op: "listen", address });
  }

  /** A synchronous client for a kernel on this thread. */
  async client(): Promise<BlockingIo> {
    const { port, signal } = await this.request<{ port: MessagePort; signal: SharedArrayBuffer }>({ op: "connect" });
    return new SyncIoClient(port, signal);
  }

  async close(): Promise<void> {
    await this.request({ op: "close" }).catch(() => undefined);
    await this.worker.terminate();
  }
}
