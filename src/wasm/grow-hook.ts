/**
 * Exact `memory_limit` detection. A guest whose `memory.grow` (or
 * `table.grow`) is refused at its ceiling gets -1, as the spec says, and
 * decides itself what to do (malloc returns NULL; the program exits non-zero
 * or aborts). To name the reason exactly, every `memory.grow` and every
 * `table.grow` is routed through a small added function that does the same
 * grow and, when it returns -1, sets a bit in an exported flag
 * (`uniwasm_grow_failed`: GROW_REFUSED_MEMORY, GROW_REFUSED_TABLE). A run that
 * ends abnormally with a bit set ended because of that limit.
 *
 * The rewrite appends (types if needed,) one function per hooked memory or
 * table, a global and an export, so no existing index moves; only function
 * bodies that contain a grow are re-encoded (`memory.grow 0` becomes
 * `call $hook`, `table.grow $t` becomes `call $hook_t`). Debug sections,
 * whose code offsets would be stale, are dropped. A module with several
 * memories keeps its memory.grow as is (the reason is then inferred, see
 * guest.ts); every table is hooked.
 */
import { ByteReader, ByteWriter } from "./binary.js";
import { InstructionDecoder } from "./instructions.js";
import { readFunctionBody, readModuleInfo, type ModuleInfo, type ValType } from "./reader.js";
import { assemble, putSection, splitSections, type RawSection } from "./sections.js";

export const GROW_FAILED_EXPORT = "uniwasm_grow_failed";
/** Bits of the flag. */
export const GROW_REFUSED_MEMORY = 1;
export const GROW_REFUSED_TABLE = 2;

const MEMORY_GROW = 0x40;
const TABLE_GROW = (0xfc << 24) | 15;
const REF_BYTE: Partial<Record<ValType, number>> = { funcref: 0x70, externref: 0x6f };

export interface GrowHook {
  bytes: Uint8Array;
  /** Whether the module had a grow to hook. */
  changed: boolean;
  /**
   * The module's memory.grow: "hooked", "unhooked" (several memories or a
   * 64-bit one: the sandbox infers the reason), or "none" in the code.
   */
  memoryGrow: "hooked" | "unhooked" | "none";
}

/** Content of a vector section after its count, and the count. */
function vectorTail(bytes: Uint8Array, info: ModuleInfo, id: number): { count: number; tail: Uint8Array } {
  const s = info.sections.find((x) => x.id === id);
  if (!s) return { count: 0, tail: new Uint8Array(0) };
  const r = new ByteReader(bytes, s.contentOffset, s.contentOffset + s.size, "section");
  const count = r.u32();
  return { count, tail: bytes.subarray(r.pos, s.contentOffset + s.size) };
}

function appendToVector(bytes: Uint8Array, info: ModuleInfo, id: number, extra: Uint8Array[]): Uint8Array {
  const { count, tail } = vectorTail(bytes, info, id);
  const w = new ByteWriter(tail.length + 64).u32(count + extra.length).bytes(tail);
  for (const e of extra) w.bytes(e);
  return w.toBytes();
}

interface Site {
  at: number;
  len: number;
  /** Index into the hook list. */
  hook: number;
}

