import type { EndReason as RunReason } from "../sandbox/limits.js";
import type { TrapReport } from "../sandbox/guest.js";
import type { Capability } from "../kernel/syscalls.js";
import type { RunExtensions } from "../sandbox/host-calls.js";
import type { ExtensionOptions } from "../kernel/options.js";
import type { Tier } from "../sandbox/tiers/tier.js";
import type { Placement } from "../sandbox/engine.js";
import type { Limits } from "../limits.js";

/**
 * The narrow interface the manager needs from whatever runs guests. It is
 * implemented by InProcessRunner (guests on the calling thread, for tests and
 * embedding) and by the sandbox's executor pool (worker threads) — see
 * createRunner in ./runners.ts. Nothing above the manager touches a runner.
 */
export interface InstanceRunner {
  /** Human-readable name for logs and /v1/node ("in-process", "executor-pool(4)"). */
  readonly name: string;
  /** How many guests can truly run at once; the fair scheduler's slot count. */
  readonly executors: number;
  /**
   * Whether requests may ask for `placement: "inline"` (the serving thread)
   * beside executors. Absent: every request runs the runner's one way and
   * `placement` is ignored.
   */
  readonly inline?: boolean;
  /** Where a runner without that choice runs every guest (shown by ps); absent: on executors. */
  readonly placement?: Placement;
  /**
   * Why the runner cannot place guests on `tier` (Limits.tier), or
   * undefined when it can. Absent: the runner has the isolate tier only.
   */
  unavailable?(tier: Tier): string | undefined;
  /**
   * Checks, rewrites and compiles a module for `limits` (default: the
   * runner's) and caches it (for `tenant`'s executors, on a runner that keeps
   * tenants apart: see GuestGrants.tenant), so later starts are warm; never on the serving
   * thread. Reports what the preparation cost, so the caller can charge it.
   * Throws RunnerError("invalid_module" or "memory_limit").
   */
  prepare(module: ModuleRef, limits?: Limits, placement?: Placement, tenant?: string): Promise<PrepareReport>;
  /** Runs a command module (`_start`) once: a fresh instance per call (the WAGI path). */
  runCommand(req: CommandRequest): Promise<RunOutcome>;
  /** Starts a reactor instance (`_initialize` once) kept warm for many calls. */
  startReactor(req: ReactorStart): Promise<ReactorHandle>;
  close(): Promise<void>;
}

export interface ModuleRef {
  /** sha256:<hex> of `bytes`: the compiled-module cache key. */
  digest: string;
  bytes: Uint8Array;
}

/** What preparing a module cost (zero when it was prepared already). */
export interface PrepareReport {
  /** Whether this call prepared it (false: it came from the cache). */
  prepared: boolean;
  /** Wall time of the preparation, ms. */
  wallMs: number;
  /** CPU time of the thread that prepared it, ms (V8's background compile threads not included), when the platform tells. */
  cpuMs?: number;
  /** The module's function imports ("module.name"), when the runner knows them (placement needs them). */
  imports?: readonly string[];
}

/** A sink's answer to a chunk: nothing, or a promise that settles when it is done with a lent chunk (see OutputSinks.lendStdout). */
export type SinkResult = void | Promise<void>;

export interface OutputSinks {
  /** Receives stdout as the guest writes it (the response, for both HTTP ABIs). */
  onStdout(chunk: Uint8Array): SinkResult;
  onStderr(chunk: Uint8Array): SinkResult;
  /**
   * onStdout copies what it keeps beyond the call, or returns a promise that
   * settles once it is done with the chunk (a socket wrote it): the runner
   * may then lend it chunks in place (RunOptions.lendStdout).
   */
  readonly lendStdout?: boolean;
}

/**
 * An in-memory directory preopened for the guest (an image's bundled files).
 * Read-only dirs are shared by every instance; a writable one is copied per
 * instance by the runner, so writes never reach the image or another instance.
 */
export interface MemoryPreopen {
  /** Where the guest sees it, e.g. "/static". */
  guest: string;
  /** Path relative to the dir -> contents. */
  memory: Readonly<Record<string, Uint8Array>>;
  readonly: boolean;
}

