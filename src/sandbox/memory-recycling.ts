/**
 * Recycled linear memories. Creating a WebAssembly.Memory costs more than the
 * rest of a small instance (V8 reserves 10 GiB of address space for it, and
 * frees it only at a later GC), so executors keep the memories of finished
 * instances and hand them, zeroed, to the next instance of the same shape.
 *
 * For that the module must import its memory instead of defining it:
 * `importDefinedMemory` rewrites its one memory into an import
 * (`uniwasm_sandbox.memory`) with the same limits. An instance then behaves
 * exactly as with its own fresh memory: same initial size (only memories that
 * never grew are reused), all zeros, data segments written at instantiation.
 * The kernel links a module's WASI imports only, so it is given a *link view*:
 * a tiny module with the original's function imports and nothing else.
 */
import { ByteWriter } from "../wasm/binary.js";
import { readModuleInfo, type ModuleInfo } from "../wasm/reader.js";
import { assemble, putSection, splitSections } from "../wasm/sections.js";

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
 * Memories of finished instances, by shape, for the next instance of the same
 * shape. Bounded in count per shape and in bytes overall.
 */
export class MemoryRecycler {
  private readonly free = new Map<string, WebAssembly.Memory[]>();
  private bytes = 0;
  /** Memories handed out from the free lists, and created new. */
  readonly counters = { reused: 0, created: 0 };

  constructor(
    private readonly maxPerShape = 8,
    private readonly maxBytes = 64 * 1024 * 1024,
  ) {}

  take(min: number, max: number): WebAssembly.Memory {
    const list = this.free.get(`${min}/${max}`);
    const m = list?.pop();
    if (m) {
      this.bytes -= m.buffer.byteLength;
      this.counters.reused++;
      return m;
    }
    this.counters.created++;
    return new WebAssembly.Memory({ initial: min, maximum: max });
  }

  /**
   * Gives a memory back after its instance is done. It is kept only if it
   * never grew (a reused memory must look fresh) and there is room; it is
   * zeroed now, so that taking it later costs nothing.
   */
  give(memory: WebAssembly.Memory, min: number, max: number): void {
    const size = memory.buffer.byteLength;
    if (size !== min * 65536 || this.bytes + size > this.maxBytes) return;
    const key = `${min}/${max}`;
    let list = this.free.get(key);
    if (!list) this.free.set(key, (list = []));
    if (list.length >= this.maxPerShape) return;
    new Uint8Array(memory.buffer).fill(0);
    list.push(memory);
    this.bytes += size;
  }
}
