/**
 * Module rewrites the sandbox applies before compiling: a memory ceiling and
 * deterministic fuel metering. Both re-encode only the sections they change;
 * function indices never move, so the name section and backtraces stay valid.
 */
import { ByteReader, ByteWriter } from "./binary.js";
import { WasmError, WasmLimitError, WasmUnsupportedError } from "./errors.js";
import { Flow, InstructionDecoder, Op, BLOCKTYPE_EMPTY } from "./instructions.js";
import { readFunctionBody, readModuleInfo, type Limits, type ModuleInfo } from "./reader.js";
import { assemble, putSection, splitSections, type RawSection } from "./sections.js";

/** 64 KiB, the wasm page size. */
export const WASM_PAGE_BYTES = 65536;

// ---- memory limit -------------------------------------------------------------

export interface LimitedMemory {
  /** Index in the memory index space. */
  index: number;
  min: number;
  /** The maximum the module declared (undefined: none). */
  declaredMax: number | undefined;
  /** The maximum it has now. */
  max: number;
}

export interface ImportedMemoryRequirement {
  module: string;
  name: string;
  index: number;
  min: number;
  declaredMax: number | undefined;
  shared: boolean;
  is64: boolean;
  /** The maximum to create it with: the lower of the host limit and the declared one. */
  max: number;
}

export interface MemoryLimitResult {
  /** The rewritten module (the input itself when nothing had to change). */
  bytes: Uint8Array;
  changed: boolean;
  /** Memories the module defines, with their new maxima. */
  memories: LimitedMemory[];
  /**
   * Imported memories: the caller creates them, so the limit is theirs to
   * apply: `new WebAssembly.Memory({ initial: min, maximum: max, shared })`.
   */
  importedMemories: ImportedMemoryRequirement[];
}

/**
 * Caps every memory at `maxPages` 64 KiB pages: a defined memory's maximum
 * is lowered (or set, when it has none), so `memory.grow` past it returns -1
 * as the spec says. A memory whose minimum is already above the cap cannot
 * run within it and is refused with WasmLimitError.
 */
export function limitMemory(bytes: Uint8Array, maxPages: number, info: ModuleInfo = readModuleInfo(bytes)): MemoryLimitResult {
  if (!Number.isSafeInteger(maxPages) || maxPages < 0) {
    throw new RangeError(`maxPages must be a non-negative integer, got ${maxPages}`);
  }
  const importedMemories: ImportedMemoryRequirement[] = [];
  for (const imp of info.imports) {
    if (imp.kind !== "memory") continue;
    const m = imp.memory;
    checkMinimum(`imported memory "${imp.module}" "${imp.name}"`, m, maxPages);
    importedMemories.push({
      module: imp.module,
      name: imp.name,
      index: imp.index,
      min: m.min,
      declaredMax: m.max,
      shared: m.shared,
      is64: m.is64,
      max: Math.min(maxPages, m.max ?? maxPages),
    });
  }

  let changed = false;
  const memories: LimitedMemory[] = [];
  const limited: Limits[] = info.memories.map((m, i) => {
    const index = info.importedMemoryCount + i;
    checkMinimum(`memory ${index}`, m, maxPages);
    const max = m.is64 ? Math.min(maxPages, m.max ?? maxPages) : Math.min(maxPages, m.max ?? maxPages, 65536);
    if (max !== m.max) changed = true;
    memories.push({ index, min: m.min, declaredMax: m.max, max });
    return { ...m, max };
  });
  if (!changed) return { bytes, changed, memories, importedMemories };

  const w = new ByteWriter();
  w.u32(limited.length);
  for (const m of limited) {
    w.u8(1 | (m.shared ? 2 : 0) | (m.is64 ? 4 : 0));
    if (m.is64) w.u64(m.min).u64(m.max!);
    else w.u32(m.min).u32(m.max!);
  }
  const sections = splitSections(bytes, info);
  putSection(sections, 5, "memory", w.toBytes());
  return { bytes: assemble(sections), changed, memories, importedMemories };
}

function checkMinimum(what: string, m: Limits, maxPages: number): void {
  if (m.min > maxPages) {
    throw new WasmLimitError(
      "maxMemoryPages",
      m.min,
      maxPages,
      `${what} needs ${m.min} pages (${mib(m.min)}) to start, above the memory limit of ${mib(maxPages)}; raise the limit or shrink the module's initial memory`,
    );
  }
}

