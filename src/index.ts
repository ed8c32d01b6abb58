/** Public library API: `import { ... } from "uniwasm"`. One export line per layer. */
export * from "./wasm/index.js";
export * from "./kernel/index.js";
export { runModule, runModuleSync, runFile, runBytes, runCommand, instantiate, type RunResult, type RunReason, type RunFileOptions, type TrapReport } from "./sandbox/instance.js";
export { inspectModuleFile, formatSurface } from "./cli/commands/inspect.js";
export * from "./image/index.js";
export * from "./sandbox/index.js";
