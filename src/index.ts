/** Public library API: `import { ... } from "uniwasm"`. One export line per layer. */
export { parseSize, parseDuration, formatSize, formatDuration, UnitError } from "./units.js";
export { resolveLimits, parseLimits, DEFAULT_LIMITS, LIMIT_FIELDS, LimitOptionError, type Limits, type ResolvedLimits } from "./limits.js";
export * from "./wasm/index.js";
export * from "./kernel/index.js";
export { runModule, runModuleSync, runFile, runBytes, InlineEngine, InlineReactor, type RunResult, type RunReason, type RunFileOptions, type RunModuleOptions, type InlineEngineOptions, type InlineRunOptions } from "./sandbox/inline.js";
export * from "./image/index.js";
export * from "./sandbox/index.js";
export { NodeStore, openDatabase, migrate, MIGRATIONS, type NodeStoreOptions, type TenantQuotas, type TenantRecord, type TokenRecord, type AppRecord, type AppConfig, type ImageRecord, type ImageConfig, type RouteSpec, type ScalePolicy } from "./store/index.js";
export { ResourceManager, FairScheduler, InProcessRunner, ExecutorPoolRunner, Refusal, REACTOR_ALLOC_EXPORT, REACTOR_FREE_EXPORT, REACTOR_HANDLE_EXPORT, encodeReactorRequest, DEFAULT_TENANT_QUOTAS, type InstanceRunner, type RunOutcome, type Invocation, type ResourceManagerOptions } from "./manager/index.js";
export { startNode, NodeClient, ClientError, ERROR_CATALOGUE, ApiError, DevServer, type NodeOptions, type RunningNode, type ErrorCode, type DevEvent, type DevOptions } from "./server/index.js";
