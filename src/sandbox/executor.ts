/**
 * The main thread's handle on one executor: a worker thread with its own V8
 * isolate and stack limit. It sends one request at a time, enforces the
 * deadline of the running request by terminating the worker, and tells the
 * pool when the worker is gone so that it can be replaced.
 *
 * Requests and results go through the executor's job slot (job-slot.ts): the
 * worker parks on it between jobs, and this side learns of the result through
 * Atomics.waitAsync. What does not fit the slot (a module's first transfer, a
 * snapshot, large outputs) and everything streamed during a run (trace lines,
 * and where each output chunk is in the executor's output ring,
 * output-ring.ts) travels by postMessage.
 */
import { Worker } from "node:worker_threads";
import type { IoServer } from "../kernel/io-bridge.js";
import type { GuestOutcome, ReactorValue } from "./guest.js";
import { describeEnd, EXIT_CODES, type ResolvedLimits } from "./limits.js";
import type { ExecutorChannel, ExecutorStats, FinalReply, WorkerData, WorkerReply, WorkerRequest } from "./protocol.js";
import type { Snapshot } from "./snapshot.js";
import { createJobSlot, DONE, JOB, LENGTH, openJobSlot, SlotReader, SlotWriter, STATE, VIA_PORT, VIA_SLOT, WHERE, type JobSlot } from "./job-slot.js";
import { createOutputRing, OutputRingReader } from "./output-ring.js";
import { DeadlineTimer } from "./deadline-timer.js";

type WaitAsyncResult = { async: false; value: "not-equal" | "timed-out" } | { async: true; value: Promise<"ok" | "timed-out"> };
/** Node 20 has Atomics.waitAsync; TypeScript's ES2023 lib does not declare it. */
const waitAsync = (Atomics as unknown as { waitAsync(ta: Int32Array, index: number, value: number): WaitAsyncResult }).waitAsync;

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
  build: (ex: ExecutorHandle) => Body;
  /** Deadline of the guest code this request runs (Infinity: none). */
  timeoutMs: number;
  limits?: ResolvedLimits;
  onOutput?: (stream: "stdout" | "stderr", chunk: Uint8Array) => void | Promise<void>;
  /** See RunOptions.lendStdout. */
  lendStdout?: boolean;
  onTrace?: (line: string) => void;
  resolve: (r: Reply) => void;
  reject: (e: Error) => void;
}

export interface ExecutorEvents {
  /** The executor can take another job. */
  idle(ex: ExecutorHandle): void;
  /** The worker is gone (terminated at a deadline, out of heap, crashed, or closed). */
  dead(ex: ExecutorHandle, why: string): void;
  /** Its thread has stopped: everything it allocated is freed (after `dead`, sometimes much later). */
  exited?(ex: ExecutorHandle): void;
}

/**
 * What the pool needs of an executor, wherever it lives: a worker thread of
 * this process (Executor, the isolate tier) or a sandboxed process speaking
 * the same protocol over a stream (tiers/process-executor.ts).
 */
export interface ExecutorHandle {
  readonly id: number;
  readonly stackSizeMb: number;
  readonly extra: boolean;
  /** Module keys this executor holds. */
  readonly modules: Set<string>;
  /** Reactor instance ids living in this executor. */
  readonly instances: Set<number>;
  /** Jobs that must run here (calls on reactors this executor hosts). */
  readonly pinned: Job[];
  readonly alive: boolean;
  readonly ready: boolean;
  readonly busy: boolean;
  readonly killedAtDeadline: boolean;
  readonly outOfHeap: boolean;
  /** Its thread (or process) has stopped. */
  readonly exited: boolean;
  /** The process it lives in, when that is not this one (the sandboxed tiers). */
  readonly pid?: number | undefined;
  idleSince: number;
  start(job: Job): void;
  close(waitMs?: number): Promise<void>;
}

/** Where a pool's executors live (a tier): makes them. The default makes worker threads. */
export interface ExecutorLauncher {
  /** "isolate", "process", "gvisor". */
  readonly tier: string;
  /** Its executors cannot be sent a compiled WebAssembly.Module: the pool keeps each module's rewritten bytes. */
  readonly needsModuleBytes: boolean;
  launch(options: ExecutorOptions, events: ExecutorEvents): ExecutorHandle;
}