/** What an instance is granted beyond args and env: an image's dirs and capabilities. */
export interface GuestGrants {
  preopens?: readonly MemoryPreopen[];
  /** Kernel capabilities granted; absent = the kernel's defaults (raw module uploads). */
  capabilities?: readonly Capability[];
  /** Host extensions granted and their providers (the manager makes them per instance, see ExtensionFactory). */
  extensions?: RunExtensions;
  /** Where to run it, when the runner offers a choice (see InstanceRunner.inline). */
  placement?: Placement;
  /**
   * The tenant it runs for (its id). A runner that keeps tenants apart — the
   * sandboxed tiers of tier-runner.ts — runs it only on executor processes
   * that serve this tenant alone. The manager always says.
   */
  tenant?: string;
  /**
   * A service call's callee (a request made by a running guest, which is
   * parked until it answers): the runner must not queue it behind busy
   * executors, which may be its own callers.
   */
  nested?: boolean;
}

export interface CommandRequest extends OutputSinks, GuestGrants {
  module: ModuleRef;
  args: string[];
  env: Record<string, string>;
  stdin: Uint8Array;
  limits: Limits;
  /**
   * Output up to this many bytes may reach the sinks only when the run ends
   * (in one piece with the result, no hand-off per chunk); past it, it streams.
   * Default 0: every chunk as it is written (services, logs).
   */
  holdOutputBytes?: number;
  /** See OutputSinks.lendStdout. */
  lendStdout?: boolean;
}

export interface ReactorStart extends GuestGrants {
  module: ModuleRef;
  args: string[];
  env: Record<string, string>;
  limits: Limits;
}

export interface ReactorHandle {
  /**
   * Calls the reactor HTTP handler (docs/abi-reactor.md) with one encoded
   * request. After an outcome other than `exit` with code 0 the instance is
   * considered broken and must be closed.
   */
  handle(request: Uint8Array, sinks: OutputSinks, limits: Limits): Promise<RunOutcome>;
  /** Current linear memory size in bytes. */
  memoryBytes(): number;
  /** Which executor hosts it now (undefined: none, or a runner without executors); service calls avoid their caller's. */
  executor?(): number | undefined;
  close(): Promise<void>;
}

export interface RunOutcome {
  /** `exit` for a normal end (see exitCode); otherwise why the instance ended. */
  reason: RunReason;
  exitCode: number | null;
  /** One line for humans (trap message, limit hit). */
  message?: string;
  /** Wall time of the run on its executor. */
  durationMs: number;
  /** Instructions charged, when metered. */
  fuelUsed?: number;
  /** Linear memory at the end of the run. */
  memoryBytes?: number;
  /** Host calls refused for lack of a capability, by call name. */
  deniedCalls?: Record<string, number>;
  /** When the guest trapped: the trap and its wasm backtrace (function names from the name section). */
  trap?: TrapReport;
}

export class RunnerError extends Error {
  constructor(readonly reason: RunReason, message: string) {
    super(message);
    this.name = "RunnerError";
  }
}

/**
 * The kernel's view of `grants`: the preopens as in-memory dirs, and the
 * capabilities only when given (an absent list keeps the kernel's defaults).
 * Each instance's kernel builds its own MemoryFs from the seed, copying every
 * file, so a writable dir is private to the instance without copying here.
 * Shared by both runners.
 */
export function kernelGrants(grants: GuestGrants): { preopens?: { guest: string; memory: Readonly<Record<string, Uint8Array>>; readonly: boolean }[]; capabilities?: Capability[]; extensions?: ExtensionOptions } {
  const out: ReturnType<typeof kernelGrants> = {};
  if (grants.preopens && grants.preopens.length > 0) out.preopens = grants.preopens.map((p) => ({ guest: p.guest, memory: p.memory, readonly: p.readonly }));
  if (grants.capabilities) out.capabilities = [...grants.capabilities];
  if (grants.extensions) out.extensions = { grants: grants.extensions.grants ?? [], providers: grants.extensions.providers ?? {} };
  return out;
}
