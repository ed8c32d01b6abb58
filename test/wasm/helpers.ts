/** Shared helpers for the wasm layer's tests: fixture loading and a tiny module builder. */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ByteWriter } from "../../src/wasm/binary.js";

/** Repository root (tests run from dist/test/wasm). */
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

export function fixturePath(relative: string): string {
  return ROOT + "test/fixtures/" + relative;
}

/** Bytes of test/fixtures/wat/<name>.wasm. */
export function wat(name: string): Uint8Array {
  return new Uint8Array(readFileSync(fixturePath(`wat/${name}.wasm`)));
}

/** Bytes of a fixture anywhere under test/fixtures, or undefined when it is not there. */
export function optionalFixture(relative: string): Uint8Array | undefined {
  const p = fixturePath(relative);
  return existsSync(p) ? new Uint8Array(readFileSync(p)) : undefined;
}

export const WAT_FIXTURES = [
  "compute",
  "exceptions",
  "features",
  "hostcall",
  "loop",
  "memory",
  "memory-import",
  "memory-max",
  "nonames",
  "start",
  "traps",
] as const;

// ---- module builder (for hostile and hand-made modules) ------------------------

export const HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

export function u32(n: number): number[] {
  return Array.from(new ByteWriter().u32(n).toBytes());
}

export function str(s: string): number[] {
  return Array.from(new ByteWriter().name(s).toBytes());
}

/** A section: id, size, content. */
export function section(id: number, content: number[]): number[] {
  return [id, ...u32(content.length), ...content];
}

/** A vector: count then entries. */
export function vec(entries: number[][]): number[] {
  return [...u32(entries.length), ...entries.flat()];
}

export function moduleOf(...sections: number[][]): Uint8Array {
  return Uint8Array.from([...HEADER, ...sections.flat()]);
}

/** Type section with one `[] -> []` function type; function, code sections for bodies. */
export function functionsModule(bodies: number[][], extra: number[][] = []): Uint8Array {
  return moduleOf(
    section(1, vec([[0x60, 0x00, 0x00]])),
    section(3, vec(bodies.map(() => [0x00]))),
    ...extra,
    section(10, vec(bodies.map((b) => [...u32(b.length), ...b]))),
  );
}

/** Deterministic PRNG (xorshift32) so fuzz-style tests are reproducible. */
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}
