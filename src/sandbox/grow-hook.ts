/**
 * Exact `memory_limit` detection. A guest whose `memory.grow` is refused at
 * the ceiling gets -1, as the spec says, and decides itself what to do (malloc
 * returns NULL; the program exits non-zero or aborts). To name the reason
 * exactly, every `memory.grow` is routed through a small added function that
 * does the same grow and, when it returns -1, sets an exported flag
 * (`uniwasm_grow_failed`). A run that ends abnormally with the flag set ended
 * because of the memory limit.
 *
 * The rewrite appends (a type if needed,) a function, a global and an export,
 * so no existing index moves; only function bodies that contain memory.grow
 * are re-encoded (`memory.grow 0` becomes `call $hook`). Debug sections, whose
 * code offsets would be stale, are dropped.
 */
import { ByteReader, ByteWriter } from "../wasm/binary.js";
import { InstructionDecoder } from "../wasm/instructions.js";
import { readFunctionBody, readModuleInfo, type ModuleInfo } from "../wasm/reader.js";
import { assemble, putSection, splitSections, type RawSection } from "../wasm/sections.js";

export const GROW_FAILED_EXPORT = "uniwasm_grow_failed";
const MEMORY_GROW = 0x40;

export interface GrowHook {
  bytes: Uint8Array;
  /** Whether the module had a memory.grow to hook. */
  changed: boolean;
}

/** Content of a vector section after its count, and the count. */
function vectorTail(bytes: Uint8Array, info: ModuleInfo, id: number): { count: number; tail: Uint8Array } {
  const s = info.sections.find((x) => x.id === id);
  if (!s) return { count: 0, tail: new Uint8Array(0) };
  const r = new ByteReader(bytes, s.contentOffset, s.contentOffset + s.size, "section");
  const count = r.u32();
  return { count, tail: bytes.subarray(r.pos, s.contentOffset + s.size) };
}

function appendToVector(bytes: Uint8Array, info: ModuleInfo, id: number, extra: Uint8Array): Uint8Array {
  const { count, tail } = vectorTail(bytes, info, id);
  return new ByteWriter(tail.length + extra.length + 5).u32(count + 1).bytes(tail).bytes(extra).toBytes();
}

export function hookMemoryGrow(bytes: Uint8Array, info: ModuleInfo = readModuleInfo(bytes)): GrowHook {
  const memories = info.importedMemoryCount + info.memories.length;
  const imported = info.imports.find((i) => i.kind === "memory");
  const limits = info.memories[0] ?? (imported?.kind === "memory" ? imported.memory : undefined);
  if (memories !== 1 || limits === undefined || limits.is64) return { bytes, changed: false };
  if (info.exports.some((e) => e.name === GROW_FAILED_EXPORT)) return { bytes, changed: false };

  // Where each body's memory.grow instructions are (offset of the opcode, length with its immediate).
  const decoder = new InstructionDecoder();
  const sites: { at: number; len: number }[][] = [];
  let any = false;
  info.codeBodies.forEach((_, i) => {
    const body = readFunctionBody(bytes, info, i);
    const r = new ByteReader(bytes, body.codeOffset, body.end, "code");
    const found: { at: number; len: number }[] = [];
    while (!r.atEnd()) {
      const at = r.pos;
      decoder.next(r);
      if (decoder.opcode === MEMORY_GROW) found.push({ at, len: r.pos - at });
    }
    if (found.length > 0) any = true;
    sites.push(found);
  });
  if (!any) return { bytes, changed: false };

  const hookIndex = info.importedFunctionCount + info.functions.length;
  const globalIndex = info.importedGlobalCount + info.globals.length;
  let typeIndex = info.types.findIndex((t) => t.params.length === 1 && t.params[0] === "i32" && t.results.length === 1 && t.results[0] === "i32");
  const sections: RawSection[] = splitSections(bytes, info).filter((s) => !(s.id === 0 && s.name.startsWith("custom:.debug")));
  if (typeIndex < 0) {
    typeIndex = info.types.length;
    putSection(sections, 1, "type", appendToVector(bytes, info, 1, Uint8Array.of(0x60, 0x01, 0x7f, 0x01, 0x7f)));
  }
  putSection(sections, 3, "function", appendToVector(bytes, info, 3, new ByteWriter().u32(typeIndex).toBytes()));
  putSection(sections, 6, "global", appendToVector(bytes, info, 6, Uint8Array.of(0x7f, 0x01, 0x41, 0x00, 0x0b)));
  putSection(sections, 7, "export", appendToVector(bytes, info, 7, new ByteWriter().name(GROW_FAILED_EXPORT).u8(0x03).u32(globalIndex).toBytes()));

  const code = new ByteWriter(bytes.length);
  code.u32(info.codeBodies.length + 1);
  const call = new ByteWriter().u8(0x10).u32(hookIndex).toBytes();
  info.codeBodies.forEach((b, i) => {
    const found = sites[i]!;
    if (found.length === 0) {
      code.u32(b.size).bytes(bytes.subarray(b.offset, b.offset + b.size));
      return;
    }
    const body = new ByteWriter(b.size + found.length * 4);
    let from = b.offset;
    for (const s of found) {
      body.bytes(bytes.subarray(from, s.at)).bytes(call);
      from = s.at + s.len;
    }
    body.bytes(bytes.subarray(from, b.offset + b.size));
    const out = body.toBytes();
    code.u32(out.length).bytes(out);
  });
  // (func $hook (param $pages i32) (result i32) (local $old i32)
  //   (local.tee $old (memory.grow (local.get $pages)))
  //   (if (i32.eq (i32.const -1)) (then (global.set $failed (i32.const 1))))
  //   (local.get $old))
  const hook = new ByteWriter()
    .bytes(Uint8Array.of(0x01, 0x01, 0x7f)) // one i32 local
    .bytes(Uint8Array.of(0x20, 0x00, 0x40, 0x00, 0x22, 0x01, 0x41, 0x7f, 0x46, 0x04, 0x40, 0x41, 0x01, 0x24))
    .u32(globalIndex)
    .bytes(Uint8Array.of(0x0b, 0x20, 0x01, 0x0b))
    .toBytes();
  code.u32(hook.length).bytes(hook);
  putSection(sections, 10, "code", code.toBytes());
  return { bytes: assemble(sections), changed: true };
}

/** Whether a hooked instance had a memory.grow refused (at its memory limit). */
export function growFailed(exports: WebAssembly.Exports): boolean | undefined {
  const g = exports[GROW_FAILED_EXPORT];
  return g instanceof WebAssembly.Global ? g.value === 1 : undefined;
}

/** Clears the flag (before each reactor call). */
export function resetGrowFailed(exports: WebAssembly.Exports): void {
  const g = exports[GROW_FAILED_EXPORT];
  if (g instanceof WebAssembly.Global) g.value = 0;
}
