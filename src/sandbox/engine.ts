/**
 * One engine, several placements. A guest always runs the same way
 * (guest.ts: prepare, instantiate with a fresh kernel, run guarded, classify
 * the end); *where* it runs is a placement:
 *
 * - `ExecutorPool` (executor-pool.ts): on worker threads, never the caller's.
 *   A spinning guest is stopped at its deadline by ending its thread; the V8
 *   stack and heap are the executor's; nothing a guest does reaches the
 *   caller's thread.
 * - `InlineEngine` (inline.ts): on the calling thread. The deadline is a
 *   watchdog that interrupts the guest's code; there is no separate heap or
 *   stack, and a host call that blocks blocks the caller. For embedding,
 *   tests and bounded work.
 *
 * Both take the same options and resolved limits, return the same outcome
 * (GuestOutcome) with the same classification, and call reactors with the
 * same ABI (reactor-abi.ts). This file is what they share.
 */
import type { GuestOutcome, PortableKernelOptions } from "./guest.js";
import type { RunExtensions } from "./host-calls.js";
import { describeEnd, describeTableLimit, EXIT_CODES, type EndReason, type ResolvedLimits, type Limits } from "./limits.js";
import type { ModuleSource, PreparedModule } from "./modules.js";
import type { ReactorArg, ReactorValue, ResultKind } from "./reactor-abi.js";
import type { Snapshot } from "./snapshot.js";
import { setupFailure } from "./guest.js";
import { WasmError, WasmLimitError } from "../wasm/errors.js";

export type Placement = "inline" | "executor";

export interface RunOptions extends Omit<PortableKernelOptions, "extensions"> {
  limits?: Limits;
  /** Host extensions granted to the run and their providers (see host-calls.ts; inline, providers must answer synchronously). */
  extensions?: RunExtensions;
  /**
   * Started by a guest that is parked waiting for it (a service call): in an
   * executor pool, when no executor is idle, one more is spawned (up to
   * `size * 2` extra) rather than waiting behind busy ones, which may be its
   * own callers. Inline, nothing waits: it runs at once.
   */
  nested?: boolean;
  /** Start from this snapshot instead of running from scratch (see ExecutorPool.snapshot). */
  snapshot?: Snapshot;
  /**
   * Receives output chunks of streams given as "stream". A promise it
   * returns holds the chunk's place in a thread executor's output ring until
   * it settles (sandbox/output-ring.ts): a ring's worth held parks the guest,
   * so its output goes no faster than its consumer (a socket, pacing).
   */
  onOutput?: (stream: "stdout" | "stderr", chunk: Uint8Array) => void | Promise<void>;
  /**
   * onOutput copies the stdout it keeps: a thread executor then lends it each
   * chunk in place, in the ring (no buffer per chunk), until onOutput returns
   * or its promise settles. Without it, chunks are the consumer's own copies.
   */
  lendStdout?: boolean;
  /**
   * Streamed output up to this many bytes is held in the executor and
   * delivered with the result (one hand-off instead of a message per chunk);
   * past it, what was held is sent and the rest streams. For callers that
   * hold small outputs anyway (the gateway does); default 0: stream at once.
   */
  holdOutputBytes?: number;
  /** Receives trace lines when `trace` is set. */
  onTrace?: (line: string) => void;
}

/** How a sandboxed run ended (see GuestOutcome); `exitCode` is what a CLI should exit with. */
export type SandboxResult = GuestOutcome;

export interface CallOptions {
  /** How to read the result: the raw wasm value, or bytes from an i64 (ptr << 32 | len). */
  result?: ResultKind;
  /** Limits of this call (fuel, timeoutMs); memory and stack are the reactor's. */
  limits?: Pick<Limits, "fuel" | "timeoutMs">;
}

export interface CallResult {
  value: ReactorValue;
  outcome: GuestOutcome;
}

