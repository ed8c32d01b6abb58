/**
 * The sandbox's flags for `uniwasm run`, and the run that honours them.
 *
 *   --max-memory <SIZE>          most linear memory (64K .. 4G)        wasmtime: -W max-memory-size=BYTES
 *   --max-table-elements <N>     most table elements, all tables        wasmtime: -W max-table-elements=N
 *   --fuel <N>                   instruction budget (0 .. 2^53-1)       wasmtime: -W fuel=N
 *   --timeout <DURATION>         wall-clock deadline (1ms .. 24h)       wasmtime: -W timeout=DURATION
 *   --max-stack <MIB>            V8 stack of the executor (1 .. 256)    (wasmtime: -W max-wasm-stack=BYTES)
 *   --max-stdout <SIZE>          most bytes written to stdout           (a manifest's [limits] stdout)
 *   --max-stderr <SIZE>          most bytes written to stderr           (a manifest's [limits] stderr)
 *   --max-open-files <N>         most descriptors open at once          (a manifest's [limits] open_files)
 *   --tier <TIER>                isolate | process | gvisor: the wall around the executor (tiers/tier.ts)
 *   -W <OPT=VALUE[,OPT=VALUE]>   wasmtime's spelling of the above (repeatable, comma-separated)
 *
 * Without flags a run has the documented defaults (DEFAULT_LIMITS); every run
 * goes to an executor (a worker thread, or a sandboxed process on the process
 * and gvisor tiers): a deadline can only stop a spinning guest by ending its
 * executor, and the stack size is an executor's.
 */
import { Command, Option } from "commander";
import { constants, fstatSync, openSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import type { PreopenSpec } from "../kernel/options.js";
import type { RunFileOptions, RunResult } from "./inline.js";
import { ExecutorPool, type ExecutorPoolOptions } from "./executor-pool.js";
import { DEFAULT_LIMITS, LimitOptionError, MAX_TABLE_ELEMENTS, resolveLimits, type Limits } from "./limits.js";
import { parseLimits, WRITTEN_RANGES as R } from "../limits.js";
import { SandboxLauncher } from "./tiers/sandbox-launcher.js";
import { parseTier, tierUnavailable, type Tier } from "./tiers/tier.js";
import { formatDuration, formatSize, parseDuration, parseSize } from "../units.js";

export interface LimitFlags {
  maxMemory?: string;
  maxTableElements?: string;
  fuel?: string;
  timeout?: string;
  maxStack?: string;
  maxStdout?: string;
  maxStderr?: string;
  maxOpenFiles?: string;
  tier?: string;
  W?: string[];
}


const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** Adds the limit flags to a command (`uniwasm run`); returns it for chaining. */
export function applyLimitFlags(cmd: Command): Command {
  const d = DEFAULT_LIMITS;
  return cmd
    .addOption(new Option("--max-memory <SIZE>", `most linear memory the guest may have (e.g. 64K, 16M, 1G; binary units: 16MB = 16MiB, as in a manifest; docs/limits.md); default ${short(formatSize(d.maxMemoryBytes))}`))
    .addOption(new Option("--max-table-elements <N>", `most table elements, all of the guest's tables together (0 to ${MAX_TABLE_ELEMENTS}); default ${d.maxTableElements}`))
    .addOption(new Option("--fuel <N>", "instruction budget (0 to 2^53-1); the guest ends with fuel_exhausted when it is spent; default none"))
    .addOption(new Option("--timeout <DURATION>", `wall-clock deadline (e.g. 500ms, 2s, 1m, 1h; at most 24h); the guest ends with deadline_exceeded; default ${formatDuration(d.timeoutMs)}`))
    .addOption(new Option("--max-stack <MIB>", `V8 stack of the executor running the guest, in MiB (1 to 256); deep recursion ends with stack_exhausted; default ${d.stackSizeMb}`))
    .addOption(new Option("--max-stdout <SIZE>", `most bytes the guest may write to stdout (e.g. 1M); past it the guest ends with output_limit; default ${short(formatSize(d.stdoutBytes))}`))
    .addOption(new Option("--max-stderr <SIZE>", `most bytes the guest may write to stderr; default ${short(formatSize(d.stderrBytes))}`))
    .addOption(new Option("--max-open-files <N>", `most descriptors open at once, preopens and stdio included; past it opens fail and the run ends with fd_limit; default ${d.openFiles}`))
    .addOption(new Option("--tier <TIER>", "the wall around the guest's executor: isolate (a worker thread), process (a child process under bubblewrap with a seccomp allow-list), gvisor (runsc); default isolate, or the image's"))
    .addOption(
      new Option("-W <OPT=VALUE[,...]>", "wasmtime-style limits, comma-separated: max-memory-size=BYTES, max-table-elements=N, fuel=N, timeout=DURATION, max-wasm-stack=BYTES (repeatable)").argParser(collect),
    );
}

/** "256 MiB" -> "256M": how the flag is written. */
function short(size: string): string {
  return size.replace(/ (.)iB$/, "$1");
}

/** A flag the user got wrong: one line, naming the flag and what it accepts. The CLI exits 2. */
export class LimitFlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LimitFlagError";
  }
}

