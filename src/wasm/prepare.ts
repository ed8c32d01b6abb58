/**
 * Module preparation: the one function that turns a module's bytes into what
 * the sandbox compiles and runs. Every guest goes through it, whatever runs
 * it (inline, an executor thread, a sandboxed process).
 *
 * In order:
 * 1. `checkModule`: structural bounds (ModuleLimits) before anything else;
 * 2. an imported memory becomes a defined one (`defineImportedMemory`);
 * 3. for snapshots, every mutable global is exported (`exportMutableGlobals`);
 * 4. the memory ceiling (`limitMemory`) and the table budget (`limitTables`);
 * 5. every `memory.grow` and `table.grow` reports refusals (`hookGrow`);
 * 6. the memory becomes an import, so executors can recycle memories
 *    (`importDefinedMemory`; the kernel then links against `linkView`);
 * 7. fuel metering, with a start function deferred to an export so that it
 *    runs on the run's fuel (`instrumentFuel`).
 *
 * Pure and synchronous: bytes in, bytes and facts out. It runs wherever the
 * caller wants it to (src/sandbox/prepare-worker.ts keeps it off a serving
 * thread); compiling the result is the caller's.
 */
import type { ModuleLimits } from "./validate.js";
import { checkModule } from "./validate.js";
import { importedFunctions, readModuleInfo, type ExternKind, type ModuleInfo } from "./reader.js";
import { instrumentFuel, limitMemory, limitTables, type ImportedMemoryRequirement, type LimitedTable, type OffsetMap } from "./rewrite.js";
import { bytesOf, frameOrigin, type FrameOrigin } from "./backtrace.js";
import { hookGrow } from "./grow-hook.js";
import { defineImportedMemory, importDefinedMemory, linkView } from "./memory-import.js";
import { exportMutableGlobals, type SnapshotGlobal } from "./export-globals.js";
import { dataSegmentsEnd } from "./data.js";

export interface PrepareOptions {
  /** Linear memory ceiling, in 64 KiB pages. */
  maxMemoryPages: number;
  /** Table elements the instance may have, all tables together. */
  maxTableElements: number;
  /** Instrument for fuel metering. */
  fuel: boolean;
  /** Export every mutable global, for snapshots. */
  snapshot?: boolean;
  /** Turn the defined memory into an import executors can recycle. Default true. */
  recycleMemory?: boolean;
  /** Structural bounds (defaults: DEFAULT_MODULE_LIMITS). */
  moduleLimits?: Partial<ModuleLimits>;
  /** Also return `origin`, to give trap frames in the original module's offsets (asked for when a trap needs it). */
  origin?: boolean;
}

/** A memory import of the original module. */
export interface MemoryImport {
  module: string;
  name: string;
  /** Pages. */
  min: number;
  max?: number | undefined;
  shared?: boolean;
}

/** A function import's type, keyed "module.name" (the kernel linker checks imports against it). */
export interface ImportType {
  params: readonly string[];
  results: readonly string[];
}

export interface PreparedWasm {
  /** The rewritten module, to compile. */
  bytes: Uint8Array;
  /** With recycledMemory: the module's function imports alone, for the kernel's linker. */
  linkView?: Uint8Array;
  metered: boolean;
  maxMemoryPages: number;
  maxTableElements: number;
  /** Memories the host must create (a shared or 64-bit imported memory), with their maxima. */
  importedMemories: ImportedMemoryRequirement[];
  /** The module's tables with their new maxima. */
  tables: LimitedTable[];
  /** Mutable globals exported for snapshots (empty unless prepared for them). */
  snapshotGlobals: SnapshotGlobal[];
  /** Function import types ("module.name"), for the linker's checks. */
  signatures: Map<string, ImportType>;
  /** Function names from the name section (else export names), for backtraces. */
  functionNames: Map<number, string>;
  /** Whether memory.grow reports refusals exactly (see hookGrow); table.grow always does. */
  memoryGrow: "hooked" | "unhooked" | "none";
  /** A metered module's start function, deferred to this export. */
  startExport?: string;
  /** The module's memory was turned into an import of this shape. */
  recycledMemory?: { min: number; max: number };
  /** The original module's exports. */
  exports: { name: string; kind: ExternKind }[];
  /** The original module's memory imports: only a granted extension may provide one (the kernel's linker checks). */
  memoryImports: MemoryImport[];
  /** End of the static data (src/wasm/data.ts): where a call's input goes when the guest has no allocator. */
  dataEnd?: number;
  /** "command" (exports _start), "reactor" (exports _initialize) or "none". */
  entry: "command" | "reactor" | "none";
  /** With options.origin: where the rewritten code came from (see backtrace.ts). */
  origin?: FrameOrigin;
}

