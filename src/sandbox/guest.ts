/**
 * The engine: the one way a guest runs. Instantiate a prepared module
 * (modules.ts) with a fresh kernel, apply the per-run limits (fuel, snapshot),
 * run it guarded, and turn however it ended into an outcome with a named
 * reason. Plain synchronous code; *where* it runs is a placement: inside an
 * executor's worker thread (executor-worker.ts) or inline on the calling
 * thread (inline.ts, which supplies a deadline guard). Same limits, same
 * outcome, same reactor ABI (reactor-abi.ts) either way.
 */
import type { KernelOptions, OutputSpec } from "../kernel/options.js";
import { InstanceLimitError, KernelFault, LinkError, ProcExit } from "../kernel/errors.js";
import { Kernel } from "../kernel/kernel.js";
import { remoteProviders, type Extension, type HostCalls } from "../kernel/extensions.js";
import type { PortableExtensions } from "./host-calls.js";
import { describeTrap, formatBacktrace, type TrapReason, type WasmFrame } from "../wasm/backtrace.js";
import { consumeFuel, isFuelExhausted, remainingFuel, setFuel } from "../wasm/fuel.js";
import { callExport, ReactorAbiError, type ReactorArg, type ReactorValue, type ResultKind } from "./reactor-abi.js";
import { describeEnd, describeTableLimit, EXIT_CODES, type EndReason, type ResolvedLimits } from "./limits.js";
import { growRefused, resetGrowFailed } from "../wasm/grow-hook.js";
import { RECYCLED_MEMORY_MODULE, RECYCLED_MEMORY_NAME } from "../wasm/memory-import.js";
import { MemoryRecycler } from "./memory-recycling.js";
import type { PreparedModule } from "./modules.js";
import { copyMemory, initializerOf, restoreSnapshot, snapshotTables, type Snapshot } from "./snapshot.js";

export type { PreparedModule } from "./modules.js";
export { ALLOC_EXPORT, FREE_EXPORT, type ReactorArg, type ReactorValue, type ResultKind } from "./reactor-abi.js";

/** A trap, for people: what it was and where (wasm frames with names). */
export interface TrapReport {
  reason: TrapReason;
  /** One line: "integer divide by zero". */
  message: string;
  /** Wasm frames, innermost first, with names from the name section. */
  frames: WasmFrame[];
  /** The frames formatted wasmtime-style, one per line. */
  backtrace: string;
}

/**
 * How a run (or one reactor call) ended, wherever it ran: the one outcome of
 * the engine (`RunResult` and `SandboxResult` are its other names).
 */
export interface GuestOutcome {
  /** `exit` for a normal end (see exitCode), else why the sandbox ended it (limits.ts's EndReason). */
  reason: EndReason;
  /** The guest's exit code (proc_exit, 0 when _start returned), or the sandbox's code for the reason (EXIT_CODES). */
  exitCode: number;
  /** One line for people. */
  message: string;
  /** What the guest wrote to streams given as "buffer" (empty otherwise). */
  stdout: Uint8Array;
  stderr: Uint8Array;
  trap?: TrapReport;
  /** Host calls made, by name. */
  calls: Record<string, number>;
  /** Calls to ungranted host functions answered ENOTCAPABLE, by name. */
  denied: Record<string, number>;
  /** Instructions metered, when the module was (deterministic for the same input). */
  fuelConsumed?: bigint;
  /** Linear memory size at the end, in bytes. */
  memoryBytes: number;
  /** Bytes the in-memory directories held at the end (charged against memDirBytes), when the guest ran. */
  memDirBytes?: number;
  /** Wall time spent in the guest (instantiation included), in µs. */
  durationUs: number;
  /** Set when the host, not the guest, failed: a bug to report. */
  hostFault?: string;
}

/** Kernel options that can cross to a worker thread (callbacks cannot). */
export type PortableKernelOptions = Omit<KernelOptions, "trace" | "stdout" | "stderr" | "io" | "limits" | "extensions"> & {
  stdout?: Exclude<OutputSpec, (chunk: Uint8Array) => void> | "stream";
  stderr?: Exclude<OutputSpec, (chunk: Uint8Array) => void> | "stream";
  /** Stream strace-style lines through `onTrace`. */
  trace?: boolean;
  /** Extension grants; the providers stay in the pool's session (host-calls.ts), reached through `GuestHooks.host`. */
  extensions?: PortableExtensions;
};

