/**
 * What an executor does with one guest: instantiate a prepared module with a
 * fresh kernel, apply the per-run limits (fuel, snapshot), run it, and turn
 * however it ended into an outcome with a named reason. It runs inside the
 * executor's worker thread; it is plain synchronous code, so tests can also
 * call it directly on the main thread.
 */
import type { KernelOptions, OutputSpec } from "../kernel/options.js";
import { InstanceLimitError, KernelFault, LinkError, ProcExit } from "../kernel/errors.js";
import { Kernel } from "../kernel/kernel.js";
import { remoteProviders, type Extension, type HostCalls } from "../kernel/extensions.js";
import type { PortableExtensions } from "./host-calls.js";
import { describeTrap, formatBacktrace, type WasmFrame } from "../wasm/backtrace.js";
import { consumeFuel, isFuelExhausted, remainingFuel, setFuel } from "../wasm/fuel.js";
import type { RunResult, TrapReport } from "./instance.js";
import { describeEnd, describeTableLimit, EXIT_CODES, type EndReason, type ResolvedLimits } from "./limits.js";
import { growRefused, resetGrowFailed } from "../wasm/grow-hook.js";
import { RECYCLED_MEMORY_MODULE, RECYCLED_MEMORY_NAME } from "../wasm/memory-import.js";
import { MemoryRecycler } from "./memory-recycling.js";
import type { PreparedModule } from "./modules.js";
import { copyMemory, initializerOf, restoreSnapshot, snapshotTables, type Snapshot } from "./snapshot.js";

export type { PreparedModule } from "./modules.js";

/**
 * How a run (or one reactor call) ended: the in-process RunResult (same
 * reasons, exit codes and trap report) plus what the sandbox measures.
 */