function integer(text: string, what: string): bigint {
  const t = text.trim().replace(/_/g, "");
  if (!/^\d+$/.test(t)) throw new Error(`must be ${what}`);
  return BigInt(t);
}

function inRange<T extends number | bigint>(v: T, min: T, max: T, what: string): T {
  if (v < min || v > max) throw new Error(`must be ${what}`);
  return v;
}

/** One limit typed on the command line, in the grammar and range a manifest has for it (src/limits.ts). */
function oneLimit(name: "stdoutBytes" | "stderrBytes" | "openFiles", value: string): number {
  try {
    const parsed = parseLimits({ [name]: value })[name] as number;
    const { min, max } = R[name];
    if (!(parsed >= min && parsed <= max)) throw new Error(`must be ${name === "openFiles" ? `an integer from ${min} to ${max}` : `a size from ${min} to ${formatSize(max)}`}`);
    resolveLimits({ [name]: parsed });
    return parsed;
  } catch (err) {
    if (err instanceof LimitOptionError) throw new Error(err.detail.replace(/^is /, ""));
    throw err;
  }
}

/**
 * The limits the flags ask for ({} when none was given). Throws
 * LimitFlagError naming the bad flag and the allowed range.
 */
export function limitsFromFlags(flags: LimitFlags): Limits {
  const limits: Limits = {};
  const set = (key: string, value: string, flag: string): void => {
    try {
      switch (key) {
        case "max-memory":
        case "max-memory-size": {
          const what = "a size from 64K to 4G (e.g. 16M)";
          limits.maxMemoryBytes = inRange(parseSize(value), R.maxMemoryBytes.min, R.maxMemoryBytes.max, what);
          break;
        }
        case "max-table-elements": {
          const what = `an integer from ${R.maxTableElements.min} to ${R.maxTableElements.max}`;
          limits.maxTableElements = Number(inRange(integer(value, what), BigInt(R.maxTableElements.min), BigInt(R.maxTableElements.max), what));
          break;
        }
        case "fuel": {
          const what = `an integer from ${R.fuel.min} to ${R.fuel.max} (2^53-1)`;
          limits.fuel = inRange(integer(value, what), BigInt(R.fuel.min), BigInt(R.fuel.max), what);
          break;
        }
        case "timeout": {
          const what = "a duration from 1ms to 24h (e.g. 500ms, 2s, 1m, 1h)";
          limits.timeoutMs = inRange(parseDuration(value), R.timeoutMs.min, R.timeoutMs.max, what);
          break;
        }
        case "max-stack": {
          const what = "an integer number of MiB from 1 to 256";
          limits.stackSizeMb = Number(inRange(integer(value, what), BigInt(R.stackSizeMb.min), BigInt(R.stackSizeMb.max), what));
          break;
        }
        case "max-wasm-stack": {
          const what = "a size from 1M to 256M (rounded up to whole MiB)";
          limits.stackSizeMb = inRange(Math.ceil(parseSize(value) / (1024 * 1024)), R.stackSizeMb.min, R.stackSizeMb.max, what);
          break;
        }
        case "max-stdout":
          limits.stdoutBytes = oneLimit("stdoutBytes", value);
          break;
        case "max-stderr":
          limits.stderrBytes = oneLimit("stderrBytes", value);
          break;
        case "max-open-files":
          limits.openFiles = oneLimit("openFiles", value);
          break;
        default:
          throw new Error(`unknown option "${key}" (known: max-memory-size, max-table-elements, fuel, timeout, max-wasm-stack)`);
      }
    } catch (err) {
      throw new LimitFlagError(`${flag}${flag.startsWith("-W") ? "=" : " "}${value}: ${(err as Error).message}`);
    }
  };
  if (flags.maxMemory !== undefined) set("max-memory", flags.maxMemory, "--max-memory");
  if (flags.maxTableElements !== undefined) set("max-table-elements", flags.maxTableElements, "--max-table-elements");
  if (flags.fuel !== undefined) set("fuel", flags.fuel, "--fuel");
  if (flags.timeout !== undefined) set("timeout", flags.timeout, "--timeout");
  if (flags.maxStack !== undefined) set("max-stack", flags.maxStack, "--max-stack");
  if (flags.maxStdout !== undefined) set("max-stdout", flags.maxStdout, "--max-stdout");
  if (flags.maxStderr !== undefined) set("max-stderr", flags.maxStderr, "--max-stderr");
  if (flags.maxOpenFiles !== undefined) set("max-open-files", flags.maxOpenFiles, "--max-open-files");
  if (flags.tier !== undefined) {
    try {
      limits.tier = parseTier(flags.tier);
    } catch (err) {
      throw new LimitFlagError(`--tier ${flags.tier}: ${(err as Error).message}`);
    }
  }
  for (const list of flags.W ?? []) {
    // wasmtime's form: -W a=1,b=2 (and -W a=1 -W b=2).
    for (const w of list.split(",")) {
      const i = w.indexOf("=");
      if (i < 0) throw new LimitFlagError(`-W ${w}: expected OPT=VALUE`);
      set(w.slice(0, i).trim(), w.slice(i + 1), `-W ${w.slice(0, i).trim()}`);
    }
  }
  try {
    resolveLimits(limits);
  } catch (err) {
    if (err instanceof LimitOptionError) throw new LimitFlagError(err.message);
    throw err;
  }
  return limits;
}