export interface GuestHooks {
  /** Receives output chunks of streams given as "stream": copies, unless `borrowsOutput`. */
  onOutput?: (stream: "stdout" | "stderr", chunk: Uint8Array) => void;
  /** onOutput copies what it keeps: it is given the kernel's view (valid during the call only), not a copy. */
  borrowsOutput?: boolean;
  onTrace?: (line: string) => void;
  /** Blocking socket I/O, when the run has listeners. */
  io?: KernelOptions["io"];
  /** Where memories come from and go back to (a fresh one each time without it). */
  recycler?: MemoryRecycler;
  /** Clean-up to run after the result is sent (recycling the memory), so it costs the caller nothing. */
  deferred?: (() => void)[];
  /** The channel to extension providers on the pool's thread. */
  host?: HostCalls;
  /** Extensions the executor offers beside the built-ins (loaded from the pool's extension modules). */
  extensions?: readonly Extension<any, any>[];
  /** A guest on the providers' own thread (callModule): the kernel's extension options as given, providers called directly. */
  localExtensions?: KernelOptions["extensions"];
  /**
   * Runs each stretch of guest code (instantiation with its start function,
   * `_start`, a reactor call) so that it can be stopped at the run's deadline:
   * throws InstanceLimitError("deadline_exceeded") when it is. The inline
   * placement's watchdog; an executor needs none (its thread is ended).
   */
  guard?: <T>(fn: () => T) => T;
}

/** A live instance with its kernel: a command before `_start`, or a warm reactor. */
export interface LiveGuest {
  prepared: PreparedModule;
  kernel: Kernel;
  instance: WebAssembly.Instance;
  memory: WebAssembly.Memory | undefined;
  limits: ResolvedLimits;
  out: Collected;
  /** Set once a call ended abnormally: the instance is no longer used. */
  ended?: EndReason;
  /** The fuel global already holds this run's budget, less what a deferred start function used. */
  fuelPrimed?: boolean;
  /** The placement's deadline guard (GuestHooks.guard), for each call into the guest. */
  guard?: <T>(fn: () => T) => T;
}

interface Collected {
  stdout: Uint8Array[];
  stderr: Uint8Array[];
}

function now(): number {
  return performance.now();
}