export interface ExecutorOptions {
  /** V8 stack of the worker, MiB. */
  stackSizeMb: number;
  /** V8 heap (old generation) of the worker, MiB: past it the executor ends, never the process. */
  heapMb: number;
  io?: IoServer;
  /** Extra executors (non-default stack size) retire when idle. */
  extra?: boolean;
  /** Extension modules the worker imports (see extension-modules.ts). */
  extensionModules?: readonly string[];
  /** A sandboxed executor process: the worker serves this channel itself (start() is then not used). */
  channel?: ExecutorChannel;
}

let nextExecutorId = 1;

/** Executor ids are unique in the process, whatever the tier. */
export function newExecutorId(): number {
  return nextExecutorId++;
}

export const WORKER_LAUNCHER: ExecutorLauncher = {
  tier: "isolate",
  needsModuleBytes: false,
  launch: (options, events) => new Executor(options, events),
};

export class Executor implements ExecutorHandle {
  readonly id = newExecutorId();
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
  /** Ended because its V8 heap reached its limit. */
  outOfHeap = false;
  /** Its thread has stopped (the 'exit' event came): what it allocated is freed. */
  exited = false;
  /** Resolves when the thread has stopped. */
  readonly whenExited: Promise<void>;
  readonly stackSizeMb: number;
  readonly heapMb: number;
  readonly extra: boolean;
  private nextId = 1;
  private readonly deadline = new DeadlineTimer(() => this.deadlineReached());
  /** Output and trace messages of the running job delivered so far. */
  private streamed = 0;
  /** The running job's result, come through the slot ahead of messages posted before it. */
  private held: FinalReply | undefined;
  /** Where the worker's streamed output arrives (output-ring.ts); replaced at a job's start while views of it are lent out. */
  private ring = new OutputRingReader(createOutputRing());
  private closeIo: (() => void) | undefined;
  private readonly slot: JobSlot;
  private readonly writer: SlotWriter;
  private readonly reader: SlotReader;
  idleSince = Date.now();

  constructor(
    options: ExecutorOptions,
    private readonly events: ExecutorEvents,
  ) {
    const { stackSizeMb, heapMb, io, extensionModules = [] } = options;
    this.stackSizeMb = stackSizeMb;
    this.heapMb = heapMb;
    this.extra = options.extra ?? false;
    const slotBuffer = createJobSlot();
    this.slot = openJobSlot(slotBuffer);
    this.writer = new SlotWriter(this.slot);
    this.reader = new SlotReader(this.slot);
    const data: WorkerData = { slot: slotBuffer };
    if (extensionModules.length > 0) data.extensionModules = [...extensionModules];
    // A sandboxed process's worker writes its output into its channel, not to this thread.
    if (options.channel) data.channel = options.channel;
    else data.outputRing = this.ring.buffer;
    const transferList: import("node:worker_threads").MessagePort[] = [];
    if (io) {
      const conn = io.connect(this.id);
      data.ioPort = conn.port;
      data.ioSignal = conn.signal;
      transferList.push(conn.port);
      this.closeIo = conn.close;
    }
    this.worker = new Worker(WORKER_URL, {
      workerData: data,
      transferList,
      // The heap limit makes running out of heap end this worker (ERR_WORKER_OUT_OF_MEMORY) instead of
      // aborting the process, as long as no single allocation overshoots it by more than 16 MiB (see
      // MAX_TABLE_ELEMENTS in limits.ts for what bounds the largest a guest can cause).
      resourceLimits: { stackSizeMb, maxOldGenerationSizeMb: heapMb },
      // The guest's output goes through the kernel, never the worker's console.
      stdout: false,
      stderr: false,
    });
    this.worker.on("message", (msg: WorkerReply) => this.onMessage(msg));
    this.worker.on("error", (err) => {
      if ((err as NodeJS.ErrnoException).code === "ERR_WORKER_OUT_OF_MEMORY") this.heapExhausted();
      else this.die(`worker error: ${err.message}`);
    });
    this.whenExited = new Promise((resolve) => this.worker.once("exit", () => resolve()));
    this.worker.on("exit", (code) => {
      this.exited = true;
      this.die(`worker exited with code ${code}`);
      this.events.exited?.(this);
    });
  }

