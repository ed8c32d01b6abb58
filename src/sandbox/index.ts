/** The sandbox layer's public API (executors, limits, reactors, snapshots); the in-process runner is exported from ./instance.js. */
export { ExecutorPool, WasmImage, Reactor, ReactorStartError, type ExecutorPoolOptions, type RunOptions, type SandboxResult, type ModuleSource, type CallOptions, type CallResult } from "./executor-pool.js";
export { InstancePool, type InstancePoolOptions } from "./instance-pool.js";
export { ExecutorLostError } from "./executor.js";
export { ALLOC_EXPORT, FREE_EXPORT, type GuestOutcome, type PortableKernelOptions, type ReactorArg, type ReactorValue, type ResultKind } from "./guest.js";
export {
  DEFAULT_LIMITS, EXIT_CODES, LIMIT_REASONS, LimitOptionError, resolveLimits, describeEnd, MAX_TABLE_ELEMENTS,
  type SandboxLimits, type ResolvedLimits, type EndReason,
} from "./limits.js";
export { type Snapshot } from "./snapshot.js";
export { exportMutableGlobals } from "../wasm/export-globals.js";
export { defineImportedMemory } from "../wasm/memory-import.js";
export { applyLimitFlags, limitsFromFlags, runLimited, runFileLimited, LimitFlagError, type LimitFlags } from "./cli-limits.js";
export type { RunExtensions } from "./host-calls.js";
export { callModule, planCall, parseParams, CallUsageError, type ModuleCallOptions, type ModuleCallResult } from "./call.js";