function concat(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** The kernel's extension options in an executor: providers are proxies parking on `hooks.host`. */
function kernelExtensions(ext: PortableExtensions | undefined, hooks: GuestHooks): KernelOptions["extensions"] {
  if (hooks.localExtensions) return hooks.localExtensions;
  if (!ext && !hooks.extensions) return undefined;
  return {
    grants: ext?.grants ?? [],
    providers: ext && hooks.host ? remoteProviders(hooks.host, ext.session, ext.provided, ext.fields) : {},
    remote: true,
    ...(hooks.extensions ? { define: hooks.extensions } : {}),
  };
}

/**
 * Instantiates a prepared module with a fresh kernel. Imported memories are
 * created with the memory ceiling as their maximum. With a snapshot, the
 * instance is put in the snapshot's state (its initializer is not run).
 * Throws LinkError, or the instantiation error (e.g. V8 out of memory).
 */
export function instantiate(
  prepared: PreparedModule,
  options: PortableKernelOptions,
  limits: ResolvedLimits,
  hooks: GuestHooks = {},
  snapshot?: Snapshot,
): LiveGuest {
  const out: Collected = { stdout: [], stderr: [] };
  const outputSpec = (name: "stdout" | "stderr"): OutputSpec => {
    const spec = options[name] ?? "buffer";
    if (spec === "buffer") return (chunk) => void out[name].push(chunk.slice());
    if (spec === "stream") return hooks.borrowsOutput ? (chunk) => hooks.onOutput?.(name, chunk) : (chunk) => hooks.onOutput?.(name, chunk.slice());
    return spec;
  };
  // A metered run pays for the kernel's work on its behalf from the same fuel (kernel/host-work.ts).
  let metered: WebAssembly.Instance | undefined;
  const hostWork = (units: number): void => {
    if (metered && !consumeFuel(metered, units)) throw new InstanceLimitError("fuel_exhausted", "fuel exhausted by host work (a host call's work is charged to fuel)");
  };
  const kernelOptions: KernelOptions = {
    ...options,
    hostWork: prepared.metered ? hostWork : undefined,
    stdout: outputSpec("stdout"),
    stderr: outputSpec("stderr"),
    trace: options.trace && hooks.onTrace ? hooks.onTrace : undefined,
    io: hooks.io,
    extensions: kernelExtensions(options.extensions, hooks),
    // The kernel reads its own fields (openFiles, stdoutBytes, stderrBytes, memDirBytes) from the resolved limits.
    limits,
  };
  const kernel = new Kernel(kernelOptions);
  try {
    const { imports } = kernel.link(prepared.linkView ?? prepared.module, prepared.signatures, prepared.memoryImports);
    let importedMemory: WebAssembly.Memory | undefined;
    const shape = prepared.recycledMemory;
    if (shape) {
      importedMemory = hooks.recycler ? hooks.recycler.take(shape.min, shape.max) : new WebAssembly.Memory({ initial: shape.min, maximum: shape.max });
      imports[RECYCLED_MEMORY_MODULE] = { [RECYCLED_MEMORY_NAME]: importedMemory };
    }
    for (const req of prepared.importedMemories) {
      const mem = new WebAssembly.Memory({ initial: req.min, maximum: req.max, shared: req.shared } as WebAssembly.MemoryDescriptor);
      (imports[req.module] ??= {})[req.name] = mem;
      importedMemory ??= mem;
    }
    const guard = hooks.guard ?? ((fn) => fn());
    // A start section runs inside `new Instance` (unmetered modules): it is guest code too.
    const instance = guard(() => new WebAssembly.Instance(prepared.module, imports));
    if (prepared.metered) metered = instance;
    const exported = instance.exports["memory"];
    // A memory a granted extension provided (env.memory) is already bound to the kernel.
    const memory = importedMemory ?? (exported instanceof WebAssembly.Memory ? exported : undefined) ?? kernel.memory.target ?? undefined;
    if (memory) kernel.bind(memory);
    let fuelPrimed = false;
    if (prepared.startExport) {
      setFuel(instance, BigInt(limits.fuel ?? 0));
      fuelPrimed = true;
      try {
        guard(() => (instance.exports[prepared.startExport!] as () => void)());
      } catch (err) {
        if (isFuelExhausted(instance)) throw new InstanceLimitError("fuel_exhausted", "fuel exhausted in the start function");
        throw err;
      }
    }
    if (snapshot) {
      if (!memory) throw new Error("cannot restore a snapshot into an instance without memory");
      restoreSnapshot(snapshot, memory, instance.exports);
    }
    return { prepared, kernel, instance, memory, limits, out, fuelPrimed, guard: hooks.guard };
  } catch (err) {
    const exited = err instanceof ProcExit ? new ExitedAtStart(err.code, kernel, out) : undefined;
    kernel.close();
    throw exited ?? err;
  }
}

/** The start function called proc_exit: the run is over before `_start`, with that code. */
class ExitedAtStart extends Error {
  readonly calls: Record<string, number>;
  readonly denied: Record<string, number>;
  readonly stdout: Uint8Array;
  readonly stderr: Uint8Array;
  constructor(
    readonly code: number,
    kernel: Kernel,
    out: Collected,
  ) {
    super(`exited with ${code} in the start function`);
    this.calls = kernel.callCounts();
    this.denied = kernel.deniedCounts();
    this.stdout = concat(out.stdout);
    this.stderr = concat(out.stderr);
  }
}

/**
 * Runs `fn` (a call into the guest) under the instance's fuel budget and
 * classifies how it ended. Output collected so far is drained into the outcome.
 */
export function runGuarded<T>(guest: LiveGuest, fn: () => T, started: number): { value?: T; outcome: GuestOutcome } {
  const { limits, prepared } = guest;
  resetGrowFailed(guest.instance.exports);
  if (prepared.metered && !guest.fuelPrimed) setFuel(guest.instance, BigInt(limits.fuel ?? 0));
  guest.fuelPrimed = false;
  let value: T | undefined;
  let c: Classified = { reason: "exit", exitCode: 0 };
  try {
    value = guest.guard ? guest.guard(fn) : fn();
  } catch (err) {
    c = classify(err, guest);
  }
  const fuelConsumed = prepared.metered ? BigInt(limits.fuel ?? 0) - remainingFuel(guest.instance) : undefined;
  const outcome: GuestOutcome = {
    reason: c.reason,
    exitCode: c.exitCode,
    message: c.message ?? describeEnd(c.reason, limits, c.detail ?? (c.reason === "exit" ? `with code ${c.exitCode}` : undefined)),
    stdout: concat(guest.out.stdout.splice(0)),
    stderr: concat(guest.out.stderr.splice(0)),
    memoryBytes: guest.memory?.buffer.byteLength ?? 0,
    memDirBytes: guest.kernel.memDirs.used,
    calls: guest.kernel.callCounts(),
    denied: guest.kernel.deniedCounts(),
    durationUs: Math.round((now() - started) * 1000),
  };
  if (c.trap) outcome.trap = c.trap;
  if (fuelConsumed !== undefined) outcome.fuelConsumed = fuelConsumed;
  if (c.hostFault) outcome.hostFault = c.hostFault;
  if (c.reason !== "exit") guest.ended = c.reason;
  return { value, outcome };
}

interface Classified {
  reason: EndReason;
  exitCode: number;
  trap?: TrapReport;
  detail?: string;
  /** The whole message, when describeEnd's is not the right one. */
  message?: string;
  hostFault?: string;
}

/**
 * Which limit explains an abnormal end, if one does: exactly, from the grow
 * hook's flag (src/wasm/grow-hook.ts: a refused memory.grow or table.grow);
 * for a memory it could not hook (several memories), by memory being within
 * max(17 pages, 1/16) of the ceiling.
 */
function refusedGrow(guest: LiveGuest): "memory" | "table" | undefined {
  const flags = growRefused(guest.instance.exports);
  if (flags?.memory) return "memory";
  if (flags?.table) return "table";
  if (guest.prepared.memoryGrow !== "unhooked" || !guest.memory) return undefined;
  const pages = guest.memory.buffer.byteLength / 65536;
  const max = guest.prepared.maxMemoryPages;
  // A failed malloc asks for at least its size rounded to pages plus the
  // allocator's own granularity (dlmalloc: 1 MiB+), so "near" is generous.
  return pages >= max - Math.max(17, Math.ceil(max / 16)) ? "memory" : undefined;
}

function trapReport(err: unknown, guest: LiveGuest | undefined): TrapReport {
  const t = describeTrap(err, guest?.prepared.metered ? { instance: guest.instance } : {});
  const names = guest?.prepared.functionNames;
  const frames: WasmFrame[] = t.frames.map((f) => ({ ...f, name: names?.get(f.funcIndex) ?? f.name }));
  return { reason: t.reason, message: t.message, frames, backtrace: formatBacktrace(frames) };
}

function classify(err: unknown, guest: LiveGuest): Classified {
  if (err instanceof ProcExit) {
    const refused = err.code !== 0 ? refusedGrow(guest) : undefined;
    if (refused) return atLimit(guest, refused, `then exited with ${err.code}`);
    return { reason: "exit", exitCode: err.code };
  }
  if (err instanceof InstanceLimitError) return { reason: err.reason, exitCode: EXIT_CODES[err.reason], detail: err.message };
  if (err instanceof LinkError) return { reason: "link_error", exitCode: EXIT_CODES.link_error, detail: err.message };
  if (err instanceof ReactorAbiError) {
    // The guest broke the call ABI (its allocator failed, say): its fault, a trap; after a refused grow, that limit.
    const refused = refusedGrow(guest);
    if (refused) return atLimit(guest, refused, `then broke the call ABI: ${err.message}`);
    const trap: TrapReport = { reason: "abi_violation", message: err.message, frames: [], backtrace: "" };
    return { reason: "trap", exitCode: EXIT_CODES.trap, trap, detail: err.message };
  }
  if (err instanceof KernelFault) return { reason: "host_fault", exitCode: EXIT_CODES.host_fault, hostFault: err.message, detail: err.message };
  if (err instanceof WebAssembly.RuntimeError || (err instanceof RangeError && /call stack size exceeded/i.test(err.message))) {
    const trap = trapReport(err, guest);
    if (trap.reason === "fuel_exhausted" || trap.reason === "stack_exhausted") return { reason: trap.reason, exitCode: EXIT_CODES[trap.reason], trap, detail: trap.frames[0] ? `in ${trap.frames[0].name}` : undefined };
    const refused = refusedGrow(guest);
    if (refused) return { ...atLimit(guest, refused, `then trapped: ${trap.message}`), trap };
    return { reason: "trap", exitCode: EXIT_CODES.trap, trap, detail: trap.message };
  }
  // Anything else escaped the kernel's ABI layer: a host bug, never the guest's errno.
  const e = err instanceof Error ? err : new Error(String(err));
  return { reason: "host_fault", exitCode: EXIT_CODES.host_fault, hostFault: `${e.name}: ${e.message}`, trap: trapReport(e, guest), detail: `${e.name}: ${e.message}` };
}

function atLimit(guest: LiveGuest, which: "memory" | "table", what: string): Classified {
  if (which === "table") {
    return { reason: "memory_limit", exitCode: EXIT_CODES.memory_limit, message: describeTableLimit(guest.limits, `a table.grow was refused, ${what}`) };
  }
  const bytes = guest.memory?.buffer.byteLength ?? 0;
  return { reason: "memory_limit", exitCode: EXIT_CODES.memory_limit, detail: `memory at ${(bytes / 1048576).toFixed(1)} MiB, ${what}` };
}

/** Runs a command: a fresh instance (optionally from a snapshot), then `_start`. */
export function runCommand(
  prepared: PreparedModule,
  options: PortableKernelOptions,
  limits: ResolvedLimits,
  hooks: GuestHooks = {},
  snapshot?: Snapshot,
): GuestOutcome {
  const started = now();
  let guest: LiveGuest;
  try {
    guest = instantiate(prepared, options, limits, hooks, snapshot);
  } catch (err) {
    return setupFailure(err, limits, started);
  }
  try {
    const start = guest.instance.exports["_start"];
    if (typeof start !== "function") {
      const hasInit = typeof guest.instance.exports["_initialize"] === "function";
      return setupFailure(new LinkError(`the module exports no _start function${hasInit ? " (it is a reactor: it exports _initialize; call its exports instead)" : ""}`), limits, started);
    }
    return runGuarded(guest, () => (start as () => unknown)(), started).outcome;
  } finally {
    guest.kernel.close();
    recycle(guest, hooks);
  }
}

/** Hands a finished instance's memory back for reuse (after the result is sent, when deferred). */
export function recycle(guest: LiveGuest, hooks: GuestHooks): void {
  const shape = guest.prepared.recycledMemory;
  const memory = guest.memory;
  if (!shape || !memory || !hooks.recycler) return;
  const give = (): void => hooks.recycler!.give(memory, shape.min, shape.max);
  if (hooks.deferred) hooks.deferred.push(give);
  else give();
}

/** An outcome for a run that never reached the guest's code (or ended in its start function). */
export function setupFailure(err: unknown, limits: ResolvedLimits, started: number): GuestOutcome {
  if (err instanceof ExitedAtStart) {
    const { code, calls, denied, stdout, stderr } = err;
    return { reason: "exit", exitCode: code, message: describeEnd("exit", limits, `with code ${code}`), stdout, stderr, memoryBytes: 0, calls, denied, durationUs: Math.round((now() - started) * 1000) };
  }
  const e = err instanceof Error ? err : new Error(String(err));
  let reason: EndReason;
  let hostFault: string | undefined;
  let trap: TrapReport | undefined;
  if (err instanceof LinkError || err instanceof WebAssembly.LinkError) reason = "link_error";
  else if (err instanceof InstanceLimitError) reason = err.reason;
  else if (err instanceof RangeError && /call stack size exceeded/i.test(e.message)) reason = "stack_exhausted";
  else if (err instanceof RangeError && /memory/i.test(e.message)) reason = "memory_limit"; // V8 could not reserve the memory
  else if (err instanceof WebAssembly.RuntimeError) {
    reason = "trap"; // instantiation (segment initialization) or a start function trapped
    trap = trapReport(err, undefined);
    if (trap.reason === "host_error" && /segment .*out of bounds/.test(e.message)) {
      trap = { ...trap, reason: "segment_out_of_bounds", message: e.message.replace(/^WebAssembly\.\w+\(\): /, "") };
    }
  } else {
    reason = "host_fault";
    hostFault = `${e.name}: ${e.message}`;
  }
  const out: GuestOutcome = {
    reason,
    exitCode: EXIT_CODES[reason as Exclude<EndReason, "exit">] ?? EXIT_CODES.host_fault,
    message: describeEnd(reason, limits, e.message),
    stdout: new Uint8Array(0),
    stderr: new Uint8Array(0),
    memoryBytes: 0,
    calls: {},
    denied: {},
    durationUs: Math.round((now() - started) * 1000),
  };
  if (trap) out.trap = trap;
  if (hostFault) out.hostFault = hostFault;
  return out;
}

// ---- reactors (the call ABI is reactor-abi.ts) ---------------------------------

/** Creates a warm reactor: instantiated, then `_initialize` (or restored from a snapshot). */
export function startReactor(
  prepared: PreparedModule,
  options: PortableKernelOptions,
  limits: ResolvedLimits,
  hooks: GuestHooks = {},
  snapshot?: Snapshot,
): { guest?: LiveGuest; outcome: GuestOutcome } {
  const started = now();
  let guest: LiveGuest;
  try {
    guest = instantiate(prepared, options, limits, hooks, snapshot);
  } catch (err) {
    return { outcome: setupFailure(err, limits, started) };
  }
  const init = snapshot ? undefined : guest.instance.exports["_initialize"];
  const { outcome } = runGuarded(guest, () => (typeof init === "function" ? (init as () => void)() : undefined), started);
  if (outcome.reason === "exit") return { guest, outcome };
  guest.kernel.close();
  return { outcome };
}

/** Calls one export of a warm reactor with the call ABI (reactor-abi.ts). */
export function callReactor(guest: LiveGuest, name: string, args: readonly ReactorArg[], result: ResultKind = "value"): { value?: ReactorValue; outcome: GuestOutcome } {
  const started = now();
  if (typeof guest.instance.exports[name] !== "function") {
    return { outcome: setupFailure(new LinkError(`the reactor has no exported function "${name}"`), guest.limits, started) };
  }
  const target = { exports: guest.instance.exports, memory: guest.memory, dataEnd: guest.prepared.dataEnd };
  const { value, outcome } = runGuarded(guest, () => callExport(target, name, args, result), started);
  return value === undefined ? { outcome } : { value, outcome };
}

// ---- snapshot capture (runs in an executor too) ---------------------------------

/** Instantiates, records the baseline, runs the initializer: what a snapshot is built from. */
export function initializeForSnapshot(
  prepared: PreparedModule,
  options: PortableKernelOptions,
  limits: ResolvedLimits,
): { guest: LiveGuest; baseline: Uint8Array; baselineTables: Record<string, number>; initializer: string; initMicros: number; outcome: GuestOutcome } {
  const started = now();
  const guest = instantiate(prepared, options, limits);
  if (!guest.memory) throw new Error("cannot snapshot a module without memory");
  const initializer = initializerOf(guest.instance.exports);
  if (!initializer) throw new Error('cannot snapshot: the module exports neither "wizer.initialize" nor "_initialize"');
  const baseline = copyMemory(guest.memory);
  const baselineTables = snapshotTables(guest.instance.exports);
  const t0 = now();
  const init = guest.instance.exports[initializer] as () => void;
  const { outcome } = runGuarded(guest, () => init(), started);
  const initMicros = Math.round((now() - t0) * 1000);
  return { guest, baseline, baselineTables, initializer, initMicros, outcome };
}
