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
import { toCompileError } from "../wasm/validate.js";
import type { ModuleLimits } from "../wasm/validate.js";
import type { ResolvedLimits } from "./limits.js";

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
  return { maxMemoryPages: limits.maxMemoryPages, maxTableElements: limits.maxTableElements, fuel: limits.fuel !== null, snapshot };
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
