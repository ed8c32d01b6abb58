/**
 * Hard limits of one sandboxed instance: what each one bounds, its default,
 * how it is enforced, and the reason an instance ends with when it hits it.
 *
 * | option          | default   | enforced by                                                    | reason              |
 * | --------------- | --------- | -------------------------------------------------------------- | ------------------- |
 * | maxMemoryBytes  | 256 MiB   | the module's memory maximum is rewritten (limitMemory); an      | `memory_limit`      |
 * |                 |           | imported memory is created with it. `memory.grow` past it       |                     |
 * |                 |           | returns -1 as the spec says; the instance ends with the reason  |                     |
 * |                 |           | only when it then fails (trap or non-zero exit) at the ceiling. |                     |
 * | maxTableElements| 1 000 000 | every table's maximum is rewritten so that all of them together | `memory_limit`      |
 * |                 |           | stay within it (limitTables); `table.grow` past a maximum       |                     |
 * |                 |           | returns -1, as for memory. Tables live outside linear memory    |                     |
 * |                 |           | (~28 host bytes per funcref element), so they have their own    |                     |
 * |                 |           | budget rather than a share of maxMemoryBytes.                   |                     |
 * | fuel            | none      | instrumentFuel: a counter charged per metered block; the same   | `fuel_exhausted`    |
 * |                 |           | input always stops at the same instruction.                     |                     |
 * | timeoutMs       | 30 000 ms | the executor (worker thread) running the guest is terminated   | `deadline_exceeded` |
 * |                 |           | at the deadline and replaced.                                   |                     |
 * | stackSizeMb     | 4 MiB     | the executor's V8 stack (`resourceLimits.stackSizeMb`).         | `stack_exhausted`   |
 * | stdoutBytes     | 64 MiB    | the kernel's stdout writer.                                     | `output_limit`      |
 * | stderrBytes     | 64 MiB    | the kernel's stderr writer.                                     | `output_limit`      |
 * | openFiles       | 1024      | the kernel's descriptor table (stdio and preopens included).    | `fd_limit`          |
 * | memDirBytes     | 64 MiB    | the kernel's MemoryBudget: all in-memory directories' contents, | (errno ENOSPC)      |
 * |                 |           | entries and links together; the call past it fails with ENOSPC. |                     |
 *
 * Every option can be lowered or raised per run; `undefined` means the default,
 * `Infinity` (or `null` for fuel) means unlimited where that makes sense.
 */

/** Why an instance was stopped by the sandbox rather than ending by itself (one list, the kernel's). */
import type { LimitReason } from "../kernel/errors.js";
import { formatSize } from "../units.js";
import { isTier, TIERS, type Tier } from "./tiers/tier.js";
export type { LimitReason };

export const LIMIT_REASONS: readonly LimitReason[] = [
  "memory_limit",
  "fuel_exhausted",
  "deadline_exceeded",
  "stack_exhausted",
  "output_limit",
  "fd_limit",
];

/**
 * How a sandboxed run ended.
 * - `exit`: `_start` returned or the guest called `proc_exit` (see `exitCode`);
 * - `trap`: a wasm trap that no limit explains (unreachable, out-of-bounds, ...);
 * - a LimitReason: a limit stopped it;
 * - `link_error`: the module imports something the kernel refuses;
 * - `invalid_module`: the bytes are not a module this host can compile;
 * - `host_fault`: a kernel bug or unexpected host error ended the instance (never an errno);
 * - `executor_lost`: the executor died for a reason that is not the guest's deadline
 *   (a host bug or the process running out of memory); the run is not retried.
 */
export type EndReason = "exit" | "trap" | LimitReason | "link_error" | "invalid_module" | "host_fault" | "executor_lost";

export interface SandboxLimits {
  /** Most bytes of linear memory, rounded down to 64 KiB pages. Default 256 MiB. */
  maxMemoryBytes?: number;
  /**
   * Most table elements, all of the instance's tables together (their
   * minima plus whatever `table.grow` adds). Each funcref element costs the
   * host ~28 bytes outside linear memory. Default 1,000,000 (~28 MB).
   */
  maxTableElements?: number;
  /**
   * Instruction budget (one unit per non-structural wasm instruction). Default
   * `null`: not metered, and the module is compiled without instrumentation.
   */
  fuel?: bigint | number | null;
  /** Wall-clock limit of one run or reactor call, in ms. Default 30 000. `Infinity`: none. */
  timeoutMs?: number;
  /** V8 stack of the executor running the guest, in MiB (deep recursion -> `stack_exhausted`). Default 4, as Node's workers. */
  stackSizeMb?: number;
  /** Most bytes a guest may write to stdout. Default 64 MiB. */
  stdoutBytes?: number;
  /** Most bytes a guest may write to stderr. Default 64 MiB. */
  stderrBytes?: number;
  /** Most descriptors open at once, stdio and preopens included. Default 1024. */
  openFiles?: number;
  /** Most bytes all in-memory directories of the instance hold on the host (ENOSPC past it). Default 64 MiB. */
  memDirBytes?: number;
  /**
   * The wall around the executor that runs the guest (tiers/tier.ts):
   * "isolate" (a worker thread of this process, the default), "process" (a
   * child process under bubblewrap with a seccomp allow-list) or "gvisor".
   * Not applied by a pool (its launcher is its tier) but by whoever picks the
   * pool: `uniwasm run`/`call` start one on it; a node places the app on its
   * tier's pool, raised to the node's and the tenant's minimum.
   */
  tier?: Tier;
}

