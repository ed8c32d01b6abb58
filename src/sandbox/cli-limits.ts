/**
 * The sandbox's flags for `uniwasm run`, and the run that honours them.
 *
 *   --max-memory <SIZE>   most linear memory (64K, 16M, 1G)      wasmtime: -W max-memory-size=BYTES
 *   --fuel <N>            instruction budget                     wasmtime: -W fuel=N
 *   --timeout <DURATION>  wall-clock deadline (500ms, 2s, 1m)    wasmtime: -W timeout=DURATION
 *   --max-stack <MIB>     V8 stack of the executor, in MiB       (wasmtime: -W max-wasm-stack=BYTES)
 *   -W <OPT=VALUE>        wasmtime's spelling of the above (repeatable)
 *
 * With none of them, `uniwasm run` runs in-process as before. With any, the
 * guest runs in an executor (a worker thread): a deadline can only stop a
 * spinning guest by ending its thread, and the stack size is a thread's.
 */
import { Command, Option } from "commander";
import { readFile } from "node:fs/promises";
import type { RunFileOptions, RunResult } from "./instance.js";
import { ExecutorPool } from "./executor-pool.js";
import { parseByteSize, parseDuration, type SandboxLimits } from "./limits.js";

export interface LimitFlags {
  maxMemory?: string;
  fuel?: string;
  timeout?: string;
  maxStack?: string;
  W?: string[];
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** Adds the limit flags to a command (`uniwasm run`); returns it for chaining. */
export function applyLimitFlags(cmd: Command): Command {
  return cmd
    .addOption(new Option("--max-memory <SIZE>", "most linear memory the guest may have (e.g. 64K, 16M, 1G); default 256M"))
    .addOption(new Option("--fuel <N>", "instruction budget; the guest ends with fuel_exhausted when it is spent"))
    .addOption(new Option("--timeout <DURATION>", "wall-clock deadline (e.g. 500ms, 2s, 1m); the guest ends with deadline_exceeded"))
    .addOption(new Option("--max-stack <MIB>", "V8 stack of the executor running the guest, in MiB; deep recursion ends with stack_exhausted"))
    .addOption(new Option("-W <OPT=VALUE>", "wasmtime-style limit: max-memory-size=BYTES, fuel=N, timeout=DURATION, max-wasm-stack=BYTES (repeatable)").argParser(collect));
}

function integer(text: string): bigint {
  if (!/^\d+$/.test(text.trim())) throw new Error("expected a non-negative integer");
  return BigInt(text.trim());
}

/** The limits the flags ask for, or undefined when none was given. Throws naming the bad flag. */
export function limitsFromFlags(flags: LimitFlags): SandboxLimits | undefined {
  const limits: SandboxLimits = {};
  const set = (key: string, value: string, flag: string): void => {
    try {
      switch (key) {
        case "max-memory":
        case "max-memory-size":
          limits.maxMemoryBytes = parseByteSize(value);
          break;
        case "fuel":
          limits.fuel = integer(value);
          break;
        case "timeout":
          limits.timeoutMs = parseDuration(value);
          break;
        case "max-stack":
          limits.stackSizeMb = Number(integer(value));
          break;
        case "max-wasm-stack":
          limits.stackSizeMb = Math.max(1, Math.ceil(parseByteSize(value) / (1024 * 1024)));
          break;
        default:
          throw new Error(`unknown option "${key}" (known: max-memory-size, fuel, timeout, max-wasm-stack)`);
      }
    } catch (err) {
      throw new Error(`${flag}${flag.startsWith("-W") ? "=" : " "}${value}: ${(err as Error).message}`);
    }
  };
  if (flags.maxMemory !== undefined) set("max-memory", flags.maxMemory, "--max-memory");
  if (flags.fuel !== undefined) set("fuel", flags.fuel, "--fuel");
  if (flags.timeout !== undefined) set("timeout", flags.timeout, "--timeout");
  if (flags.maxStack !== undefined) set("max-stack", flags.maxStack, "--max-stack");
  for (const w of flags.W ?? []) {
    const i = w.indexOf("=");
    if (i < 0) throw new Error(`-W ${w}: expected OPT=VALUE`);
    set(w.slice(0, i), w.slice(i + 1), `-W ${w.slice(0, i)}`);
  }
  return Object.keys(limits).length > 0 ? limits : undefined;
}

/**
 * Runs a command module in an executor under `limits`, with the same options
 * as the in-process runFile/runBytes (directories, env, stdio, listening
 * sockets, trace). Invalid modules and link errors come back as results with
 * reason `invalid_module` / `link_error`, like every other end.
 */
export async function runLimited(bytes: Uint8Array, options: RunFileOptions, limits: SandboxLimits): Promise<RunResult> {
  const { tcpListen, onListening, trace, stdout, stderr, limits: kernelLimits, ...rest } = options;
  const pool = new ExecutorPool({ size: 1, limits: { ...pickKernelLimits(kernelLimits), ...limits } });
  try {
    const listeners = [];
    for (const address of tcpListen ?? []) {
      const l = await pool.io.listen(address);
      listeners.push({ id: l.handle, address: l.address });
      onListening?.(l.address);
    }
    const stream = (spec: RunFileOptions["stdout"]): "stream" | Exclude<RunFileOptions["stdout"], (c: Uint8Array) => void> =>
      typeof spec === "function" ? "stream" : spec;
    return await pool.run(bytes, {
      ...rest,
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
  } finally {
    await pool.close();
  }
}

export async function runFileLimited(path: string, options: RunFileOptions, limits: SandboxLimits): Promise<RunResult> {
  return runLimited(new Uint8Array(await readFile(path)), options, limits);
}

function pickKernelLimits(k: RunFileOptions["limits"]): SandboxLimits {
  const out: SandboxLimits = {};
  if (k?.openFiles !== undefined) out.openFiles = k.openFiles;
  if (k?.stdoutBytes !== undefined) out.stdoutBytes = k.stdoutBytes;
  if (k?.stderrBytes !== undefined) out.stderrBytes = k.stderrBytes;
  return out;
}
