/**
 * Prepared modules: each module is prepared (src/wasm/prepare.ts: checked,
 * rewritten for the limits) and compiled once per set of rewrites, and cached
 * by content digest + rewrites (LRU). Both placements of the engine take
 * their modules from here.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { prepareModule, type PreparedWasm } from "../wasm/prepare.js";
import { readModuleInfo } from "../wasm/reader.js";
import { formatBacktrace, originalFrames, type FrameOrigin } from "../wasm/backtrace.js";
import type { GuestOutcome } from "./guest.js";
import { toCompileError } from "../wasm/validate.js";
import type { ModuleLimits } from "../wasm/validate.js";
import { memoryPages, type ResolvedLimits } from "./limits.js";

/** A module as the engine runs it: prepared for the limits, compiled once. */
export interface PreparedModule extends Omit<PreparedWasm, "bytes" | "linkView"> {
  /** Cache key: content digest + the rewrites applied. */
  key: string;
  module: WebAssembly.Module;
  /** With recycledMemory: the module's WASI imports alone, for the kernel's linker. */
  linkView?: WebAssembly.Module;
  /** What preparing it cost (check, rewrites, compile), where it was prepared. */
  cost: PrepareCost;
  /** The rewritten bytes `module` (and linkView) were compiled from, when asked to keep them: executors in other processes compile them again. */
  wire?: { bytes: Uint8Array; linkView?: Uint8Array };
}

export interface PrepareCost {
  /** Wall time, ms. */
  wallMs: number;
  /**
   * CPU time of the thread that prepared it, ms (V8's background compile
   * threads are not included). Undefined where the platform does not tell.
   */
  cpuMs?: number;
}

/** Bytes of a module with their digest computed once; pass it instead of bytes to skip hashing. */
export class WasmImage {
  readonly digest: string;
  /** @internal Module cache keys by rewrite code (see moduleKey), built once. */
  readonly keys = new Map<string, string>();
  /** `digest`: the bytes' sha256 in hex when the caller has it already (it is trusted, not checked). */
  constructor(
    readonly bytes: Uint8Array,
    digest?: string,
  ) {
    this.digest = digest ?? createHash("sha256").update(bytes).digest("hex");
  }
}

export type ModuleSource = Uint8Array | WasmImage;

export function imageOf(source: ModuleSource): WasmImage {
  return source instanceof WasmImage ? source : new WasmImage(source);
}

/** The rewrites a module needs for these limits; part of its cache key. */
export interface Rewrites {
  maxMemoryPages: number;
  maxTableElements: number;
  fuel: boolean;
  snapshot: boolean;
}

export function rewritesFor(limits: ResolvedLimits, snapshot: boolean): Rewrites {
  return { maxMemoryPages: memoryPages(limits), maxTableElements: limits.maxTableElements, fuel: limits.fuel !== null, snapshot };
}

/** The module cache key: content digest + the rewrites. */
export function moduleKey(image: WasmImage, r: Rewrites): string {
  const code = `${r.maxMemoryPages}/${r.maxTableElements}/${r.fuel ? 1 : 0}${r.snapshot ? 1 : 0}`;
  let key = image.keys.get(code);
  if (key === undefined) {
    key = `${image.digest}/m${r.maxMemoryPages}/t${r.maxTableElements}${r.fuel ? "/fuel" : ""}${r.snapshot ? "/snap" : ""}`;
    image.keys.set(code, key);
  }
  return key;
}

/** Prepares and compiles on the calling thread (prepare-worker.ts does the same off it). */
export function prepareAndCompile(bytes: Uint8Array, key: string, rewrites: Rewrites, moduleLimits?: Partial<ModuleLimits>, keepBytes = false): PreparedModule {
  const t0 = performance.now();
  const cpu0 = threadCpuMs();
  const p = prepareModule(bytes, { ...rewrites, moduleLimits });
  const m = compilePrepared(p, key, t0, cpu0, bytes);
  // Executors in other processes (tiers/) compile the module again, inside their wall.
  if (keepBytes) m.wire = { bytes: p.bytes, ...(p.linkView ? { linkView: p.linkView } : {}) };
  return m;
}

/** Compiles a prepared module (synchronously: it runs on a thread made for it, or for small work). */
export function compilePrepared(p: PreparedWasm, key: string, t0: number, cpu0: number | undefined, original?: Uint8Array): PreparedModule {
  let module: WebAssembly.Module;
  let linkView: WebAssembly.Module | undefined;
  try {
    module = new WebAssembly.Module(p.bytes);
    if (p.linkView) linkView = new WebAssembly.Module(p.linkView);
  } catch (err) {
    // Named from the original module: rewrites never move function indices.
    throw toCompileError(err, original ? readModuleInfo(original) : undefined);
  }
  return finishPrepared(p, key, module, linkView, t0, cpu0);
}

function finishPrepared(p: PreparedWasm, key: string, module: WebAssembly.Module, linkView: WebAssembly.Module | undefined, t0: number, cpu0: number | undefined): PreparedModule {
  const { bytes: _b, linkView: _l, ...facts } = p;
  const cpu1 = threadCpuMs();
  const cost: PrepareCost = { wallMs: performance.now() - t0 };
  if (cpu0 !== undefined && cpu1 !== undefined) cost.cpuMs = cpu1 - cpu0;
  return { ...facts, key, module, ...(linkView ? { linkView } : {}), cost };
}

let readThreadCpu: (() => number | undefined) | undefined;

/**
 * CPU time of the calling thread in ms, from Linux's /proc/thread-self/schedstat
 * (ns on CPU); undefined elsewhere. Node 20 has no per-thread CPU clock.
 */
