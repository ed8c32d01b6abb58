/**
 * Memory definition <-> import rewrites.
 *
 * Recycling (src/sandbox/memory-recycling.ts): an executor hands a finished
 * instance's memory, zeroed, to the next instance of the same shape, so the
 * module must import its memory instead of defining it:
 * `importDefinedMemory` rewrites its one memory into an import
 * (`uniwasm_sandbox.memory`) with the same limits. An instance then behaves
 * exactly as with its own fresh memory: same initial size (only memories that
 * never grew are reused), all zeros, data segments written at instantiation.
 * The kernel links a module's WASI imports only, so it is given a *link view*:
 * a tiny module with the original's function imports and nothing else.
 */
import { ByteWriter } from "./binary.js";
import { readModuleInfo, type ModuleInfo } from "./reader.js";
import { assemble, putSection, splitSections } from "./sections.js";

export const RECYCLED_MEMORY_MODULE = "uniwasm_sandbox";
export const RECYCLED_MEMORY_NAME = "memory";

export interface MemoryImportRewrite {
  bytes: Uint8Array;
  /** Pages the memory starts with, and its maximum (always set: the limit was applied first). */
  min: number;
  max: number;
}

/**
 * Rewrites a module's one defined memory (32-bit, unshared, with a maximum)
 * into an import; undefined when the module does not have that shape.
 */
export function importDefinedMemory(bytes: Uint8Array, info: ModuleInfo = readModuleInfo(bytes)): MemoryImportRewrite | undefined {
  if (info.memories.length !== 1 || info.importedMemoryCount !== 0) return undefined;
  const m = info.memories[0]!;
  if (m.shared || m.is64 || m.max === undefined) return undefined;
  const section = info.sections.find((s) => s.id === 2);
  const w = new ByteWriter();
  w.u32(info.imports.length + 1);
  if (section && info.imports.length > 0) w.bytes(bytes.subarray(info.imports[0]!.offset, section.contentOffset + section.size));
  w.name(RECYCLED_MEMORY_MODULE).name(RECYCLED_MEMORY_NAME).u8(0x02).u8(0x01).u32(m.min).u32(m.max);
  const sections = splitSections(bytes, info).filter((s) => s.id !== 5);
  putSection(sections, 2, "import", w.toBytes());
  return { bytes: assemble(sections), min: m.min, max: m.max };
}

/** A module with only the function imports (and their types) of `bytes`: what the kernel links against. */
export function linkView(bytes: Uint8Array, info: ModuleInfo = readModuleInfo(bytes)): Uint8Array {
  const keep = splitSections(bytes, info).filter((s) => s.id === 1);
  const imports = info.imports.filter((i) => i.kind === "function");
  const section = info.sections.find((s) => s.id === 2);
  if (section && imports.length > 0) {
    const w = new ByteWriter();
    w.u32(imports.length);
    const end = section.contentOffset + section.size;
    info.imports.forEach((imp, i) => {
      if (imp.kind !== "function") return;
      const next = i + 1 < info.imports.length ? info.imports[i + 1]!.offset : end;
      w.bytes(bytes.subarray(imp.offset, next));
    });
    keep.push({ id: 2, name: "import", content: w.toBytes() });
  }
  return assemble(keep);
}

/**
 * The reverse, for modules built with an imported memory: turns a module's
 * one imported memory (e.g. `env.memory`, from `-Wl,--import-memory`) into a
 * memory it defines, with the same limits. For
 * a single instance this is the same thing (the host would create a fresh
 * memory for it anyway), and it lets the kernel's linker, which offers only
 * WASI functions, link it, and limitMemory cap it like any other. Shared
 * memories and modules with several memories are left as they are.
 */
export function defineImportedMemory(bytes: Uint8Array, info: ModuleInfo = readModuleInfo(bytes)): { bytes: Uint8Array; changed: boolean } {
  const memImports = info.imports.filter((i) => i.kind === "memory");
  if (memImports.length !== 1 || info.memories.length > 0) return { bytes, changed: false };
  const imp = memImports[0]!;
  if (imp.kind !== "memory" || imp.memory.shared) return { bytes, changed: false };
  const section = info.sections.find((s) => s.id === 2);
  if (!section) return { bytes, changed: false };
  const at = info.imports.indexOf(imp);
  const end = at + 1 < info.imports.length ? info.imports[at + 1]!.offset : section.contentOffset + section.size;
  const w = new ByteWriter();
  w.u32(info.imports.length - 1);
  // Entries before and after it, byte for byte.
  const first = info.imports[0]!.offset;
  w.bytes(bytes.subarray(first, imp.offset));
  w.bytes(bytes.subarray(end, section.contentOffset + section.size));
  const m = imp.memory;
  const mem = new ByteWriter();
  mem.u32(1);
  mem.u8((m.max !== undefined ? 1 : 0) | (m.is64 ? 4 : 0));
  if (m.is64) {
    mem.u64(m.min);
    if (m.max !== undefined) mem.u64(m.max);
  } else {
    mem.u32(m.min);
    if (m.max !== undefined) mem.u32(m.max);
  }
  const sections = splitSections(bytes, info);
  putSection(sections, 2, "import", w.toBytes());
  putSection(sections, 5, "memory", mem.toBytes());
  return { bytes: assemble(sections), changed: true };
}
