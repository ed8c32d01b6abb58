import { readFile } from "node:fs/promises";
import { Kernel } from "../kernel/kernel.js";
import { IoThread } from "../kernel/io-thread.js";
import type { KernelOptions } from "../kernel/options.js";
import { InstanceLimitError, KernelFault, LinkError, ProcExit } from "../kernel/errors.js";
import { compileChecked, compileCheckedSync, describeTrap, formatBacktrace, importedFunctions, type ModuleInfo, type WasmFrame, type TrapReason } from "../wasm/index.js";
import { frameOrigin, originalFrames, sectionsOf } from "../wasm/backtrace.js";
import type { ImportSignature } from "../kernel/linker.js";
import type { MemoryImportInfo } from "../kernel/extension-linker.js";
import { EXIT_CODES, type EndReason } from "./limits.js";

/** How an in-process run ended: the sandbox's EndReasons (see limits.ts). */
export type RunReason = EndReason;

export interface TrapReport {
  reason: TrapReason;
  /** One line: "integer divide by zero". */
  message: string;
  /** Wasm frames, innermost first, with names from the name section. */
  frames: WasmFrame[];
  /** The frames formatted wasmtime-style, one per line. */
  backtrace: string;
}

export interface RunResult {
  /** The guest's exit code (proc_exit, 0 when _start returned), or the sandbox's code for the reason. */
  exitCode: number;
  reason: RunReason;
  /** One line for people when the guest did not simply exit. */
  message?: string;
  stdout: Uint8Array;
  stderr: Uint8Array;
  trap?: TrapReport;
  /** Host calls made, by name. */
  calls: Record<string, number>;
  /** Calls to ungranted host functions answered ENOTCAPABLE, by name. */
  denied: Record<string, number>;
}

export const EXIT_CODE_HOST_FAULT = 70; // EX_SOFTWARE

const SIGNATURES = new WeakMap<ModuleInfo, Map<string, ImportSignature>>();

/** Function import signatures keyed "module.name", for the linker's checks (computed once per module). */
export function importSignatures(info: ModuleInfo): Map<string, ImportSignature> {
  let sigs = SIGNATURES.get(info);
  if (!sigs) {
    sigs = new Map();
    for (const f of importedFunctions(info)) {
      const key = `${f.module}.${f.name}`;
      const sig = { params: f.type.params, results: f.type.results };
      const seen = sigs.get(key);
      // The same import twice with two types: one import object cannot serve both, so refuse it
      // (otherwise the last type would vouch for the first and a host call would get too few arguments).
      if (seen && (seen.params.join() !== sig.params.join() || seen.results.join() !== sig.results.join())) {
        sigs.set(key, { params: [...seen.params, "|", ...sig.params], results: [...seen.results, "|", ...sig.results] });
      } else if (!seen) {
        sigs.set(key, sig);
      }
    }
    SIGNATURES.set(info, sigs);
  }
  return sigs;
}

/** The module's memory imports with their limits: a granted extension (env) provides them. */
export function memoryImports(info: ModuleInfo): MemoryImportInfo[] {
  return info.imports.flatMap((i) => (i.kind === "memory" ? [{ module: i.module, name: i.name, min: i.memory.min, max: i.memory.max, shared: i.memory.shared }] : []));
}

const ENTRY = new WeakMap<WebAssembly.Module, "command" | "reactor" | "none">();

/** Whether a compiled module is a command (exports _start), a reactor, or neither; cached per module. */
function entryKind(module: WebAssembly.Module): "command" | "reactor" | "none" {
  let kind = ENTRY.get(module);
  if (!kind) {
    const exports = WebAssembly.Module.exports(module);
    kind = exports.some((e) => e.name === "_start" && e.kind === "function") ? "command" : exports.some((e) => e.name === "_initialize") ? "reactor" : "none";
    ENTRY.set(module, kind);
  }
  return kind;
}

/**
 * Runs a WASI command (`_start`) in this thread: compile (bounded and
 * checked), link against a fresh kernel, run, and report. Invalid modules and
 * link errors throw (WasmError, LinkError) before anything runs; everything
 * that happens once the guest runs is in the result.
 */
export async function runModule(source: Uint8Array | WebAssembly.Module, options: KernelOptions = {}): Promise<RunResult> {
  if (source instanceof WebAssembly.Module) return runCommand(source, undefined, options);
  const { module, info } = await compileChecked(source);
  return runCommand(module, info, options);
}

/** runModule for callers that must stay synchronous (executors, benchmarks). */
export function runModuleSync(source: Uint8Array | WebAssembly.Module, options: KernelOptions = {}): RunResult {
  if (source instanceof WebAssembly.Module) return runCommand(source, undefined, options);
  const { module, info } = compileCheckedSync(source);
  return runCommand(module, info, options);
}

/** Creates a linked, not yet started instance and its kernel. */
export function instantiate(module: WebAssembly.Module, info: ModuleInfo | undefined, options: KernelOptions, extraImports?: WebAssembly.Imports): { kernel: Kernel; instance: WebAssembly.Instance } {
  const kernel = new Kernel(options);
  try {
    return { kernel, instance: linkAndInstantiate(kernel, module, info, extraImports) };
  } catch (err) {
    kernel.close();
    throw err;
  }
}