  get busy(): boolean {
    return this.current !== undefined;
  }

  /** Starts a job; the executor must be idle. */
  start(job: Job): void {
    if (this.current) throw new Error(`executor ${this.id} is busy`);
    this.current = job;
    this.streamed = 0;
    this.held = undefined;
    const id = this.nextId++;
    (job as Job & { id?: number }).id = id;
    const now = performance.now();
    (job as Job & { startedAt?: number }).startedAt = now;
    this.deadline.start(job.timeoutMs, now);
    const req = job.build(this) as WorkerRequest;
    req.id = id;
    // The last job's consumer still holds views of the ring (a socket writing them): this job writes into a new one.
    if (this.ring.outstanding > 0) {
      this.ring = new OutputRingReader(createOutputRing());
      req.outputRing = this.ring.buffer;
    }
    this.send(req, id);
  }

  /** Puts the request in the job slot (or posts it, when it does not fit) and wakes the worker. */
  private send(req: WorkerRequest, id: number): void {
    const c = this.slot.control;
    const length = this.writer.write(req);
    if (length >= 0) {
      c[WHERE] = VIA_SLOT;
      c[LENGTH] = length;
    } else {
      // Posted first: the worker reads it (receiveMessageOnPort) only once it sees JOB.
      this.worker.postMessage(req);
      c[WHERE] = VIA_PORT;
    }
    Atomics.store(c, STATE, JOB);
    Atomics.notify(c, STATE);
    this.awaitResult(id);
  }

  private awaitResult(id: number): void {
    const w = waitAsync(this.slot.control, STATE, JOB);
    if (w.async) void w.value.then(() => this.collect(id));
    else this.collect(id);
  }

  /** The slot changed state (or this executor died): takes the result of request `id` if it is there. */
  private collect(id: number): void {
    const job = this.current;
    if (!this.alive || !job || (job as Job & { id?: number }).id !== id) return;
    const c = this.slot.control;
    const state = Atomics.load(c, STATE);
    if (state === JOB) return this.awaitResult(id); // not finished yet: a stray wake-up
    if (state !== DONE || c[WHERE] === VIA_PORT) return; // the result follows as a message
    this.onReply(this.reader.read(c[LENGTH]) as WorkerReply);
  }

  private deadlineReached(): void {
    const job = this.current;
    if (!job || !this.alive) return;
    // A guest spinning in a loop can only be stopped by ending its isolate.
    this.killedAtDeadline = true;
    this.current = undefined;
    job.resolve({ outcome: deadlineOutcome(job) });
    void this.worker.terminate();
    this.die("terminated at a deadline");
  }

  /**
   * The worker's V8 heap reached its limit and Node ended the worker. The
   * request it was running made the last allocation: it ends with
   * memory_limit, naming the heap. Warm reactors it hosted are lost as with
   * a deadline; queued calls on them are retried on fresh instances.
   */
  private heapExhausted(): void {
    if (!this.alive) return;
    this.outOfHeap = true;
    const job = this.current;
    if (job) {
      this.current = undefined;
      const started = (job as Job & { startedAt?: number }).startedAt ?? performance.now();
      job.resolve({
        outcome: endedOutcome(
          "memory_limit",
          `the executor's V8 heap limit of ${this.heapMb} MiB was reached (host objects: tables, exports, kernel state of the instances it ran or hosts); the executor was replaced`,
          performance.now() - started,
        ),
      });
    }
    this.die(`its V8 heap limit of ${this.heapMb} MiB was reached`);
  }

  private onMessage(msg: WorkerReply): void {
    if (msg.kind === "ready") {
      // Not at "online": the worker's modules load after that, and work sent before would wait for them.
      this.ready = true;
      if (this.alive && !this.current) this.events.idle(this);
      return;
    }
    this.onReply(msg);
  }