export function hookGrow(bytes: Uint8Array, info: ModuleInfo = readModuleInfo(bytes)): GrowHook {
  if (info.exports.some((e) => e.name === GROW_FAILED_EXPORT)) return { bytes, changed: false, memoryGrow: "unhooked" };
  const memories = info.importedMemoryCount + info.memories.length;
  const imported = info.imports.find((i) => i.kind === "memory");
  const memLimits = info.memories[0] ?? (imported?.kind === "memory" ? imported.memory : undefined);
  const hookMemory = memories === 1 && memLimits !== undefined && !memLimits.is64;
  const tableTypes: ValType[] = [
    ...info.imports.flatMap((i) => (i.kind === "table" ? [i.table.refType] : [])),
    ...info.tables.map((t) => t.refType),
  ];

  // Hooks, in the order their functions are appended: "memory" or a table index.
  const hooks: ("memory" | number)[] = [];
  const hookOf = new Map<"memory" | number, number>();
  const hookFor = (key: "memory" | number): number => {
    let h = hookOf.get(key);
    if (h === undefined) {
      h = hooks.length;
      hooks.push(key);
      hookOf.set(key, h);
    }
    return h;
  };

  // Where each body's grows are (offset of the opcode, length with its immediates).
  const decoder = new InstructionDecoder();
  const sites: Site[][] = [];
  let memoryGrow: GrowHook["memoryGrow"] = "none";
  info.codeBodies.forEach((_, i) => {
    const body = readFunctionBody(bytes, info, i);
    const r = new ByteReader(bytes, body.codeOffset, body.end, "code");
    const found: Site[] = [];
    while (!r.atEnd()) {
      const at = r.pos;
      decoder.next(r);
      if (decoder.opcode === MEMORY_GROW) {
        memoryGrow = hookMemory ? "hooked" : "unhooked";
        if (hookMemory) found.push({ at, len: r.pos - at, hook: hookFor("memory") });
      } else if (decoder.opcode === TABLE_GROW) {
        // 0xfc, the sub-opcode (LEB), then the table index (LEB): read it back.
        const imm = new ByteReader(bytes, at + 1, r.pos, "code");
        imm.u32();
        const table = imm.u32();
        if (REF_BYTE[tableTypes[table]!] !== undefined) found.push({ at, len: r.pos - at, hook: hookFor(table) });
      }
    }
    sites.push(found);
  });
  if (hooks.length === 0) return { bytes, changed: false, memoryGrow };

  const firstHook = info.importedFunctionCount + info.functions.length;
  const globalIndex = info.importedGlobalCount + info.globals.length;
  const sections: RawSection[] = splitSections(bytes, info).filter((s) => !(s.id === 0 && s.name.startsWith("custom:.debug")));

  // Types: (i32) -> i32 for memory.grow, (ref, i32) -> i32 for table.grow; reused when the module has them.
  const newTypes: Uint8Array[] = [];
  const addedTypes = new Map<string, number>();
  const typeOf = (params: ValType[]): number => {
    const found = info.types.findIndex((t) => t.params.length === params.length && t.params.every((p, i) => p === params[i]) && t.results.length === 1 && t.results[0] === "i32");
    if (found >= 0) return found;
    const key = params.join(",");
    const known = addedTypes.get(key);
    if (known !== undefined) return known;
    const index = info.types.length + newTypes.length;
    const w = new ByteWriter().u8(0x60).u32(params.length);
    for (const p of params) w.u8(p === "i32" ? 0x7f : REF_BYTE[p]!);
    newTypes.push(w.u32(1).u8(0x7f).toBytes());
    addedTypes.set(key, index);
    return index;
  };
  const hookTypes = hooks.map((h) => (h === "memory" ? typeOf(["i32"]) : typeOf([tableTypes[h]!, "i32"])));
  if (newTypes.length > 0) putSection(sections, 1, "type", appendToVector(bytes, info, 1, newTypes));
  putSection(sections, 3, "function", appendToVector(bytes, info, 3, hookTypes.map((t) => new ByteWriter().u32(t).toBytes())));
  putSection(sections, 6, "global", appendToVector(bytes, info, 6, [Uint8Array.of(0x7f, 0x01, 0x41, 0x00, 0x0b)]));
  putSection(sections, 7, "export", appendToVector(bytes, info, 7, [new ByteWriter().name(GROW_FAILED_EXPORT).u8(0x03).u32(globalIndex).toBytes()]));

  const code = new ByteWriter(bytes.length);
  code.u32(info.codeBodies.length + hooks.length);
  const calls = hooks.map((_, h) => new ByteWriter().u8(0x10).u32(firstHook + h).toBytes());
  info.codeBodies.forEach((b, i) => {
    const found = sites[i]!;
    if (found.length === 0) {
      code.u32(b.size).bytes(bytes.subarray(b.offset, b.offset + b.size));
      return;
    }
    const body = new ByteWriter(b.size + found.length * 4);
    let from = b.offset;
    for (const s of found) {
      body.bytes(bytes.subarray(from, s.at)).bytes(calls[s.hook]!);
      from = s.at + s.len;
    }
    body.bytes(bytes.subarray(from, b.offset + b.size));
    const out = body.toBytes();
    code.u32(out.length).bytes(out);
  });
  for (const h of hooks) {
    const hook = h === "memory" ? memoryHook(globalIndex) : tableHook(h, globalIndex);
    code.u32(hook.length).bytes(hook);
  }
  putSection(sections, 10, "code", code.toBytes());
  return { bytes: assemble(sections), changed: true, memoryGrow };
}

/**
 * (func $hook (param $pages i32) (result i32) (local $old i32)
 *   (local.tee $old (memory.grow (local.get $pages)))
 *   (if (i32.eq (i32.const -1)) (then (global.set $failed (i32.or (global.get $failed) (i32.const 1)))))
 *   (local.get $old))
 */
function memoryHook(flag: number): Uint8Array {
  return new ByteWriter()
    .bytes(Uint8Array.of(0x01, 0x01, 0x7f)) // one i32 local
    .bytes(Uint8Array.of(0x20, 0x00, 0x40, 0x00, 0x22, 0x01))
    .bytes(setFlag(flag, GROW_REFUSED_MEMORY))
    .bytes(Uint8Array.of(0x20, 0x01, 0x0b))
    .toBytes();
}

/** The same for `table.grow $t` (param $init ref) (param $n i32). */
function tableHook(table: number, flag: number): Uint8Array {
  return new ByteWriter()
    .bytes(Uint8Array.of(0x01, 0x01, 0x7f)) // one i32 local (index 2)
    .bytes(Uint8Array.of(0x20, 0x00, 0x20, 0x01, 0xfc, 0x0f))
    .u32(table)
    .bytes(Uint8Array.of(0x22, 0x02))
    .bytes(setFlag(flag, GROW_REFUSED_TABLE))
    .bytes(Uint8Array.of(0x20, 0x02, 0x0b))
    .toBytes();
}

/** With the grow's result on the stack: if it is -1, or `bit` into the flag. */
function setFlag(flag: number, bit: number): Uint8Array {
  return new ByteWriter()
    .bytes(Uint8Array.of(0x41, 0x7f, 0x46, 0x04, 0x40, 0x23))
    .u32(flag)
    .bytes(Uint8Array.of(0x41, bit, 0x72, 0x24))
    .u32(flag)
    .u8(0x0b)
    .toBytes();
}

/** Which grows a hooked instance had refused since the flag was last reset (undefined: not hooked). */
export function growRefused(exports: WebAssembly.Exports): { memory: boolean; table: boolean } | undefined {
  const g = exports[GROW_FAILED_EXPORT];
  if (!(g instanceof WebAssembly.Global)) return undefined;
  const v = g.value as number;
  return { memory: (v & GROW_REFUSED_MEMORY) !== 0, table: (v & GROW_REFUSED_TABLE) !== 0 };
}

/** Clears the flag (before each reactor call). */
export function resetGrowFailed(exports: WebAssembly.Exports): void {
  const g = exports[GROW_FAILED_EXPORT];
  if (g instanceof WebAssembly.Global) g.value = 0;
}