/** Links `module` against `kernel`, instantiates it and binds its exported memory. */
function linkAndInstantiate(kernel: Kernel, module: WebAssembly.Module, info: ModuleInfo | undefined, extraImports?: WebAssembly.Imports): WebAssembly.Instance {
  const { imports } = kernel.link(module, info ? importSignatures(info) : undefined, info ? memoryImports(info) : undefined);
  const instance = new WebAssembly.Instance(module, extraImports ? { ...extraImports, ...imports } : imports);
  const memory = instance.exports["memory"];
  if (memory instanceof WebAssembly.Memory) kernel.bind(memory);
  return instance;
}

/** Runs `_start` of a compiled command module to its end. */
export function runCommand(module: WebAssembly.Module, info: ModuleInfo | undefined, options: KernelOptions): RunResult {
  const kind = entryKind(module);
  if (kind !== "command") {
    throw new LinkError(`the module exports no _start function${kind === "reactor" ? " (it is a reactor: it exports _initialize; call its exports instead)" : ""}`);
  }
  const kernel = new Kernel(options);
  let instance: WebAssembly.Instance | undefined;
  try {
    instance = linkAndInstantiate(kernel, module, info);
    (instance.exports["_start"] as () => void)();
    return finish(kernel, 0, "exit");
  } catch (err) {
    const r = ended(kernel, err, info, instance);
    // The module ran as compiled from the user's bytes: its frames need only source lines, when it carries DWARF.
    if (r.trap && info) r.trap = withSourceLines(r.trap, module, info);
    return r;
  } finally {
    kernel.close();
  }
}

function withSourceLines(trap: TrapReport, module: WebAssembly.Module, info: ModuleInfo): TrapReport {
  if (!info.customSections.some((c) => c.name === ".debug_line")) return trap;
  const frames = originalFrames(trap.frames, frameOrigin(sectionsOf(module), info, info));
  return { ...trap, frames, backtrace: formatBacktrace(frames) };
}

/** Classifies whatever ended a guest into a RunResult. Link errors are rethrown. */
export function ended(kernel: Kernel, err: unknown, info: ModuleInfo | undefined, instance: WebAssembly.Instance | undefined): RunResult {
  if (err instanceof ProcExit) return finish(kernel, err.code, "exit");
  if (err instanceof InstanceLimitError) return finish(kernel, EXIT_CODES[err.reason], err.reason, err.message);
  if (err instanceof KernelFault) return finish(kernel, EXIT_CODE_HOST_FAULT, "host_fault", err.message);
  if (err instanceof WebAssembly.RuntimeError || err instanceof RangeError) {
    const t = describeTrap(err, { info, instance });
    const reason: RunReason = t.reason === "fuel_exhausted" || t.reason === "stack_exhausted" ? t.reason : "trap";
    const r = finish(kernel, EXIT_CODES[reason], reason, t.message);
    r.trap = { reason: t.reason, message: t.message, frames: t.frames, backtrace: formatBacktrace(t.frames) };
    return r;
  }
  throw err;
}

function finish(kernel: Kernel, exitCode: number, reason: RunReason, message?: string): RunResult {
  const r: RunResult = {
    exitCode,
    reason,
    stdout: kernel.stdout.collected(),
    stderr: kernel.stderr.collected(),
    calls: kernel.callCounts(),
    denied: kernel.deniedCounts(),
  };
  if (message !== undefined) r.message = message;
  return r;
}

export interface RunFileOptions extends Omit<KernelOptions, "listeners" | "io"> {
  /** Addresses to listen on ("127.0.0.1:8080"), granted as preopened sockets after the directories. */
  tcpListen?: readonly string[];
  /** Called with each bound address once listening (useful with port 0). */
  onListening?: (address: string) => void;
}

/**
 * Runs a WASI command file in this thread, as `uniwasm run` does. Listening
 * sockets are served by an I/O thread while the guest blocks in host calls.
 */
export async function runFile(path: string, options: RunFileOptions = {}): Promise<RunResult> {
  return runBytes(new Uint8Array(await readFile(path)), options);
}

/** runFile for module bytes already in hand (an image's module, say). */
export async function runBytes(bytes: Uint8Array, options: RunFileOptions = {}): Promise<RunResult> {
  const { module, info } = await compileChecked(bytes);
  const { tcpListen, onListening, ...kernelOptions } = options;
  if (!tcpListen || tcpListen.length === 0) return runCommand(module, info, kernelOptions);
  const io = IoThread.start();
  try {
    const listeners = [];
    for (const address of tcpListen) {
      const l = await io.listen(address);
      listeners.push({ id: l.handle, address: l.address });
      onListening?.(l.address);
    }
    return runCommand(module, info, { ...kernelOptions, listeners, io: await io.client() });
  } finally {
    await io.close();
  }
}
