/**
 * Module (re)assembly from sections. Rewrites replace the contents of the
 * few sections they change and copy every other section byte for byte, so
 * anything this layer does not understand passes through untouched.
 */
import { ByteWriter } from "./binary.js";
import type { ModuleInfo } from "./reader.js";

export interface RawSection {
  id: number;
  /** Section name as in ModuleInfo.sections (`custom:<name>` for custom ones). */
  name: string;
  /** Contents, without the id byte and size field. */
  content: Uint8Array;
}

const HEADER = Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00);

/** Rank of each known section id in the required order. */
const RANK: Record<number, number> = { 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13 };

export function splitSections(bytes: Uint8Array, info: ModuleInfo): RawSection[] {
  return info.sections.map((s) => ({
    id: s.id,
    name: s.name,
    content: bytes.subarray(s.contentOffset, s.contentOffset + s.size),
  }));
}

/**
 * Replaces the section with `id` (a known, non-custom id), or inserts it in
 * its required position: right after the last known section that must
 * precede it.
 */
export function putSection(sections: RawSection[], id: number, name: string, content: Uint8Array): void {
  const existing = sections.findIndex((s) => s.id === id);
  if (existing >= 0) {
    sections[existing] = { id, name, content };
    return;
  }
  const rank = RANK[id]!;
  let at = 0;
  sections.forEach((s, i) => {
    if (s.id !== 0 && RANK[s.id]! < rank) at = i + 1;
  });
  sections.splice(at, 0, { id, name, content });
}

export function assemble(sections: RawSection[]): Uint8Array {
  let total = HEADER.length;
  for (const s of sections) total += 1 + 5 + s.content.length;
  const w = new ByteWriter(total);
  w.bytes(HEADER);
  for (const s of sections) {
    w.u8(s.id);
    w.u32(s.content.length);
    w.bytes(s.content);
  }
  return w.toBytes();
}
