/**
 * Messages between an executor handle (main thread) and its worker thread.
 * They travel through the executor's job slot (job-slot.ts) when they fit,
 * else by postMessage, so everything here must survive structured cloning: a WebAssembly.Module is
 * cloneable (the compiled code is shared, not recompiled), a Snapshot's page
 * data is a SharedArrayBuffer (shared, not copied), bigints and Infinity clone.
 */
import type { GuestOutcome, PortableKernelOptions, PreparedModule, ReactorArg, ReactorValue, ResultKind } from "./guest.js";
import type { ResolvedLimits } from "./limits.js";
import type { Snapshot } from "./snapshot.js";

/** A module reference: the full prepared module the first time an executor sees it, then only its key. */
export type ModuleRef = { key: string; prepared?: PreparedModule };

/** `outputRing`: a new ring for this request's output on (the old one still has views lent out; see output-ring.ts). */
export type WorkerRequest = { outputRing?: SharedArrayBuffer } & (
  /** holdOutput: see RunOptions.holdOutputBytes. */
  | { op: "run"; id: number; module: ModuleRef; options: PortableKernelOptions; limits: ResolvedLimits; snapshot?: Snapshot; holdOutput?: number }
  | { op: "reactor"; id: number; module: ModuleRef; options: PortableKernelOptions; limits: ResolvedLimits; snapshot?: Snapshot; instanceId: number }
  | { op: "call"; id: number; instanceId: number; name: string; args: ReactorArg[]; result: ResultKind; limits: ResolvedLimits }
  | { op: "drop"; id: number; instanceId: number }
  | { op: "snapshot"; id: number; module: ModuleRef; options: PortableKernelOptions; limits: ResolvedLimits; snapshotId: string }
  | { op: "forget"; id: number; key: string }
  | { op: "stats"; id: number }
);

export interface HeldOutput {
  stream: "stdout" | "stderr";
  chunk: Uint8Array;
}

export interface ExecutorStats {
  modules: number;
  instances: number;
  rssBytes: number;
}

export type WorkerReply =
  /**
   * `streamed`: output and trace messages posted before this result (it may overtake them through the job slot).
   * `output`: streamed output held back by the worker (holdOutput), delivered before the result.
   */
  | { id: number; kind: "done"; outcome?: GuestOutcome; value?: ReactorValue; snapshot?: Snapshot; stats?: ExecutorStats; streamed?: number; output?: HeldOutput[] }
  | { id: number; kind: "error"; name: string; message: string; streamed?: number; output?: HeldOutput[] }
  | { id: number; kind: "output"; stream: "stdout" | "stderr"; chunk: Uint8Array }
  /** Output in the executor's output ring (a thread executor's): where it is, and the ring bytes it takes. */
  | { id: number; kind: "output-ring"; stream: "stdout" | "stderr"; at: number; length: number; span: number }
  | { id: number; kind: "trace"; line: string }
  /** Sent once, when the worker's modules are loaded and it listens for requests. */
  | { id: 0; kind: "ready" };

/** How a request ended: what the pool waits for (output and trace messages only stream meanwhile). */
export type FinalReply = Extract<WorkerReply, { kind: "done" | "error" }>;

export interface WorkerData {
  /** The executor's job slot (see job-slot.ts). */
  slot: SharedArrayBuffer;
  /** Its output ring (see output-ring.ts): thread executors only. */
  outputRing?: SharedArrayBuffer;
  /** Client end of the pool's socket I/O server (see kernel/io-bridge). */
  ioPort?: import("node:worker_threads").MessagePort;
  ioSignal?: SharedArrayBuffer;
  /** Modules (file URLs) whose exported extensions this executor offers beside the built-ins. */
  extensionModules?: string[];
  /** A sandboxed executor's channel to the node (see ExecutorChannel): requests come from it, not from the slot. */
  channel?: ExecutorChannel;
}

/**
 * The byte stream of a sandboxed executor process (tiers/wire.ts frames),
 * read and written by its worker thread directly: a request wakes the thread
 * that runs it, with no relay through the process's main thread.
 */
export interface ExecutorChannel {
  /** Descriptors it reads requests from and writes replies to (may be the same socket). */
  in: number;
  out: number;
  /** One Int32 (0 free, 1 held): the worker and the process's main thread take it around every frame they write. */
  writeLock: SharedArrayBuffer;
}
