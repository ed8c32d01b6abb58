/**
 * Module mutations for the fuzzer: bit flips, byte overwrites with
 * "interesting" values, truncations, and section-level splices (drop,
 * duplicate, swap in a section of another module, corrupt a size field).
 */
import type { Prng } from "./prng.js";

interface Section {
  id: number;
  /** Offset of the id byte. */
  start: number;
  /** Offset just past the section. */
  end: number;
}

/** Splits a module into its sections without trusting much (stops at the first inconsistency). */
export function sections(bytes: Uint8Array): Section[] {
  const out: Section[] = [];
  let p = 8;
  while (p < bytes.length) {
    const start = p;
    const id = bytes[p++]!;
    let size = 0;
    let shift = 0;
    for (let i = 0; i < 5 && p < bytes.length; i++) {
      const b = bytes[p++]!;
      size += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if ((b & 0x80) === 0) break;
    }
    if (p + size > bytes.length) break;
    p += size;
    out.push({ id, start, end: p });
  }
  return out;
}

const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x40, 0x0b, 0x41, 0x42, 0x10, 0x11, 0x20, 0x28, 0x36, 0x3f];

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export type MutationKind = "flip" | "byte" | "truncate" | "drop-section" | "dup-section" | "splice-section" | "size-field" | "insert" | "data-byte" | "const-imm";

/** Applies one random mutation; `donor` is another module to take sections from. */
export function mutateOnce(rng: Prng, bytes: Uint8Array, donor: Uint8Array): { bytes: Uint8Array; kind: MutationKind } {
  const kind = rng.pick<MutationKind>([
    "flip", "flip", "byte", "byte", "truncate", "drop-section", "dup-section", "splice-section", "size-field", "insert",
    // These two usually keep the module valid, so that mutants also run.
    "data-byte", "data-byte", "const-imm", "const-imm", "const-imm",
  ]);
  const out = bytes.slice();
  const secs = sections(bytes);
  switch (kind) {
    case "flip": {
      const n = rng.chance(0.5) ? 1 : 2 + rng.int(3);
      for (let i = 0; i < n; i++) {
        const at = rng.int(out.length);
        out[at]! ^= 1 << rng.int(8);
      }
      return { bytes: out, kind };
    }
    case "byte": {
      out[rng.int(out.length)] = rng.pick(INTERESTING);
      return { bytes: out, kind };
    }
    case "data-byte": {
      // A byte of a data segment's contents (past the segment headers): valid, different behaviour.
      const data = secs.find((x) => x.id === 11);
      if (!data || data.end - data.start < 16) return { bytes: out, kind };
      const from = data.start + Math.floor((data.end - data.start) / 4);
      out[from + rng.int(data.end - from)] = rng.u32() & 0xff;
      return { bytes: out, kind };
    }
    case "const-imm": {
      // The immediate of an i32.const whose LEB is one byte: replaced by another one-byte LEB.
      const code = secs.find((x) => x.id === 10);
      if (!code) return { bytes: out, kind };
      for (let tries = 0; tries < 64; tries++) {
        const at = code.start + rng.int(code.end - code.start - 1);
        if (out[at] === 0x41 && (out[at + 1]! & 0x80) === 0) {
          out[at + 1] = rng.u32() & 0x7f;
          break;
        }
      }
      return { bytes: out, kind };
    }
    case "truncate":
      return { bytes: bytes.slice(0, rng.int(bytes.length)), kind };
    case "insert": {
      const at = 8 + rng.int(Math.max(1, bytes.length - 8));
      return { bytes: concat(bytes.subarray(0, at), rng.bytes(1 + rng.int(16)), bytes.subarray(at)), kind };
    }
    case "drop-section": {
      if (secs.length === 0) return { bytes: out, kind };
      const s = rng.pick(secs);
      return { bytes: concat(bytes.subarray(0, s.start), bytes.subarray(s.end)), kind };
    }
    case "dup-section": {
      if (secs.length === 0) return { bytes: out, kind };
      const s = rng.pick(secs);
      return { bytes: concat(bytes.subarray(0, s.end), bytes.subarray(s.start, s.end), bytes.subarray(s.end)), kind };
    }
    case "splice-section": {
      const theirs = sections(donor);
      if (secs.length === 0 || theirs.length === 0) return { bytes: out, kind };
      const mine = rng.pick(secs);
      const other = rng.pick(theirs);
      return { bytes: concat(bytes.subarray(0, mine.start), donor.subarray(other.start, other.end), bytes.subarray(mine.end)), kind };
    }
    case "size-field": {
      if (secs.length === 0) return { bytes: out, kind };
      const s = rng.pick(secs);
      // Replace the section's size with a random (often huge) LEB128.
      const sizeLen = (() => {
        let n = 0;
        while (n < 5 && (bytes[s.start + 1 + n]! & 0x80) !== 0) n++;
        return n + 1;
      })();
      const v = rng.pick([0, 1, 0x7fffffff, 0xffffffff, rng.u32(), s.end - s.start + rng.int(64)]);
      const leb: number[] = [];
      let x = v >>> 0;
      do {
        let b = x & 0x7f;
        x >>>= 7;
        if (x !== 0) b |= 0x80;
        leb.push(b);
      } while (x !== 0);
      return { bytes: concat(bytes.subarray(0, s.start + 1), Uint8Array.from(leb), bytes.subarray(s.start + 1 + sizeLen)), kind };
    }
  }
}

/** 1 to 4 stacked mutations. */
export function mutate(rng: Prng, bytes: Uint8Array, donor: Uint8Array): { bytes: Uint8Array; kinds: MutationKind[] } {
  let b = bytes;
  const kinds: MutationKind[] = [];
  const n = rng.chance(0.5) ? 1 : 2 + rng.int(3);
  for (let i = 0; i < n && b.length > 8; i++) {
    const m = mutateOnce(rng, b, donor);
    b = m.bytes;
    kinds.push(m.kind);
  }
  return { bytes: b, kinds };
}