export function threadCpuMs(): number | undefined {
  if (!readThreadCpu) {
    readThreadCpu = () => Number(readFileSync("/proc/thread-self/schedstat", "latin1").split(" ")[0]) / 1e6;
    if (process.platform !== "linux" || threadCpuMs() === undefined) readThreadCpu = () => undefined;
  }
  try {
    const ms = readThreadCpu();
    return ms !== undefined && Number.isFinite(ms) ? ms : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Prepared modules by key, least recently used dropped past `max`: what both
 * placements keep. `onForget` hears of each dropped key (the pool tells its
 * executors to let go of the module).
 */
export class ModuleCache {
  private readonly modules = new Map<string, Promise<PreparedModule>>();
  /** How each cached module was prepared, to map a trap's frames back to the original module (made at its first trap). */
  private readonly sources = new Map<string, { bytes: Uint8Array; rewrites: Rewrites; origin?: FrameOrigin }>();
  /** The compiled ones among `modules`: a run can take them without waiting on a promise. */
  private readonly compiled = new Map<string, PreparedModule>();
  readonly counters = { compiled: 0, cacheHits: 0 };

  constructor(
    private readonly preparer: { prepare(bytes: Uint8Array, key: string, rewrites: Rewrites, moduleLimits?: Partial<ModuleLimits>, keepBytes?: boolean): Promise<PreparedModule> },
    private readonly max = 256,
    private readonly moduleLimits?: Partial<ModuleLimits>,
    private readonly onForget?: (key: string) => void,
    /** Keep the rewritten bytes of each module (PreparedModule.wire): executors in other processes compile them again. */
    private readonly keepBytes = false,
  ) {}

  get size(): number {
    return this.modules.size;
  }

  /**
   * Checks, rewrites and compiles a module for the given limits, once: later
   * calls with the same bytes and the same rewrites get the cached result.
   * Rejects with a WasmError (invalid module, above a memory or table limit).
   */
  get(source: ModuleSource, limits: ResolvedLimits, forSnapshot = false): Promise<PreparedModule> {
    const image = imageOf(source);
    const rewrites = rewritesFor(limits, forSnapshot);
    const key = moduleKey(image, rewrites);
    const hit = this.modules.get(key);
    if (hit) {
      this.touch(key, hit);
      return hit;
    }
    this.sources.set(key, { bytes: image.bytes, rewrites });
    const p = this.preparer.prepare(image.bytes, key, rewrites, this.moduleLimits, this.keepBytes);
    this.modules.set(key, p);
    p.then(
      (m) => {
        this.counters.compiled++;
        if (this.modules.get(key) === p) this.compiled.set(key, m);
      },
      () => {
        if (this.modules.get(key) === p) this.modules.delete(key);
      },
    );
    while (this.modules.size > this.max) this.forget(this.modules.keys().next().value!);
    return p;
  }

  /** `get` on this thread, synchronously (cached the same way). Throws a WasmError. */
  getSync(source: ModuleSource, limits: ResolvedLimits, forSnapshot = false): PreparedModule {
    const image = imageOf(source);
    const rewrites = rewritesFor(limits, forSnapshot);
    const key = moduleKey(image, rewrites);
    const hit = this.compiled.get(key);
    if (hit) {
      this.touch(key, this.modules.get(key)!);
      return hit;
    }
    const m = prepareAndCompile(image.bytes, key, rewrites, this.moduleLimits, this.keepBytes);
    this.counters.compiled++;
    this.sources.set(key, { bytes: image.bytes, rewrites });
    this.modules.set(key, Promise.resolve(m));
    this.compiled.set(key, m);
    while (this.modules.size > this.max) this.forget(this.modules.keys().next().value!);
    return m;
  }

  /**
   * A trap's frames in the original module's offsets (what wasm-objdump
   * shows on the user's file) and, when it carries DWARF, with source lines.
   * The origin of the rewritten code is worked out at the module's first
   * trap, by preparing it again with `origin` (traps are rare; executors
   * never carry it).
   */
  inOriginal(outcome: GuestOutcome, key: string): GuestOutcome {
    const src = this.sources.get(key);
    if (!outcome.trap || !src) return outcome;
    try {
      src.origin ??= prepareModule(src.bytes, { ...src.rewrites, ...(this.moduleLimits ? { moduleLimits: this.moduleLimits } : {}), origin: true }).origin!;
    } catch {
      return outcome; // it was prepared once already; nothing better to say than the frames as they are
    }
    const frames = originalFrames(outcome.trap.frames, src.origin);
    return { ...outcome, trap: { ...outcome.trap, frames, backtrace: formatBacktrace(frames) } };
  }

  /** Whether the module is prepared (or being prepared) for these limits already. */
  has(source: ModuleSource, limits: ResolvedLimits, forSnapshot = false): boolean {
    return this.modules.has(moduleKey(imageOf(source), rewritesFor(limits, forSnapshot)));
  }

  /** `get` without waiting: the module when it is compiled and cached already (only for a WasmImage: bytes would be hashed). */
  now(source: ModuleSource, limits: ResolvedLimits, forSnapshot = false): PreparedModule | undefined {
    if (!(source instanceof WasmImage)) return undefined;
    const key = moduleKey(source, rewritesFor(limits, forSnapshot));
    const m = this.compiled.get(key);
    if (m) this.touch(key, this.modules.get(key)!);
    return m;
  }

  private touch(key: string, entry: Promise<PreparedModule>): void {
    this.counters.cacheHits++;
    // Most recently used last.
    this.modules.delete(key);
    this.modules.set(key, entry);
  }

  private forget(key: string): void {
    this.modules.delete(key);
    this.compiled.delete(key);
    this.sources.delete(key);
    this.onForget?.(key);
  }
}