/** SandboxLimits with every default applied. */
export interface ResolvedLimits {
  maxMemoryBytes: number;
  maxMemoryPages: number;
  maxTableElements: number;
  fuel: bigint | null;
  timeoutMs: number;
  stackSizeMb: number;
  stdoutBytes: number;
  stderrBytes: number;
  openFiles: number;
  memDirBytes: number;
}

export const WASM_PAGE = 65536;
/** 65536 pages: the whole 32-bit address space. */
export const MAX_WASM32_PAGES = 65536;
/**
 * Highest maxTableElements accepted. V8 allows 10,000,000 per table, but one
 * table.grow to that size allocates its element arrays in one piece, and a
 * worker may overshoot its V8 heap limit by only 16 MiB before V8 aborts the
 * whole process instead of ending the worker (measured: 1,000,000 elements,
 * two 8 MB arrays, end the executor cleanly at its limit; 4,000,000 abort).
 */
export const MAX_TABLE_ELEMENTS = 1_000_000;

export const DEFAULT_LIMITS: Readonly<ResolvedLimits> = Object.freeze({
  maxMemoryBytes: 256 * 1024 * 1024,
  maxMemoryPages: (256 * 1024 * 1024) / WASM_PAGE,
  maxTableElements: 1_000_000,
  fuel: null,
  timeoutMs: 30_000,
  stackSizeMb: 4,
  stdoutBytes: 64 * 1024 * 1024,
  stderrBytes: 64 * 1024 * 1024,
  openFiles: 1024,
  memDirBytes: 64 * 1024 * 1024,
});

export class LimitOptionError extends RangeError {
  constructor(
    readonly option: keyof SandboxLimits,
    message: string,
  ) {
    super(`limit ${option}: ${message}`);
    this.name = "LimitOptionError";
  }
}

function positive(option: keyof SandboxLimits, value: number | undefined, fallback: number, allowInfinity: boolean): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || Number.isNaN(value) || value <= 0 || (!allowInfinity && !Number.isFinite(value))) {
    throw new LimitOptionError(option, `must be a positive number${allowInfinity ? " or Infinity" : ""}, got ${String(value)}`);
  }
  return value;
}

/** Applies defaults and checks every option; throws LimitOptionError naming the bad one. */
export function resolveLimits(limits: SandboxLimits = {}, base: Readonly<ResolvedLimits> = DEFAULT_LIMITS): ResolvedLimits {
  if (limits.tier !== undefined && !isTier(limits.tier)) throw new LimitOptionError("tier", `must be one of ${TIERS.join(", ")}, got ${String(limits.tier)}`);
  const maxMemoryBytes = positive("maxMemoryBytes", limits.maxMemoryBytes, base.maxMemoryBytes, true);
  const maxMemoryPages = Math.min(MAX_WASM32_PAGES, Math.floor(Math.min(maxMemoryBytes, MAX_WASM32_PAGES * WASM_PAGE) / WASM_PAGE));
  let fuel: bigint | null = base.fuel;
  if (limits.fuel !== undefined) {
    if (limits.fuel === null) fuel = null;
    else {
      if (typeof limits.fuel === "number" && !Number.isSafeInteger(limits.fuel)) {
        throw new LimitOptionError("fuel", `must be a non-negative integer, got ${limits.fuel}`);
      }
      const f = BigInt(limits.fuel);
      if (f < 0n || f >= 1n << 63n) throw new LimitOptionError("fuel", `must be in [0, 2^63), got ${f}`);
      fuel = f;
    }
  }
  const stackSizeMb = positive("stackSizeMb", limits.stackSizeMb, base.stackSizeMb, false);
  let maxTableElements = base.maxTableElements;
  if (limits.maxTableElements !== undefined) {
    const t = limits.maxTableElements;
    if (typeof t !== "number" || !Number.isSafeInteger(t) || t < 0 || t > MAX_TABLE_ELEMENTS) {
      throw new LimitOptionError("maxTableElements", `must be an integer from 0 to ${MAX_TABLE_ELEMENTS}, got ${String(t)}`);
    }
    maxTableElements = t;
  }
  return {
    maxMemoryBytes,
    maxMemoryPages,
    maxTableElements,
    fuel,
    timeoutMs: positive("timeoutMs", limits.timeoutMs, base.timeoutMs, true),
    stackSizeMb,
    stdoutBytes: positive("stdoutBytes", limits.stdoutBytes, base.stdoutBytes, true),
    stderrBytes: positive("stderrBytes", limits.stderrBytes, base.stderrBytes, true),
    openFiles: Math.floor(positive("openFiles", limits.openFiles, base.openFiles, true)),
    memDirBytes: Math.floor(positive("memDirBytes", limits.memDirBytes, base.memDirBytes, true)),
  };
}