  private onReply(msg: WorkerReply): void {
    const job = this.current;
    if (!job || (job as Job & { id?: number }).id !== msg.id) {
      if (msg.kind === "output-ring") this.ring.discard(msg.span); // its request ended (a deadline): nobody reads it
      return;
    }
    switch (msg.kind) {
      case "output-ring":
        this.deliverFromRing(job, msg);
        this.delivered();
        return;
      case "output":
        job.onOutput?.(msg.stream, msg.chunk);
        this.delivered();
        return;
      case "trace":
        job.onTrace?.(msg.line);
        this.delivered();
        return;
      case "ready":
        return;
    }
    // The result waits for what was streamed before it, so that the caller sees every chunk first.
    if ((msg.streamed ?? 0) > this.streamed) {
      this.held = msg;
      return;
    }
    if (msg.output) for (const h of msg.output) job.onOutput?.(h.stream, h.chunk);
    switch (msg.kind) {
      case "error":
        this.finish();
        job.reject(Object.assign(new Error(msg.message), { name: msg.name }));
        break;
      case "done": {
        this.finish();
        const r: Reply = {};
        if (msg.outcome) {
          // Empty output is left out of posted replies (see executor-worker's reply).
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

  private delivered(): void {
    this.streamed++;
    const held = this.held;
    if (held && this.streamed >= (held.streamed ?? 0)) {
      this.held = undefined;
      this.onReply(held);
    }
  }

  /**
   * Hands a piece of output in the ring to the job's consumer, lent in place
   * (stdout, when the job says its consumer copies what it keeps) or copied,
   * and gives its ring bytes back when the consumer is done: at once, or
   * when the promise it returned settles (a socket wrote it, or its tenant
   * was paced), the guest meanwhile writing on into what is left of the ring.
   */
  private deliverFromRing(job: Job, piece: Extract<WorkerReply, { kind: "output-ring" }>): void {
    const ring = this.ring;
    const view = ring.view(piece);
    const done = job.onOutput?.(piece.stream, piece.stream === "stdout" && job.lendStdout ? view : view.slice());
    if (done instanceof Promise) void done.then(() => ring.release(piece.span), () => ring.release(piece.span));
    else ring.release(piece.span);
  }

  private finish(): void {
    this.deadline.clear();
    this.current = undefined;
    this.idleSince = Date.now();
  }

  private die(why: string): void {
    if (!this.alive) return;
    this.alive = false;
    this.deadline.stop();
    this.closeIo?.();
    // Releases this side's Atomics.waitAsync on the slot (collect then sees the executor dead).
    Atomics.notify(this.slot.control, STATE);
    const job = this.current;
    this.current = undefined;
    if (job) job.reject(new ExecutorLostError(`executor ${this.id} lost while running a request: ${why}`, true));
    for (const p of this.pinned.splice(0)) p.reject(new ExecutorLostError(`executor ${this.id} lost before the request started: ${why}`, false));
    this.events.dead(this, why);
  }

  /**
   * Ends the worker; pending pinned jobs are rejected. Resolves once its
   * thread has stopped, or after `waitMs` when it does not (a thread blocked
   * in a host system call cannot be stopped until the call returns).
   */
  async close(waitMs = Infinity): Promise<void> {
    if (this.alive) void this.worker.terminate();
    this.die("closed");
    if (this.exited) return;
    if (!Number.isFinite(waitMs)) return this.whenExited;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.whenExited, new Promise((r) => (timer = setTimeout(r, waitMs)))]);
    clearTimeout(timer);
  }
}

/** The outcome of a request whose executor was ended at its deadline (every tier). */
export function deadlineOutcome(job: Job): GuestOutcome {
  const message = job.limits ? describeEnd("deadline_exceeded", job.limits) : `deadline of ${job.timeoutMs} ms exceeded`;
  return endedOutcome("deadline_exceeded", message, job.timeoutMs);
}

/** The outcome of a request the executor ended from outside (deadline, heap). */
export function endedOutcome(reason: "deadline_exceeded" | "memory_limit", message: string, ms: number): GuestOutcome {
  return {
    reason,
    exitCode: EXIT_CODES[reason],
    message,
    stdout: new Uint8Array(0),
    stderr: new Uint8Array(0),
    memoryBytes: 0,
    calls: {},
    denied: {},
    durationUs: Math.round(ms * 1000),
  };
}