/**
 * How long a finished CLI run waits for its executor's thread to stop. A
 * thread blocked in a host system call (a read from a pipe that never
 * delivers, an open of a FIFO) cannot be stopped before the call returns, and
 * Node waits for every thread at exit: then the process ends itself (see
 * runLimited's `onStuck`).
 */
const STOP_WAIT_MS = 1000;

export interface RunLimitedOptions {
  /** Called with the result as soon as the run ends, before the executor is closed (the CLI reports it here). */
  onResult?: (result: RunResult) => void;
  /**
   * Called when the executor's thread did not stop within a second of the
   * run's end (after a deadline, say): the process cannot exit normally. The
   * CLI ends itself; a library caller decides.
   */
  onStuck?: () => void;
}

/**
 * Runs a command module in an executor under `limits` (defaults for what is
 * not given), with the same options as runFile/runBytes (directories, env,
 * stdio, listening sockets, trace). Invalid modules and link errors come back
 * as results with reason `invalid_module` / `link_error`, like every other end.
 */
export async function runLimited(bytes: Uint8Array, options: RunFileOptions, limits: Limits = {}, how: RunLimitedOptions = {}): Promise<RunResult> {
  const { tcpListen, onListening, trace, stdout, stderr, stdin, limits: kernelLimits, ...rest } = options;
  const tier = limits.tier ?? "isolate";
  if (tier !== "isolate" && (tcpListen?.length ?? 0) > 0) {
    throw new TierUnavailableError(`listening sockets (${tcpListen!.join(", ")}) are not available on the ${tier} tier yet (its sandbox has no network): run this guest on the isolate tier`);
  }
  // The module is prepared here while the executor starts: this process serves nothing else.
  const { pool, close } = cliPool({ size: 1, prepare: "inline", limits: { ...kernelLimits, ...limits } }, options.preopens, stdin === "inherit");
  try {
    const listeners = [];
    for (const address of tcpListen ?? []) {
      const l = await pool.io.listen(address);
      listeners.push({ id: l.handle, address: l.address });
      onListening?.(l.address);
    }
    const stream = (spec: RunFileOptions["stdout"]): "stream" | Exclude<RunFileOptions["stdout"], (c: Uint8Array) => void> =>
      typeof spec === "function" ? "stream" : spec;
    const result = await pool.run(bytes, {
      ...rest,
      ...(stdin !== undefined ? { stdin: tier === "isolate" ? interruptibleStdin(stdin) : sandboxStdin(stdin, tier) } : {}),
      ...(listeners.length > 0 ? { listeners } : {}),
      stdout: stream(stdout),
      stderr: stream(stderr),
      trace: trace !== undefined,
      ...(trace ? { onTrace: trace } : {}),
      onOutput: (s, chunk) => {
        const spec = s === "stdout" ? stdout : stderr;
        if (typeof spec === "function") spec(chunk);
      },
    });
    how.onResult?.(result);
    return result;
  } finally {
    const stuck = await close(STOP_WAIT_MS);
    if (stuck) how.onStuck?.();
  }
}