/**
 * Process exit codes of `uniwasm run` when the sandbox, not the guest, ends a
 * run. Limits use 128+N where N is the POSIX signal a Unix kernel sends for
 * the same limit, so shells and supervisors read them the familiar way; a
 * plain trap is 134 (SIGABRT) as with wasmtime. fd_limit has no signal and
 * takes 150, outside the signal range of common shells' use.
 */
export const EXIT_CODES: Readonly<Record<Exclude<EndReason, "exit">, number>> = Object.freeze({
  trap: 134, // 128 + SIGABRT, as wasmtime
  memory_limit: 137, // 128 + SIGKILL, what the OOM killer sends
  fuel_exhausted: 152, // 128 + SIGXCPU, CPU-time limit
  deadline_exceeded: 124, // what timeout(1) returns
  stack_exhausted: 139, // 128 + SIGSEGV, a native stack overflow
  output_limit: 153, // 128 + SIGXFSZ, file-size limit
  fd_limit: 150,
  link_error: 126, // "cannot execute", as a shell
  invalid_module: 126,
  host_fault: 70, // EX_SOFTWARE
  executor_lost: 70,
});

/** One-line, human explanation of why a run ended, naming the limit and how to raise it. */
export function describeEnd(reason: EndReason, limits: ResolvedLimits, detail?: string): string {
  const extra = detail ? `: ${detail}` : "";
  switch (reason) {
    case "exit":
      return `exited${detail ? ` ${detail}` : ""}`;
    case "trap":
      // The CLI prints "trap: <message>", as for in-process runs.
      return detail ?? "wasm trap";
    case "memory_limit":
      return `memory limit of ${formatBytes(limits.maxMemoryBytes)} reached${extra} (raise it with --max-memory)`;
    case "fuel_exhausted":
      return `fuel of ${limits.fuel ?? 0n} instructions exhausted${extra} (raise it with --fuel)`;
    case "deadline_exceeded":
      return `deadline of ${limits.timeoutMs} ms exceeded${extra} (raise it with --timeout)`;
    case "stack_exhausted":
      return `stack of ${limits.stackSizeMb} MiB exhausted${extra} (raise it with --max-stack)`;
    case "output_limit":
      return `output limit reached${extra} (stdout ${formatBytes(limits.stdoutBytes)}, stderr ${formatBytes(limits.stderrBytes)})`;
    case "fd_limit":
      return `open-file limit of ${limits.openFiles} descriptors reached${extra}`;
    case "link_error":
      return `link error${extra}`;
    case "invalid_module":
      return `invalid module${extra}`;
    case "host_fault":
      return `host fault${extra} (a uniwasm bug: please report it)`;
    case "executor_lost":
      return `executor lost${extra}`;
  }
}

/** describeEnd for a `memory_limit` reached through the table budget. */
export function describeTableLimit(limits: ResolvedLimits, detail?: string): string {
  return `table limit of ${limits.maxTableElements} elements reached${detail ? `: ${detail}` : ""} (raise it with --max-table-elements)`;
}

/** 16777216 -> "16 MiB" (units.ts's formatSize). */
export const formatBytes = formatSize;

/** The one size and duration grammar (src/units.ts). */
export { parseSize, parseDuration } from "../units.js";

/**
 * Resource limits (setrlimit) of one sandboxed executor process (process and
 * gvisor tiers). Not per run like the limits above: an executor process hosts
 * many runs and warm instances, and these bound the whole process, so that a
 * V8 or kernel-layer bug that escapes the per-run limits still stops here.
 *
 * | option            | rlimit        | default | why this value                                              |
 * | ----------------- | ------------- | ------- | ----------------------------------------------------------- |
 * | addressSpaceBytes | RLIMIT_AS     | 1 TiB   | V8 reserves ~10 GiB of address space per wasm memory, so    |
 * |                   |               |         | this caps live memories (~100), not bytes                    |
 * | dataBytes         | RLIMIT_DATA   | 4 GiB   | committed private memory (V8 heaps, wasm memories in use):  |
 * |                   |               |         | the byte cap; past it V8 aborts the process (executor_lost) |
 * | cpuSeconds        | RLIMIT_CPU    | 3600    | soft limit: the executor finishes its request and is        |
 * |                   |               |         | replaced (a fresh process); hard limit 60 s later: killed   |
 * | openFiles         | RLIMIT_NOFILE | 4096    | host descriptors (Node's own ~30, plus guests' host files)  |
 * | processes         | RLIMIT_NPROC  | 4096    | tasks of the user (threads count); new processes are also   |
 * |                   |               |         | refused by the seccomp allow-list (clone without a thread)  |
 */
export interface ExecutorProcessLimits {
  addressSpaceBytes: number;
  dataBytes: number;
  cpuSeconds: number;
  openFiles: number;
  processes: number;
}

export const DEFAULT_PROCESS_LIMITS: Readonly<ExecutorProcessLimits> = Object.freeze({
  addressSpaceBytes: 2 ** 40,
  dataBytes: 4 * 1024 ** 3,
  cpuSeconds: 3600,
  openFiles: 4096,
  processes: 4096,
});
