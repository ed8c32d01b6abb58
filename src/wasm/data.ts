/**
 * Where a module's static data ends: the first free address of memory 0
 * after its active data segments, which is where a host may place a call's
 * input when the guest has no allocator (the plugin calling convention,
 * docs/extensions.md). An exported `__heap_base` global (what wasm-ld
 * emits) is preferred when present, since the stack may sit past the data.
 */
import { ByteReader } from "./binary.js";
import type { ModuleInfo } from "./reader.js";

/**
 * The end of memory 0's active data segments (0 when there are none), or
 * undefined when an offset is not a constant (then the end is unknown).
 */
export function dataSegmentsEnd(bytes: Uint8Array, info: ModuleInfo): number | undefined {
  const section = info.sections.find((s) => s.id === 11);
  if (!section) return 0;
  const r = new ByteReader(bytes, section.contentOffset, section.contentOffset + section.size, "data");
  const count = r.u32();
  let end = 0;
  for (let i = 0; i < count; i++) {
    const flags = r.u32();
    if (flags === 1) {
      r.skip(r.u32()); // passive: placed only by memory.init
      continue;
    }
    const memory = flags === 2 ? r.u32() : 0;
    if (flags > 2) return undefined;
    const op = r.u8();
    let offset: number | undefined;
    if (op === 0x41) offset = r.s32() >>> 0; // i32.const
    else return undefined; // global.get or an extended constant: known only at instantiation
    if (r.u8() !== 0x0b) return undefined;
    const size = r.u32();
    r.skip(size);
    if (memory === 0) end = Math.max(end, offset + size);
  }
  return end;
}