/** The tier asked for cannot run here (its tool is missing), or cannot give what the run asks. The CLI says so and exits 126. */
export class TierUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TierUnavailableError";
  }
}

/**
 * A pool for one CLI command on `options.limits.tier`. On a sandboxed tier
 * the sandbox mounts the host directories the run is granted (read-only ones
 * read-only) and nothing else, and gets this process's stdin only when the
 * guest reads it. `close` resolves true when an executor did not stop.
 */
export function cliPool(options: ExecutorPoolOptions, preopens: readonly PreopenSpec[] | undefined, inheritStdin: boolean): { pool: ExecutorPool; tier: Tier; close(waitMs?: number): Promise<boolean> } {
  const tier = options.limits?.tier ?? "isolate";
  let launcher: SandboxLauncher | undefined;
  if (tier !== "isolate") {
    const why = tierUnavailable(tier);
    if (why) throw new TierUnavailableError(`the ${tier} tier is not available here: ${why}`);
    const dirs = (preopens ?? []).flatMap((p) => ("host" in p ? [{ host: p.host, readonly: p.readonly === true }] : []));
    launcher = new SandboxLauncher(tier, { dirs, spares: 0, stdin: inheritStdin && tier === "process" ? "inherit" : "null" });
  }
  const pool = new ExecutorPool({ ...options, ...(launcher ? { launcher } : {}) });
  return {
    pool,
    tier,
    close: async (waitMs) => {
      await pool.close(waitMs !== undefined ? { waitMs } : {});
      await launcher?.close();
      return pool.stats().lingering > 0;
    },
  };
}

/**
 * stdin "inherit" on a sandboxed tier. The process tier's sandbox has this
 * process's fd 0 (a guest blocked reading it is still stopped at its
 * deadline: the whole sandbox ends). gVisor's channel is its stdin: the
 * guest gets what a file or pipe holds, read here up to its end (a terminal:
 * nothing; a pipe that never ends holds the run back).
 */
function sandboxStdin(spec: RunFileOptions["stdin"], tier: Exclude<Tier, "isolate">): RunFileOptions["stdin"] {
  if (spec !== "inherit" || tier === "process") return spec;
  try {
    const st = fstatSync(0);
    if (st.isFile() || st.isFIFO() || st.isSocket()) return new Uint8Array(readFileSync(0));
  } catch {
    /* stdin closed, or a non-blocking descriptor with nothing in it */
  }
  return new Uint8Array(0);
}

/**
 * The process's stdin as the guest should read it: non-blocking, so that the
 * kernel waits for input in short interruptible sleeps instead of a read(2)
 * no deadline can stop. A pipe or terminal is reopened non-blocking
 * (/proc/self/fd/0: a description of its own, the shell's is untouched); a
 * socket is switched by opening Node's own stdin stream on it (libuv makes
 * it non-blocking, Node restores it at exit). Files never block.
 */
function interruptibleStdin(spec: RunFileOptions["stdin"]): RunFileOptions["stdin"] {
  if (spec !== "inherit") return spec;
  try {
    const st = fstatSync(0);
    if (st.isSocket()) {
      process.stdin.pause(); // created paused; it never reads, the guest does
      return spec;
    }
    if ((st.isFIFO() || st.isCharacterDevice()) && process.platform === "linux") {
      return { fd: openSync("/proc/self/fd/0", constants.O_RDONLY | constants.O_NONBLOCK) };
    }
  } catch {
    /* no /proc, or stdin closed: read it as is */
  }
  return spec;
}

export async function runFileLimited(path: string, options: RunFileOptions, limits: Limits = {}, how: RunLimitedOptions = {}): Promise<RunResult> {
  return runLimited(new Uint8Array(await readFile(path)), options, limits, how);
}