function mib(pages: number): string {
  return `${(pages * WASM_PAGE_BYTES) / (1024 * 1024)} MiB`;
}

// ---- table limit ---------------------------------------------------------------

export interface LimitedTable {
  /** Index in the table index space. */
  index: number;
  min: number;
  /** The maximum the module declared (undefined: none). */
  declaredMax: number | undefined;
  /** The maximum it has now. */
  max: number;
}

export interface TableLimitResult {
  bytes: Uint8Array;
  changed: boolean;
  /** Tables the module defines, with their new maxima. */
  tables: LimitedTable[];
}

/**
 * Bounds the elements of all the module's tables together at `maxElements`,
 * as limitMemory bounds memory: a table's elements live outside linear memory
 * (V8 allocates ~16 bytes of heap and ~12 bytes off-heap per funcref element),
 * so without a maximum one `table.grow` can make the host allocate gigabytes.
 *
 * Each defined table's maximum is lowered (or set) to its minimum plus an
 * equal share of the headroom, `maxElements` minus every table's minimum, so
 * the maxima never sum above `maxElements`; a declared maximum below that is
 * kept. `table.grow` past a maximum returns -1 as the spec says. Tables whose
 * minima alone exceed `maxElements` are refused with WasmLimitError
 * ("maxTableElements"). Imported tables count with their minimum (the host
 * links none, so such a module does not link anyway).
 */
export function limitTables(bytes: Uint8Array, maxElements: number, info: ModuleInfo = readModuleInfo(bytes)): TableLimitResult {
  if (!Number.isSafeInteger(maxElements) || maxElements < 0) {
    throw new RangeError(`maxElements must be a non-negative integer, got ${maxElements}`);
  }
  const t64 = info.tables.findIndex((t) => t.limits.is64);
  if (t64 >= 0) throw new WasmUnsupportedError("table64", info.sections.find((s) => s.id === 4)?.offset ?? 0, `table ${info.importedTableCount + t64} has 64-bit indexes`);
  const importedMin = info.imports.reduce((n, i) => n + (i.kind === "table" ? i.table.limits.min : 0), 0);
  const minima = importedMin + info.tables.reduce((n, t) => n + t.limits.min, 0);
  if (minima > maxElements) {
    throw new WasmLimitError(
      "maxTableElements",
      minima,
      maxElements,
      `the module's tables need ${minima} elements to start, above the table limit of ${maxElements} elements; raise the limit`,
    );
  }
  const share = info.tables.length === 0 ? 0 : Math.floor((maxElements - minima) / info.tables.length);
  let changed = false;
  const tables: LimitedTable[] = [];
  const limited = info.tables.map((t, i) => {
    const max = Math.min(t.limits.min + share, t.limits.max ?? Infinity);
    if (max !== t.limits.max) changed = true;
    tables.push({ index: info.importedTableCount + i, min: t.limits.min, declaredMax: t.limits.max, max });
    return { refType: t.refType, min: t.limits.min, max };
  });
  if (!changed) return { bytes, changed, tables };
  const w = new ByteWriter();
  w.u32(limited.length);
  for (const t of limited) w.u8(t.refType === "funcref" ? 0x70 : 0x6f).u8(0x01).u32(t.min).u32(t.max);
  const sections = splitSections(bytes, info);
  putSection(sections, 4, "table", w.toBytes());
  return { bytes: assemble(sections), changed, tables };
}

// ---- fuel ----------------------------------------------------------------------

/** Export name of the fuel global added by instrumentFuel. */
export const FUEL_EXPORT = "uniwasm_fuel";
/** Export name of a deferred start function (FuelOptions.deferStart). */
export const START_EXPORT = "uniwasm_start";

/**
 * Where fuel is charged. "loop": at function entries and loop headers only,
 * each charge paying for every instruction up to the next one, conditional
 * code included (an upper bound: an arm not taken is paid for anyway).
 * "block": also at every if/else arm and join point, so fuel counts the
 * instructions actually run, except that code after a `br_if` or after a loop
 * is paid with the code before it; more checks, more overhead.
 */
export type FuelGranularity = "loop" | "block";

