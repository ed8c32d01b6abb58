/** The sandbox layer's public API: the engine and its placements, limits, reactors, snapshots (runModule & co. are exported from src/index.ts). */
export { ReactorStartError, type Engine, type Placement, type Reactor, type RunOptions, type SandboxResult, type CallOptions, type CallResult } from "./engine.js";
export { ExecutorPool, DEFAULT_EXECUTOR_HEAP_MB, type ExecutorPoolOptions } from "./executor-pool.js";
export { ExecutorReactor } from "./executor-reactor.js";
export { WasmImage, type ModuleSource, type PreparedModule, type PrepareCost } from "./modules.js";
export type { PreparePlacement } from "./preparer.js";
export { InstancePool, type InstancePoolOptions } from "./instance-pool.js";
export { ExecutorLostError } from "./executor.js";
export { type GuestOutcome, type TrapReport, type PortableKernelOptions } from "./guest.js";
export { ALLOC_EXPORT, FREE_EXPORT, HTTP_HANDLE_EXPORT, ReactorAbiError, type ReactorArg, type ReactorValue, type ResultKind } from "./reactor-abi.js";
export {
  DEFAULT_LIMITS, EXIT_CODES, LIMIT_REASONS, LimitOptionError, resolveLimits, describeEnd, MAX_TABLE_ELEMENTS,
  type Limits, type ResolvedLimits, type EndReason,
} from "./limits.js";
export { type Snapshot } from "./snapshot.js";
export { exportMutableGlobals } from "../wasm/export-globals.js";
export { defineImportedMemory } from "../wasm/memory-import.js";
export { applyLimitFlags, limitsFromFlags, runLimited, runFileLimited, LimitFlagError, type LimitFlags } from "./cli-limits.js";
export type { RunExtensions } from "./host-calls.js";
export { callModule, planCall, parseParams, CallUsageError, type ModuleCallOptions, type ModuleCallResult } from "./call.js";