export function prepareModule(bytes: Uint8Array, options: PrepareOptions): PreparedWasm {
  const original = checkModule(bytes, options.moduleLimits);
  let b = bytes;
  let info: ModuleInfo = original;
  const step = (r: { bytes: Uint8Array; changed: boolean }): void => {
    if (r.changed) info = readModuleInfo((b = r.bytes));
  };
  step(defineImportedMemory(b, info));
  let snapshotGlobals: SnapshotGlobal[] = [];
  if (options.snapshot) {
    const r = exportMutableGlobals(b, info);
    snapshotGlobals = r.globals;
    step({ bytes: r.bytes, changed: r.bytes !== b });
  }
  const mem = limitMemory(b, options.maxMemoryPages, info);
  step(mem);
  const tables = limitTables(b, options.maxTableElements, info);
  step(tables);
  const hooked = hookGrow(b, info);
  step(hooked);
  let recycledMemory: PreparedWasm["recycledMemory"];
  let view: Uint8Array | undefined;
  const imported = options.recycleMemory === false ? undefined : importDefinedMemory(b, info);
  if (imported) {
    view = linkView(b, info);
    step({ bytes: imported.bytes, changed: true });
    recycledMemory = { min: imported.min, max: imported.max };
  }
  let startExport: string | undefined;
  const beforeFuel = info;
  let fuelMap: OffsetMap | undefined;
  if (options.fuel) {
    const fuel = instrumentFuel(b, { deferStart: true }, info);
    b = fuel.bytes;
    startExport = fuel.startExport;
    fuelMap = fuel.offsetMap;
  }
  const dataEnd = dataSegmentsEnd(bytes, original);
  const exports = original.exports.map((e) => ({ name: e.name, kind: e.kind }));
  const has = (name: string): boolean => exports.some((e) => e.name === name && e.kind === "function");
  return {
    bytes: b,
    ...(view ? { linkView: view } : {}),
    metered: options.fuel,
    maxMemoryPages: options.maxMemoryPages,
    maxTableElements: options.maxTableElements,
    importedMemories: mem.importedMemories,
    tables: tables.tables,
    snapshotGlobals,
    signatures: importTypes(original),
    functionNames: functionNames(original),
    memoryGrow: hooked.memoryGrow,
    ...(startExport ? { startExport } : {}),
    ...(recycledMemory ? { recycledMemory } : {}),
    exports,
    memoryImports: original.imports.flatMap((i) => (i.kind === "memory" ? [{ module: i.module, name: i.name, min: i.memory.min, max: i.memory.max, shared: i.memory.shared }] : [])),
    ...(dataEnd !== undefined ? { dataEnd } : {}),
    entry: has("_start") ? "command" : exports.some((e) => e.name === "_initialize") ? "reactor" : "none",
    ...(options.origin ? { origin: frameOrigin(bytesOf(bytes), original, beforeFuel, fuelMap) } : {}),
  };
}

/**
 * Function import types keyed "module.name". The same import twice with two
 * types cannot be served by one import object, so it is recorded with both
 * types joined by "|", which no host function matches: the linker refuses it.
 */
export function importTypes(info: ModuleInfo): Map<string, ImportType> {
  const sigs = new Map<string, ImportType>();
  for (const f of importedFunctions(info)) {
    const key = `${f.module}.${f.name}`;
    const sig = { params: f.type.params, results: f.type.results };
    const seen = sigs.get(key);
    if (seen && (seen.params.join() !== sig.params.join() || seen.results.join() !== sig.results.join())) {
      sigs.set(key, { params: [...seen.params, "|", ...sig.params], results: [...seen.results, "|", ...sig.results] });
    } else if (!seen) {
      sigs.set(key, sig);
    }
  }
  return sigs;
}

/** Names for backtraces: the name section, else the export names of functions. */
export function functionNames(info: ModuleInfo): Map<number, string> {
  const names = new Map(info.names.functions);
  for (const e of info.exports) if (e.kind === "function" && !names.has(e.index)) names.set(e.index, e.name);
  return names;
}