export interface FuelOptions {
  /** Default "loop". */
  granularity?: FuelGranularity;
  /** Export name of the fuel global (default `uniwasm_fuel`). */
  exportName?: string;
  /**
   * The global's initial value: the fuel available to a start function and to
   * any code run before the host sets the global. Default 0, so a host that
   * forgets to set fuel gets a fuel trap, never an unmetered run.
   */
  initialFuel?: bigint;
  /**
   * Turn a start function into an export named `startExport` (default
   * `uniwasm_start`) instead of running it during instantiation, so the host
   * can set the fuel of each instance first and then call it. Without this, a
   * start function runs on `initialFuel`.
   */
  deferStart?: boolean;
  startExport?: string;
}

export interface FuelInstrumentation {
  bytes: Uint8Array;
  exportName: string;
  /** Index of the fuel global in the global index space. */
  globalIndex: number;
  /** Defined functions rewritten. */
  functions: number;
  /** Charge sequences inserted (one per metered basic block). */
  chargePoints: number;
  /** Custom sections removed because they hold code offsets the rewrite invalidates. */
  droppedSections: string[];
  /** With deferStart and a start function: the export the host must call once, after setting fuel. */
  startExport: string | undefined;
  /** Maps code offsets of the instrumented module back to the original (see originalOffset). */
  offsetMap: OffsetMap;
}

/**
 * Code offsets of an instrumented module and where they came from: entry i
 * covers `[instrumented[i], instrumented[i + 1])`, copied from `original[i]`
 * on, or, when `inserted[i]`, added by the rewrite at `original[i]`. Plain
 * arrays, so it survives structured cloning to a worker.
 */
export interface OffsetMap {
  instrumented: number[];
  original: number[];
  inserted: boolean[];
}

/**
 * The original module's offset for a code offset of the instrumented one (a
 * trap frame's offset), or undefined before the code section. An offset in
 * inserted fuel code maps to the instruction it was inserted before.
 */
