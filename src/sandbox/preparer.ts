/**
 * Where modules are prepared (checked, rewritten, compiled: modules.ts):
 *
 * - "worker" (the default for a pool): on a thread of its own, started on
 *   first use and let go when idle, so the thread that serves requests never
 *   spends seconds on a big module (issue 8: a 52 MB module held a node's
 *   event loop for ~3 s). It has its own V8 heap limit: a module whose
 *   preparation exhausts it fails alone, and the thread is replaced.
 * - "inline": on the calling thread (the CLI, which serves nothing else while
 *   it starts a guest, and pays no thread start-up for it).
 *
 * Either way the cost is measured (PreparedModule.cost: wall time and the
 * preparing thread's CPU time) so a caller can charge it to whoever asked.
 */
import { Worker } from "node:worker_threads";
import { WasmError, WasmLimitError, WasmFormatError, WasmUnsupportedError, WasmCompileError } from "../wasm/errors.js";
import type { ModuleLimits } from "../wasm/validate.js";
import { prepareAndCompile, type PreparedModule, type Rewrites } from "./modules.js";

export type PreparePlacement = "worker" | "inline";

/** @internal The preparer's protocol (one request, one reply, by postMessage). */
export interface PrepareRequest {
  id: number;
  bytes: Uint8Array;
  key: string;
  rewrites: Rewrites;
  moduleLimits?: Partial<ModuleLimits>;
  /** Keep the rewritten bytes (PreparedModule.wire) for executors in other processes. */
  keepBytes?: boolean;
}

/** @internal */
export interface SerializedError {
  kind: "WasmLimitError" | "WasmFormatError" | "WasmUnsupportedError" | "WasmCompileError" | "WasmError" | "RangeError" | "Error";
  name: string;
  message: string;
  fields: Record<string, unknown>;
}

/** @internal */
export type PrepareReply = { id: number; prepared: PreparedModule; error?: undefined } | { id: number; error: SerializedError; prepared?: undefined };

const WORKER_URL = new URL("./prepare-worker.js", import.meta.url);
/** The preparer thread's V8 heap, MiB: rewrites of a big module keep large arrays (fuel offset maps). */
const PREPARER_HEAP_MB = 1024;
/** Idle time after which the preparer thread no longer keeps the process alive. */
const IDLE_UNREF_MS = 1000;

const CLASSES = { WasmLimitError, WasmFormatError, WasmUnsupportedError, WasmCompileError, WasmError, RangeError, Error } as const;

/** The error the worker threw, as the same class here (WasmError kinds keep their fields). */
function revive(e: SerializedError): Error {
  const err = Object.create(CLASSES[e.kind].prototype) as Error;
  Object.assign(err, e.fields);
  Object.defineProperty(err, "message", { value: e.message, writable: true, configurable: true });
  Object.defineProperty(err, "name", { value: e.name, writable: true, configurable: true });
  return err;
}

interface Pending {
  req: PrepareRequest;
  resolve: (m: PreparedModule) => void;
  reject: (e: Error) => void;
}

export class ModulePreparer {
  private worker: Worker | undefined;
  private readonly queue: Pending[] = [];
  private current: Pending | undefined;
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Preparations done, and threads lost (heap exhausted or crashed) and replaced. */
  readonly counters = { prepared: 0, lost: 0 };

  constructor(readonly placement: PreparePlacement = "worker") {}

  prepare(bytes: Uint8Array, key: string, rewrites: Rewrites, moduleLimits?: Partial<ModuleLimits>, keepBytes = false): Promise<PreparedModule> {
    if (this.closed) return Promise.reject(new Error("the module preparer is closed"));
    if (this.placement === "inline") {
      try {
        const m = prepareAndCompile(bytes, key, rewrites, moduleLimits, keepBytes);
        this.counters.prepared++;
        return Promise.resolve(m);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return new Promise((resolve, reject) => {
      const req: PrepareRequest = { id: this.nextId++, bytes, key, rewrites, ...(moduleLimits ? { moduleLimits } : {}), ...(keepBytes ? { keepBytes } : {}) };
      this.queue.push({ req, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    if (this.current || this.queue.length === 0) return;
    const w = this.thread();
    this.current = this.queue.shift()!;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    w.ref();
    w.postMessage(this.current.req);
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(WORKER_URL, { resourceLimits: { maxOldGenerationSizeMb: PREPARER_HEAP_MB }, stdout: false, stderr: false });
    w.on("message", (reply: PrepareReply) => {
      const job = this.current;
      if (!job || job.req.id !== reply.id) return;
      this.current = undefined;
      if (reply.prepared) {
        this.counters.prepared++;
        job.resolve(reply.prepared);
      } else job.reject(revive(reply.error!));
      this.idle();
      this.pump();
    });
    const lost = (why: string): void => {
      if (this.worker !== w) return;
      this.worker = undefined;
      this.counters.lost++;
      const job = this.current;
      this.current = undefined;
      // The module could not be prepared within the preparer's limits: the tenant's problem, named.
      job?.reject(new WasmCompileError(why, undefined, `the module could not be prepared: ${why}`));
      if (!this.closed) this.pump();
    };
    w.on("error", (err) => lost((err as NodeJS.ErrnoException).code === "ERR_WORKER_OUT_OF_MEMORY" ? `preparing it exhausted the preparer's V8 heap of ${PREPARER_HEAP_MB} MiB` : `the preparer failed: ${err.message}`));
    w.on("exit", (code) => lost(`the preparer thread exited with code ${code}`));
    this.worker = w;
    return w;
  }

  /** An idle preparer thread does not keep the process alive (it stays for the next module). */
  private idle(): void {
    if (this.queue.length > 0 || !this.worker) return;
    const w = this.worker;
    this.idleTimer = setTimeout(() => w.unref(), IDLE_UNREF_MS);
    this.idleTimer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    for (const p of this.queue.splice(0)) p.reject(new Error("the module preparer was closed"));
    const w = this.worker;
    this.worker = undefined;
    const job = this.current;
    this.current = undefined;
    job?.reject(new Error("the module preparer was closed"));
    if (w) await w.terminate();
  }
}
