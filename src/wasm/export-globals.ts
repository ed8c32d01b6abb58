/**
 * Snapshot support in the module: every mutable global the module defines is
 * exported, so that a snapshot (src/sandbox/snapshot.ts) can read and restore
 * it (clang keeps `__stack_pointer` and friends private, and their values are
 * part of the state).
 */
import { ByteWriter } from "./binary.js";
import { readModuleInfo, type ModuleInfo, type ValType } from "./reader.js";
import { assemble, putSection, splitSections } from "./sections.js";
import { FUEL_EXPORT } from "./rewrite.js";

export const SNAPSHOT_GLOBAL_PREFIX = "uniwasm_snapshot_global_";

export interface SnapshotGlobal {
  /** Export name to read and write it through. */
  exportName: string;
  valType: ValType;
}

export interface SnapshotExports {
  bytes: Uint8Array;
  /** Every mutable global the module defines, by the export that reaches it. */
  globals: SnapshotGlobal[];
}

const EXPORT_KIND_GLOBAL = 0x03;
const KIND_BYTE: Record<string, number> = { function: 0, table: 1, memory: 2, global: 3, tag: 4 };

/**
 * Exports every mutable global the module defines (reusing an existing export
 * when there is one). Function and global indices do not move, so names and
 * backtraces stay valid.
 */
export function exportMutableGlobals(bytes: Uint8Array, info: ModuleInfo = readModuleInfo(bytes)): SnapshotExports {
  const exportedAs = new Map<number, string>();
  for (const e of info.exports) if (e.kind === "global" && !exportedAs.has(e.index)) exportedAs.set(e.index, e.name);
  const globals: SnapshotGlobal[] = [];
  const added: { name: string; index: number }[] = [];
  const taken = new Set(info.exports.map((e) => e.name));
  info.globals.forEach((g, i) => {
    if (!g.mutable) return;
    const index = info.importedGlobalCount + i;
    let name = exportedAs.get(index);
    if (name === FUEL_EXPORT) return; // fuel is set per run, never restored
    if (name === undefined) {
      name = `${SNAPSHOT_GLOBAL_PREFIX}${index}`;
      if (taken.has(name)) throw new Error(`cannot export global ${index}: the module already exports "${name}"`);
      added.push({ name, index });
    }
    globals.push({ exportName: name, valType: g.valType });
  });
  if (added.length === 0) return { bytes, globals };

  const w = new ByteWriter();
  w.u32(info.exports.length + added.length);
  for (const e of info.exports) {
    w.name(e.name);
    w.u8(KIND_BYTE[e.kind]!);
    w.u32(e.index);
  }
  for (const a of added) {
    w.name(a.name);
    w.u8(EXPORT_KIND_GLOBAL);
    w.u32(a.index);
  }
  const sections = splitSections(bytes, info);
  putSection(sections, 7, "export", w.toBytes());
  return { bytes: assemble(sections), globals };
}