export interface GuestOutcome extends RunResult {
  reason: EndReason;
  message: string;
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
  /** Receives output chunks of streams given as "stream". */
  onOutput?: (stream: "stdout" | "stderr", chunk: Uint8Array) => void;
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

function finite(n: number): number | undefined {
  return Number.isFinite(n) ? n : undefined;
}

/** The kernel's extension options in an executor: providers are proxies parking on `hooks.host`. */
function kernelExtensions(ext: PortableExtensions | undefined, hooks: GuestHooks): KernelOptions["extensions"] {
  if (hooks.localExtensions) return hooks.localExtensions;
  if (!ext && !hooks.extensions) return undefined;
  return {
    grants: ext?.grants ?? [],
    providers: ext && hooks.host ? remoteProviders(hooks.host, ext.session, ext.provided) : {},
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
    if (spec === "stream") return (chunk) => hooks.onOutput?.(name, chunk.slice());
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
    limits: {
      openFiles: finite(limits.openFiles),
      stdoutBytes: finite(limits.stdoutBytes),
      stderrBytes: finite(limits.stderrBytes),
      memDirBytes: finite(limits.memDirBytes),
    },
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
    const instance = new WebAssembly.Instance(prepared.module, imports);
    if (prepared.metered) metered = instance;
    const exported = instance.exports["memory"];
    // A memory a granted extension provided (env.memory) is already bound to the kernel.
    const memory = importedMemory ?? (exported instanceof WebAssembly.Memory ? exported : undefined) ?? kernel.memory.target ?? undefined;
    if (memory) kernel.bind(memory);
    let fuelPrimed = false;
    if (prepared.startExport) {
      setFuel(instance, limits.fuel ?? 0n);
      fuelPrimed = true;
      try {
        (instance.exports[prepared.startExport] as () => void)();
      } catch (err) {
        if (isFuelExhausted(instance)) throw new InstanceLimitError("fuel_exhausted", "fuel exhausted in the start function");
        throw err;
      }
    }
    if (snapshot) {
      if (!memory) throw new Error("cannot restore a snapshot into an instance without memory");
      restoreSnapshot(snapshot, memory, instance.exports);
    }
    return { prepared, kernel, instance, memory, limits, out, fuelPrimed };
  } catch (err) {
    kernel.close();
    throw err;
  }
}

/**
 * Runs `fn` (a call into the guest) under the instance's fuel budget and
 * classifies how it ended. Output collected so far is drained into the outcome.
 */
export function runGuarded<T>(guest: LiveGuest, fn: () => T, started: number): { value?: T; outcome: GuestOutcome } {
  const { limits, prepared } = guest;
  resetGrowFailed(guest.instance.exports);
  if (prepared.metered && !guest.fuelPrimed) setFuel(guest.instance, limits.fuel ?? 0n);
  guest.fuelPrimed = false;
  let value: T | undefined;
  let c: Classified = { reason: "exit", exitCode: 0 };
  try {
    value = fn();
  } catch (err) {
    c = classify(err, guest);
  }
  const fuelConsumed = prepared.metered ? (limits.fuel ?? 0n) - remainingFuel(guest.instance) : undefined;
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

/** An outcome for a run that never reached the guest's code. */
export function setupFailure(err: unknown, limits: ResolvedLimits, started: number): GuestOutcome {
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

// ---- reactors -----------------------------------------------------------------

/**
 * The reactor call ABI.
 *
 * Arguments: a `number` is passed as is (V8 converts it to the parameter's
 * i32/f32/f64 type), a `bigint` for an i64 parameter. A `Uint8Array` takes
 * TWO parameters, (ptr: i32, len: i32): the host calls the guest's exported
 * `uniwasm_alloc(len) -> ptr`, copies the bytes there, and calls
 * `uniwasm_free(ptr)` after the call returns.
 *
 * Results: by default the wasm result as is (number, bigint for i64,
 * undefined for none). With `result: "bytes"` the function must return an
 * i64 `(ptr << 32) | len`: the host copies those bytes out, then calls
 * `uniwasm_free(ptr)` (so the guest allocates its result with its allocator).
 */
export type ReactorArg = number | bigint | Uint8Array;
export type ReactorValue = number | bigint | Uint8Array | undefined;
export type ResultKind = "value" | "bytes";

export const ALLOC_EXPORT = "uniwasm_alloc";
export const FREE_EXPORT = "uniwasm_free";

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

/** Calls one export of a warm reactor with the call ABI above. */
export function callReactor(guest: LiveGuest, name: string, args: readonly ReactorArg[], result: ResultKind = "value"): { value?: ReactorValue; outcome: GuestOutcome } {
  const started = now();
  const fn = guest.instance.exports[name];
  if (typeof fn !== "function") {
    return { outcome: setupFailure(new LinkError(`the reactor has no exported function "${name}"`), guest.limits, started) };
  }
  const exports = guest.instance.exports;
  const toFree: number[] = [];
  const { value, outcome } = runGuarded(
    guest,
    () => {
      const wasmArgs: (number | bigint)[] = [];
      let next = -1; // where the next input goes when the guest has no allocator
      for (const a of args) {
        if (a instanceof Uint8Array) {
          let ptr: number;
          if (typeof exports[ALLOC_EXPORT] === "function") {
            ptr = allocate(exports, a.length);
            toFree.push(ptr);
          } else {
            ptr = next >= 0 ? next : inputBase(guest, name);
            next = align16(ptr + a.length);
            ensureMemory(guest, ptr + a.length);
          }
          new Uint8Array(guest.memory!.buffer).set(a, ptr);
          wasmArgs.push(ptr, a.length);
        } else wasmArgs.push(a);
      }
      const raw = (fn as (...a: (number | bigint)[]) => unknown)(...wasmArgs);
      let ret: ReactorValue = raw as ReactorValue;
      if (result === "bytes") {
        if (typeof raw !== "bigint") throw new TypeError(`"${name}" must return an i64 (ptr << 32 | len) for a bytes result`);
        const ptr = Number((raw >> 32n) & 0xffffffffn);
        const len = Number(raw & 0xffffffffn);
        const mem = new Uint8Array(guest.memory!.buffer);
        if (ptr + len > mem.length) throw new RangeError(`"${name}" returned bytes [${ptr}, +${len}) outside its memory of ${mem.length} bytes`);
        ret = mem.slice(ptr, ptr + len);
        toFree.push(ptr);
      }
      const free = exports[FREE_EXPORT];
      if (typeof free === "function") for (const p of toFree) (free as (p: number) => void)(p);
      return ret;
    },
    started,
  );
  return value === undefined ? { outcome } : { value, outcome };
}

const align16 = (n: number): number => (n + 15) & ~15;

/**
 * Where a guest without an allocator gets its input: past its static data
 * (its exported `__heap_base` when it has one, else the end of its data
 * segments), 16-byte aligned. The plugin calling convention, docs/extensions.md.
 */
function inputBase(guest: LiveGuest, name: string): number {
  if (!guest.memory) throw new LinkError(`"${name}" takes bytes, but the module has no memory to put them in`);
  const heap = guest.instance.exports["__heap_base"];
  if (heap instanceof WebAssembly.Global && typeof heap.value === "number") return align16(heap.value >>> 0);
  if (guest.prepared.dataEnd === undefined) {
    throw new LinkError(`"${name}" takes bytes, but the module exports no "${ALLOC_EXPORT}(len) -> ptr" and its data's end is not constant (export __heap_base)`);
  }
  return align16(guest.prepared.dataEnd);
}

/** Grows the guest's memory to hold `end` bytes; past its maximum that is the memory limit. */
function ensureMemory(guest: LiveGuest, end: number): void {
  const memory = guest.memory!;
  const have = memory.buffer.byteLength;
  if (end <= have) return;
  const pages = Math.ceil((end - have) / 65536);
  try {
    memory.grow(pages);
  } catch {
    throw new InstanceLimitError("memory_limit", `the call's input needs ${Math.ceil(end / 65536)} pages, above the memory's maximum`);
  }
}

function allocate(exports: WebAssembly.Exports, len: number): number {
  const alloc = exports[ALLOC_EXPORT];
  if (typeof alloc !== "function") throw new TypeError(`a bytes argument needs the guest to export "${ALLOC_EXPORT}(len) -> ptr"`);
  const ptr = (alloc as (n: number) => number)(len) >>> 0;
  if (ptr === 0 && len > 0) throw new RangeError(`${ALLOC_EXPORT}(${len}) returned 0`);
  return ptr;
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