/**
 * A warm reactor instance. Calls run one at a time, in the order made. When
 * a call traps or hits a limit (or, in an executor, the executor is lost) the
 * instance is gone: the next call transparently starts a fresh one (from the
 * snapshot when it has one) and `restarts` counts it.
 */
export interface Reactor {
  readonly limits: ResolvedLimits;
  /** The executor the live instance is on (undefined inline, or when none is live). */
  readonly executorId?: number | undefined;
  /** Whether the instance is live now (false after a trap, a limit or a lost executor). */
  readonly live: boolean;
  /** Fresh instances started after the first one. */
  readonly restarts: number;
  /** Calls an exported function (reactor-abi.ts). Never rejects for what the guest does: see `outcome`. */
  call(name: string, args?: readonly ReactorArg[], options?: CallOptions): Promise<CallResult>;
  /** Drops the instance; later calls fail. */
  close(): Promise<void>;
}

/** What every placement offers. */
export interface Engine {
  readonly placement: Placement;
  /** Limits every run gets unless it says otherwise. */
  readonly defaults: ResolvedLimits;
  /** Resolves per-run limits against the defaults (throws LimitOptionError). */
  limits(overrides?: Limits): ResolvedLimits;
  /** Checks, rewrites and compiles a module for these limits, once (cached). Rejects with a WasmError. */
  prepare(source: ModuleSource, limits: ResolvedLimits, forSnapshot?: boolean): Promise<PreparedModule>;
  /** Whether the module is prepared (or being prepared) for these limits already. */
  isPrepared(source: ModuleSource, limits: ResolvedLimits, forSnapshot?: boolean): boolean;
  /** Runs a command (`_start`) in a fresh instance. Never throws for what the module or guest does. */
  run(source: ModuleSource, options?: RunOptions): Promise<GuestOutcome>;
  /** Starts a warm reactor (`_initialize` once). Throws ReactorStartError when it cannot start. */
  reactor(source: ModuleSource, options?: RunOptions): Promise<Reactor>;
  close(): Promise<void>;
}

export class ReactorStartError extends Error {
  constructor(readonly outcome: GuestOutcome) {
    super(`the reactor could not start: ${outcome.message}`);
    this.name = "ReactorStartError";
  }
}

/** The outcome of a run whose module could not be prepared (invalid, or above a memory or table limit). */
export function prepareFailure(err: unknown, limits: ResolvedLimits, started: number): GuestOutcome {
  if (err instanceof WasmLimitError && (err.limit === "maxMemoryPages" || err.limit === "maxTableElements")) {
    const o = setupFailure(err, limits, started);
    const message = err.limit === "maxTableElements" ? describeTableLimit(limits, err.message) : describeEnd("memory_limit", limits, err.message);
    return { ...o, reason: "memory_limit", exitCode: EXIT_CODES.memory_limit, message };
  }
  if (err instanceof WasmError) {
    const o = setupFailure(err, limits, started);
    return { ...o, reason: "invalid_module", exitCode: EXIT_CODES.invalid_module, message: describeEnd("invalid_module", limits, err.message) };
  }
  return setupFailure(err, limits, started);
}

/** The outcome of a run whose executor was lost (or that failed in the host before it ran). */
export function lostOutcome(err: unknown, limits: ResolvedLimits, started: number, lost: boolean): GuestOutcome {
  const e = err instanceof Error ? err : new Error(String(err));
  // A sandboxed executor refuses a grant its wall was not built with (tiers/process-executor.ts): the guest cannot be linked as asked.
  const reason: EndReason = lost ? "executor_lost" : e.name === "SandboxRefusal" ? "link_error" : "host_fault";
  return {
    reason,
    exitCode: EXIT_CODES[reason],
    message: describeEnd(reason, limits, e.message),
    stdout: new Uint8Array(0),
    stderr: new Uint8Array(0),
    memoryBytes: 0,
    calls: {},
    denied: {},
    durationUs: Math.round((performance.now() - started) * 1000),
    ...(reason === "link_error" ? {} : { hostFault: e.message }),
  };
}
