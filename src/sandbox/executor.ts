/**
 * The main thread's handle on one executor: a worker thread with its own V8
 * isolate and stack limit. It sends one request at a time, enforces the
 * deadline of the running request by terminating the worker, and tells the
 * pool when the worker is gone so that it can be replaced.
 */
import { Worker } from "node:worker_threads";
import type { IoServer } from "../kernel/io-bridge.js";
import type { GuestOutcome, ReactorValue } from "./guest.js";
import { describeEnd, EXIT_CODES, type ResolvedLimits } from "./limits.js";
import type { ExecutorStats, WorkerData, WorkerReply, WorkerRequest } from "./protocol.js";
import type { Snapshot } from "./snapshot.js";

const WORKER_URL = new URL("./executor-worker.js", import.meta.url);

/** The executor died before or while it ran a request that had not started the guest. */
export class ExecutorLostError extends Error {
  constructor(
    message: string,
    /** Whether the request had been sent to the worker (then it may have run in part). */
    readonly started: boolean,
  ) {
    super(message);
    this.name = "ExecutorLostError";
  }
}

export interface Reply {
  outcome?: GuestOutcome;
  value?: ReactorValue;
  snapshot?: Snapshot;
  stats?: ExecutorStats;
}

export type Body = WorkerRequest extends infer R ? (R extends { id: number } ? Omit<R, "id"> : never) : never;

export interface Job {
  /** The request, built for the executor that takes it (module refs depend on what it holds). */
  build: (ex: Executor) => Body;
  /** Deadline of the guest code this request runs (Infinity: none). */
  timeoutMs: number;
  limits?: ResolvedLimits;
  onOutput?: (stream: "stdout" | "stderr", chunk: Uint8Array) => void;
  onTrace?: (line: string) => void;
  resolve: (r: Reply) => void;
  reject: (e: Error) => void;
}

export interface ExecutorEvents {
  /** The executor can take another job. */
  idle(ex: Executor): void;
  /** The worker is gone (terminated at a deadline, crashed, or closed). */
  dead(ex: Executor, why: string): void;
}

let nextExecutorId = 1;

export class Executor {
  readonly id = nextExecutorId++;
  readonly worker: Worker;
  /** Module keys this executor holds. */
  readonly modules = new Set<string>();
  /** Reactor instance ids living in this executor. */
  readonly instances = new Set<number>();
  /** Jobs that must run here (calls on reactors this executor hosts). */
  readonly pinned: Job[] = [];
  current: Job | undefined;
  alive = true;
  /** The worker has booted; until then the pool gives work to executors that can start it now. */
  ready = false;
  /** Terminated at a deadline (vs crashed). */
  killedAtDeadline = false;
  private nextId = 1;
  private timer: NodeJS.Timeout | undefined;
  private closeIo: (() => void) | undefined;
  idleSince = Date.now();

  constructor(
    readonly stackSizeMb: number,
    private readonly events: ExecutorEvents,
    io?: IoServer,
    /** Extra executors (non-default stack size) retire when idle. */
    readonly extra = false,
  ) {
    const data: WorkerData = {};
    const transferList: import("node:worker_threads").MessagePort[] = [];
    if (io) {
      const conn = io.connect();
      data.ioPort = conn.port;
      data.ioSignal = conn.signal;
      transferList.push(conn.port);
      this.closeIo = conn.close;
    }
    this.worker = new Worker(WORKER_URL, {
      workerData: data,
      transferList,
      resourceLimits: { stackSizeMb },
      // The guest's output goes through the kernel, never the worker's console.
      stdout: false,
      stderr: false,
    });
    this.worker.on("message", (msg: WorkerReply) => this.onMessage(msg));
    this.worker.on("error", (err) => this.die(`worker error: ${err.message}`));
    this.worker.on("exit", (code) => this.die(`worker exited with code ${code}`));
  }

  get busy(): boolean {
    return this.current !== undefined;
  }

  /** Starts a job; the executor must be idle. */
  start(job: Job): void {
    if (this.current) throw new Error(`executor ${this.id} is busy`);
    this.current = job;
    const id = this.nextId++;
    (job as Job & { id?: number }).id = id;
    if (Number.isFinite(job.timeoutMs)) {
      this.timer = setTimeout(() => this.deadline(job), job.timeoutMs);
    }
    this.worker.postMessage({ ...job.build(this), id } as WorkerRequest);
  }

  private deadline(job: Job): void {
    if (this.current !== job || !this.alive) return;
    // A guest spinning in a loop can only be stopped by ending its isolate.
    this.killedAtDeadline = true;
    const limits = job.limits;
    const outcome: GuestOutcome = {
      reason: "deadline_exceeded",
      exitCode: EXIT_CODES.deadline_exceeded,
      message: limits ? describeEnd("deadline_exceeded", limits) : `deadline of ${job.timeoutMs} ms exceeded`,
      stdout: new Uint8Array(0),
      stderr: new Uint8Array(0),
      memoryBytes: 0,
      calls: {},
      denied: {},
      durationUs: Math.round(job.timeoutMs * 1000),
    };
    this.current = undefined;
    job.resolve({ outcome });
    void this.worker.terminate();
    this.die("terminated at a deadline");
  }

  private onMessage(msg: WorkerReply): void {
    if (msg.kind === "ready") {
      // Not at "online": the worker's modules load after that, and work sent before would wait for them.
      this.ready = true;
      if (this.alive && !this.current) this.events.idle(this);
      return;
    }
    const job = this.current;
    if (!job || (job as Job & { id?: number }).id !== msg.id) return;
    switch (msg.kind) {
      case "output":
        job.onOutput?.(msg.stream, msg.chunk);
        return;
      case "trace":
        job.onTrace?.(msg.line);
        return;
      case "error":
        this.finish();
        job.reject(Object.assign(new Error(msg.message), { name: msg.name }));
        break;
      case "done": {
        this.finish();
        const r: Reply = {};
        if (msg.outcome) {
          // Empty output is left out on the wire (see executor-worker's reply).
          msg.outcome.stdout ??= new Uint8Array(0);
          msg.outcome.stderr ??= new Uint8Array(0);
          r.outcome = msg.outcome;
        }
        if (msg.value !== undefined) r.value = msg.value;
        if (msg.snapshot) r.snapshot = msg.snapshot;
        if (msg.stats) r.stats = msg.stats;
        job.resolve(r);
        break;
      }
    }
    if (this.alive) this.events.idle(this);
  }

  private finish(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.current = undefined;
    this.idleSince = Date.now();
  }

  private die(why: string): void {
    if (!this.alive) return;
    this.alive = false;
    if (this.timer) clearTimeout(this.timer);
    this.closeIo?.();
    const job = this.current;
    this.current = undefined;
    if (job) job.reject(new ExecutorLostError(`executor ${this.id} lost while running a request: ${why}`, true));
    for (const p of this.pinned.splice(0)) p.reject(new ExecutorLostError(`executor ${this.id} lost before the request started: ${why}`, false));
    this.events.dead(this, why);
  }

  /** Ends the worker; pending pinned jobs are rejected. */
  async close(): Promise<void> {
    if (!this.alive) return;
    const w = this.worker.terminate();
    this.die("closed");
    await w;
  }
}
