/**
 * How a sandboxed instance ends, and how the CLI reports it. The limits
 * themselves (the one type, defaults, resolveLimits, what enforces each one)
 * are in src/limits.ts, shared by every layer.
 */
import type { LimitReason } from "../kernel/errors.js";
import { formatSize } from "../units.js";
import type { ResolvedLimits } from "../limits.js";
/** Why an instance was stopped by the sandbox rather than ending by itself (one list, the kernel's). */
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

export { DEFAULT_LIMITS, LimitOptionError, MAX_TABLE_ELEMENTS, MAX_WASM32_PAGES, WASM_PAGE, memoryPages, resolveLimits, type Limits, type ResolvedLimits } from "../limits.js";

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
      return `fuel of ${limits.fuel ?? 0} instructions exhausted${extra} (raise it with --fuel)`;
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