export function originalOffset(map: OffsetMap, offset: number): number | undefined {
  let lo = 0;
  let hi = map.instrumented.length - 1;
  if (hi < 0 || offset < map.instrumented[0]!) return undefined;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (map.instrumented[mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  return map.inserted[lo] ? map.original[lo]! : map.original[lo]! + (offset - map.instrumented[lo]!);
}

/**
 * Adds deterministic fuel metering.
 *
 * An exported mutable i64 global holds the remaining fuel. Code is cut into
 * metered blocks; at the start of each, the cost of its instructions (one per
 * instruction; structural ones such as block/loop/end/nop/drop are free, as in
 * wasmtime) is subtracted, and when the result is negative the block traps
 * with `unreachable` before running any of it. Where blocks start depends on
 * the granularity (see FuelGranularity): with "loop", at function entries and
 * loop headers, each charge paying for everything up to the next one; with
 * "block", also at every if/else arm, catch, and point a branch lands on.
 * Entering a `block` or falling out of a loop never starts a new metered
 * block, and code after `br_if` is paid with the code before it: one check
 * per loop iteration instead of two.
 *
 * The count depends only on the code path, so the same input always stops at
 * the same instruction. A trap raised while the global is negative is a fuel
 * trap (a failed charge stores its negative value and traps at once; nothing
 * else makes it negative); see `isFuelExhausted`.
 */
export function instrumentFuel(bytes: Uint8Array, opts: FuelOptions = {}, info: ModuleInfo = readModuleInfo(bytes)): FuelInstrumentation {
  const exportName = opts.exportName ?? FUEL_EXPORT;
  const initialFuel = opts.initialFuel ?? 0n;
  if (initialFuel < 0n || initialFuel >= 1n << 63n) throw new RangeError(`initialFuel must be in [0, 2^63), got ${initialFuel}`);
  if (info.exports.some((e) => e.name === exportName)) {
    throw new WasmError("WASM_REWRITE", `the module already exports "${exportName}" (already fuel-instrumented?)`);
  }
  const deferStart = opts.deferStart === true && info.start !== undefined;
  const startExport = deferStart ? (opts.startExport ?? START_EXPORT) : undefined;
  if (startExport !== undefined && (startExport === exportName || info.exports.some((e) => e.name === startExport))) {
    throw new WasmError("WASM_REWRITE", `cannot export the start function as "${startExport}": the name is taken`);
  }
  const globalIndex = info.importedGlobalCount + info.globals.length;
  const sections = splitSections(bytes, info);

  // global section: existing entries + (mut i64) initialized to initialFuel
  const globals = sectionContent(sections, 6);
  const gw = new ByteWriter(globals.length + 16);
  gw.u32(info.globals.length + 1);
  gw.bytes(globals.length > 0 ? afterCount(globals, "global") : globals);
  gw.u8(0x7e).u8(0x01).u8(Op.i64Const).s64(initialFuel).u8(Op.end);
  putSection(sections, 6, "global", gw.toBytes());

  // export section: existing entries + the fuel global
  const exports = sectionContent(sections, 7);
  const ew = new ByteWriter(exports.length + 32);
  ew.u32(info.exports.length + 1 + (startExport !== undefined ? 1 : 0));
  ew.bytes(exports.length > 0 ? afterCount(exports, "export") : exports);
  ew.name(exportName).u8(0x03).u32(globalIndex);
  if (startExport !== undefined) ew.name(startExport).u8(0x00).u32(info.start!);
  putSection(sections, 7, "export", ew.toBytes());
  if (deferStart) sections.splice(sections.findIndex((s) => s.id === 8), 1);

  // code section
  let chargePoints = 0;
  const offsetMap: OffsetMap = { instrumented: [], original: [], inserted: [] };
  if (info.codeBodies.length > 0) {
    const cw = new ByteWriter(sectionContent(sections, 10).length * 2);
    cw.u32(info.codeBodies.length);
    const meter = new BodyMeter(bytes, globalIndex, opts.granularity ?? "loop");
    for (let i = 0; i < info.codeBodies.length; i++) {
      const body = meter.rewrite(info, i);
      chargePoints += meter.lastChargePoints;
      cw.u32(body.length);
      // Offsets relative to the code section's content, made absolute below.
      const m = meter.lastMap;
      for (let j = 0; j < m.instrumented.length; j++) {
        offsetMap.instrumented.push(cw.length + m.instrumented[j]!);
        offsetMap.original.push(m.original[j]!);
        offsetMap.inserted.push(m.inserted[j]!);
      }
      cw.bytes(body);
    }
    putSection(sections, 10, "code", cw.toBytes());
  }

  const droppedSections: string[] = [];
  const kept = sections.filter((s) => {
    const drop = s.id === 0 && offsetDependentCustomSection(s.name.slice("custom:".length));
    if (drop) droppedSections.push(s.name.slice("custom:".length));
    return !drop;
  });

  const codeStart = contentOffset(kept, 10);
  for (let j = 0; j < offsetMap.instrumented.length; j++) offsetMap.instrumented[j]! += codeStart;

  return {
    bytes: assemble(kept),
    offsetMap,
    exportName,
    globalIndex,
    functions: info.codeBodies.length,
    chargePoints,
    droppedSections,
    startExport,
  };
}

/** Offset of a section's content in the module `assemble(sections)` builds. */
function contentOffset(sections: RawSection[], id: number): number {
  let offset = 8;
  for (const s of sections) {
    const header = 1 + new ByteWriter(8).u32(s.content.length).length;
    if (s.id === id) return offset + header;
    offset += header + s.content.length;
  }
  return offset;
}

/** DWARF, source maps and linking metadata point at code offsets the rewrite moves. */
function offsetDependentCustomSection(name: string): boolean {
  return name.startsWith(".debug_") || name === "sourceMappingURL" || name.startsWith("reloc.") || name === "linking";
}

function sectionContent(sections: RawSection[], id: number): Uint8Array {
  return sections.find((s) => s.id === id)?.content ?? new Uint8Array(0);
}

/** The entries of a vector section, without its leading count. */
function afterCount(content: Uint8Array, section: string): Uint8Array {
  const r = new ByteReader(content, 0, content.length, section);
  r.u32();
  return content.subarray(r.pos);
}

interface Frame {
  kind: Flow.Block | Flow.Loop | Flow.If | Flow.Try;
  /** A branch lands after this frame's `end` (only tracked for blocks). */
  targeted: boolean;
  /** Metered block that was paying when this construct was entered (-1: dead code). */
  entry: number;
}

/** What is inserted at a point of the body. */
const enum Insert {
  /** local = global (function entry, after a call, at a catch handler). */
  Load = 0,
  /** global = local (before control leaves the function). */
  Store = 1,
  /** local -= cost of metered block `arg`; trap (storing the negative result) when it would go negative. */
  Charge = 2,
}

/**
 * Rewrites one function body at a time.
 *
 * In a function with a loop, fuel lives in a local (a register, in compiled
 * code) and in the global only across calls: the local is loaded at entry and
 * after every call, and stored before every call, return, tail call and
 * throw. That makes a loop's check cost a compare and a subtract. A function
 * without loops charges once or a few times per call, so it works on the
 * global directly and saves the loads and stores around its calls (for small
 * call-heavy functions, a third of the overhead). A failed charge stores the
 * negative value before trapping. So the global is exact whenever another
 * function or the host can look at it, except after a trap other than fuel
 * exhaustion, where it may lag by what the trapping function charged since
 * its last call.
 */
class BodyMeter {
  private readonly decoder = new InstructionDecoder();
  lastChargePoints = 0;
  /** Offset map of the last body, relative to the start of its rewritten bytes. */
  lastMap: OffsetMap = { instrumented: [], original: [], inserted: [] };

  constructor(
    private readonly bytes: Uint8Array,
    private readonly globalIndex: number,
    private readonly granularity: FuelGranularity,
  ) {}

  rewrite(info: ModuleInfo, definedIndex: number): Uint8Array {
    const { bytes } = this;
    const funcIndex = info.importedFunctionCount + definedIndex;
    const body = readFunctionBody(bytes, info, definedIndex);
    const fuelLocal = info.types[info.functions[definedIndex]!]!.params.length + body.localCount;
    const r = new ByteReader(bytes, body.codeOffset, body.end, "code");
    const d = this.decoder;
    const perBlock = this.granularity === "block";
    // Metered blocks: their costs, charged where their Charge insert sits.
    const costs: number[] = [];
    // Inserts, in body order: offset, what, and the metered block for charges.
    const at: number[] = [];
    const what: Insert[] = [];
    const arg: number[] = [];
    const frames: Frame[] = [];
    let hasLoop = false;

    function insert(pos: number, kind: Insert, block = -1): void {
      at.push(pos);
      what.push(kind);
      arg.push(block);
    }
    function newBlock(pos: number): number {
      costs.push(0);
      insert(pos, Insert.Charge, costs.length - 1);
      return costs.length - 1;
    }
    /** Marks the branch target; true when it is the function itself (a return). */
    function target(depth: number): boolean {
      const f = frames[frames.length - 1 - depth];
      if (f === undefined) r.fail(`branch depth ${depth} exceeds the ${frames.length} enclosing blocks`, r.pos);
      f.targeted = true;
      return depth === frames.length - 1;
    }
    /** Where code that control can reach from elsewhere is paid for. */
    function join(f: Frame): number {
      return perBlock ? newBlock(r.pos) : f.entry;
    }
    function top(kind: Frame["kind"], name: string): Frame {
      const f = frames[frames.length - 1];
      if (frames.length <= 1 || f!.kind !== kind) r.fail(`${name} outside ${kind === Flow.If ? "an if" : "a try"}`, r.pos - 1);
      return f!;
    }

    insert(r.pos, Insert.Load);
    // Index of the metered block paying for the current instruction; -1 in dead code.
    let cur = newBlock(r.pos);
    frames.push({ kind: Flow.Block, targeted: false, entry: cur });
    while (frames.length > 0) {
      if (r.atEnd()) r.fail(`function ${funcIndex} body ends without its final end`);
      const start = r.pos;
      const flow = d.next(r);
      if (cur >= 0) costs[cur] += d.cost;
      if (d.leaves) insert(start, Insert.Store);
      if (d.call) insert(r.pos, Insert.Load);
      switch (flow) {
        case Flow.Plain:
        case Flow.Exit:
          if (flow === Flow.Exit) cur = -1;
          break;
        case Flow.Block:
        case Flow.Try:
          frames.push({ kind: flow, targeted: false, entry: cur });
          break;
        case Flow.Loop:
          hasLoop = true;
          // A loop header is a backward branch target: it always pays for itself.
          frames.push({ kind: Flow.Loop, targeted: false, entry: cur });
          cur = newBlock(r.pos);
          break;
        case Flow.If: {
          const f: Frame = { kind: Flow.If, targeted: false, entry: cur };
          frames.push(f);
          cur = join(f);
          break;
        }
        case Flow.Else:
          cur = join(top(Flow.If, "else"));
          break;
        case Flow.Catch: {
          const f = top(Flow.Try, "catch");
          insert(r.pos, Insert.Load); // the thrower stored its fuel before throwing
          cur = join(f);
          break;
        }
        case Flow.Delegate:
          cur = join(top(Flow.Try, "delegate"));
          frames.pop();
          break;
        case Flow.End: {
          const f = frames.pop()!;
          if (frames.length === 0) {
            insert(start, Insert.Store); // falling off the end returns
            break;
          }
          if (f.kind === Flow.Loop) {
            // Falling out of a loop happens once per entry into it.
            cur = f.entry;
          } else if (f.kind === Flow.If || f.kind === Flow.Try || f.targeted) {
            // Arms, handlers or branches join here.
            cur = join(f);
          } else if (!perBlock) {
            cur = f.entry;
          }
          break;
        }
        case Flow.Br:
          if (target(d.label)) insert(start, Insert.Store);
          cur = -1;
          break;
        case Flow.BrIf:
          if (target(d.label)) insert(start, Insert.Store);
          break;
        case Flow.BrTable: {
          let returns = false;
          for (const t of d.targets) returns = target(t) || returns;
          if (returns) insert(start, Insert.Store);
          cur = -1;
          break;
        }
      }
    }
    if (!r.atEnd()) r.fail(`${r.remaining} bytes after the final end of function ${funcIndex}`);

    // Inserts were recorded in instruction order, but a Store "before" an
    // instruction can follow a Load recorded "after" the previous one at the
    // same offset, which is the order wanted; a stable sort keeps it.
    const order = at.map((_, i) => i).sort((a, b) => at[a]! - at[b]! || a - b);

    const w = new ByteWriter(body.end - body.codeOffset + at.length * 16 + 64);
    const bodyStart = info.codeBodies[definedIndex]!.offset;
    const useLocal = hasLoop;
    if (useLocal) {
      // Local declarations: the existing ones plus one i64 for the fuel.
      const decls = new ByteReader(bytes, bodyStart, body.codeOffset, "code");
      const declCount = decls.u32();
      w.u32(declCount + 1).bytes(bytes.subarray(decls.pos, body.codeOffset)).u32(1).u8(0x7e);
    } else {
      w.bytes(bytes.subarray(bodyStart, body.codeOffset));
    }

    let copied = body.codeOffset;
    let charges = 0;
    const g = this.globalIndex;
    const map: OffsetMap = (this.lastMap = { instrumented: [], original: [], inserted: [] });
    const mark = (original: number, inserted: boolean): void => {
      map.instrumented.push(w.length);
      map.original.push(original);
      map.inserted.push(inserted);
    };

    for (const i of order) {
      const kind = what[i]!;
      if (kind === Insert.Charge ? costs[arg[i]!] === 0 : !useLocal) continue;
      const pos = at[i]!;
      if (pos > copied) {
        mark(copied, false);
        w.bytes(bytes.subarray(copied, pos));
        copied = pos;
      }
      mark(pos, true);
      if (kind === Insert.Load) {
        w.u8(Op.globalGet).u32(g).u8(Op.localSet).u32(fuelLocal);
      } else if (kind === Insert.Store) {
        w.u8(Op.localGet).u32(fuelLocal).u8(Op.globalSet).u32(g);
      } else {
        // if (fuel < cost) { global = fuel - cost; unreachable } fuel -= cost
        // Comparing before subtracting keeps the check off the subtraction's
        // dependency chain: about half the overhead of testing the result.
        const cost = BigInt(costs[arg[i]!]!);
        const get = useLocal ? Op.localGet : Op.globalGet;
        const set = useLocal ? Op.localSet : Op.globalSet;
        const fuel = useLocal ? fuelLocal : g;
        w.u8(get).u32(fuel).u8(Op.i64Const).s64(cost).u8(Op.i64LtS).u8(Op.if).u8(BLOCKTYPE_EMPTY);
        w.u8(get).u32(fuel).u8(Op.i64Const).s64(cost).u8(Op.i64Sub).u8(Op.globalSet).u32(g).u8(Op.unreachable).u8(Op.end);
        w.u8(get).u32(fuel).u8(Op.i64Const).s64(cost).u8(Op.i64Sub).u8(set).u32(fuel);
        charges++;
      }
    }
    mark(copied, false);
    w.bytes(bytes.subarray(copied, body.end));
    this.lastChargePoints = charges;
    return w.toBytes();
  }
}
