/**
 * Wizer-style snapshots: run a module's initialization once, capture its
 * linear memory and mutable globals, and start later instances from that
 * state without running the initialization again.
 *
 * How a snapshot is taken (see ExecutorPool.snapshot):
 * 1. The module is rewritten so that every mutable global it defines is
 *    exported (`uniwasm_snapshot_global_N`): clang keeps `__stack_pointer`
 *    and friends private, and their values are part of the state.
 * 2. It is instantiated; its memory right after instantiation is the
 *    *baseline* (data segments applied, everything else zero). Any fresh
 *    instance of the same module starts with exactly this memory.
 * 3. The initializer runs (`wizer.initialize` if exported, else `_initialize`).
 * 4. The snapshot keeps the memory size, the 64 KiB pages that differ from the
 *    baseline, and the value of every mutable global.
 *
 * Restoring = instantiate (memory == baseline again), grow memory to the
 * snapshot's size, write the differing pages, set the globals. The result is
 * byte-for-byte the post-initialization state, so the program's later
 * behaviour is the same as after a fresh initialization.
 *
 * Not captured (documented limits, as with Wizer): kernel state (descriptors
 * opened during init, output written during init is discarded, clocks and
 * random values read during init are frozen into the snapshot), table
 * mutations (refused when a table's size changed), imported globals.
 */
import type { SnapshotGlobal } from "../wasm/export-globals.js";

const PAGE = 65536;

/**
 * Captured state. Page data lives in a SharedArrayBuffer so that handing a
 * snapshot to an executor (postMessage) shares it instead of copying it.
 */
export interface Snapshot {
  /** Identifies the snapshot in executors' caches. */
  id: string;
  /** Cache key of the (rewritten) module it was taken from. */
  moduleKey: string;
  /** Memory size after initialization, in pages. */
  memoryPages: number;
  /** Indexes of the pages that differ from the baseline, ascending. */
  pageIndexes: Uint32Array;
  /** Those pages, concatenated (pageIndexes.length * 64 KiB). */
  pageData: SharedArrayBuffer;
  globals: { exportName: string; value: number | bigint }[];
  /** Sizes of the instance's exported tables after init, to refuse restores that could not be exact. */
  tableSizes: Record<string, number>;
  /** Which export ran the initialization. */
  initializer: string;
  /** How long the initialization took when the snapshot was taken, in µs. */
  initMicros: number;
}

/** The export that initializes the module: `wizer.initialize` first, then `_initialize`. */
export function initializerOf(exports: WebAssembly.Exports): string | undefined {
  if (typeof exports["wizer.initialize"] === "function") return "wizer.initialize";
  if (typeof exports["_initialize"] === "function") return "_initialize";
  return undefined;
}

export function copyMemory(memory: WebAssembly.Memory): Uint8Array {
  return new Uint8Array(memory.buffer).slice();
}

function tableSizes(exports: WebAssembly.Exports): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, v] of Object.entries(exports)) if (v instanceof WebAssembly.Table) out[name] = v.length;
  return out;
}

/** Builds a snapshot from the baseline memory and the instance after its initializer ran. */
export function captureSnapshot(args: {
  id: string;
  moduleKey: string;
  baseline: Uint8Array;
  baselineTables: Record<string, number>;
  memory: WebAssembly.Memory;
  exports: WebAssembly.Exports;
  globals: readonly SnapshotGlobal[];
  initializer: string;
  initMicros: number;
}): Snapshot {
  const mem = new Uint8Array(args.memory.buffer);
  const pages = mem.length / PAGE;
  const changed: number[] = [];
  const basePages = args.baseline.length / PAGE;
  for (let p = 0; p < pages; p++) {
    const start = p * PAGE;
    if (p >= basePages) {
      if (!isZero(mem, start, start + PAGE)) changed.push(p);
    } else if (!sameRange(mem, args.baseline, start, start + PAGE)) changed.push(p);
  }
  const pageData = new SharedArrayBuffer(changed.length * PAGE);
  const out = new Uint8Array(pageData);
  changed.forEach((p, i) => out.set(mem.subarray(p * PAGE, (p + 1) * PAGE), i * PAGE));
  const tables = tableSizes(args.exports);
  for (const [name, size] of Object.entries(tables)) {
    if (args.baselineTables[name] !== size) {
      throw new Error(`cannot snapshot: the initializer grew table "${name}" (${args.baselineTables[name]} -> ${size}); table state is not captured`);
    }
  }
  return {
    id: args.id,
    moduleKey: args.moduleKey,
    memoryPages: pages,
    pageIndexes: Uint32Array.from(changed),
    pageData,
    globals: args.globals.map((g) => {
      const v = args.exports[g.exportName];
      if (!(v instanceof WebAssembly.Global)) throw new Error(`snapshot global "${g.exportName}" is not exported`);
      return { exportName: g.exportName, value: v.value as number | bigint };
    }),
    tableSizes: tables,
    initializer: args.initializer,
    initMicros: args.initMicros,
  };
}

/** Puts a freshly instantiated instance into the snapshot's state. */
export function restoreSnapshot(snapshot: Snapshot, memory: WebAssembly.Memory, exports: WebAssembly.Exports): void {
  const current = memory.buffer.byteLength / PAGE;
  if (current > snapshot.memoryPages) {
    throw new Error(`cannot restore snapshot ${snapshot.id}: the fresh instance already has ${current} pages, more than the snapshot's ${snapshot.memoryPages}`);
  }
  if (current < snapshot.memoryPages) memory.grow(snapshot.memoryPages - current);
  const mem = new Uint8Array(memory.buffer);
  const data = new Uint8Array(snapshot.pageData);
  const idx = snapshot.pageIndexes;
  // Copy runs of consecutive pages at once.
  for (let i = 0; i < idx.length; ) {
    let j = i + 1;
    while (j < idx.length && idx[j] === idx[j - 1]! + 1) j++;
    mem.set(data.subarray(i * PAGE, j * PAGE), idx[i]! * PAGE);
    i = j;
  }
  for (const g of snapshot.globals) {
    const v = exports[g.exportName];
    if (!(v instanceof WebAssembly.Global)) throw new Error(`snapshot global "${g.exportName}" is missing from the instance`);
    v.value = g.value;
  }
}

export function snapshotTables(exports: WebAssembly.Exports): Record<string, number> {
  return tableSizes(exports);
}

/** Bytes a snapshot holds (page data). */
export function snapshotBytes(s: Snapshot): number {
  return s.pageData.byteLength;
}

function isZero(a: Uint8Array, start: number, end: number): boolean {
  // 4 bytes at a time: pages are always aligned.
  const w = new Int32Array(a.buffer, a.byteOffset + start, (end - start) / 4);
  for (let i = 0; i < w.length; i++) if (w[i] !== 0) return false;
  return true;
}

function sameRange(a: Uint8Array, b: Uint8Array, start: number, end: number): boolean {
  const wa = new Int32Array(a.buffer, a.byteOffset + start, (end - start) / 4);
  const wb = new Int32Array(b.buffer, b.byteOffset + start, (end - start) / 4);
  for (let i = 0; i < wa.length; i++) if (wa[i] !== wb[i]) return false;
  return true;
}
