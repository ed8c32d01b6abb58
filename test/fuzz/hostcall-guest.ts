/**
 * Generates a guest that calls every WASI host function with random
 * arguments: it imports all of the syscall table, fills its memory with
 * random bytes (so every struct a call reads — iovecs, subscriptions, paths —
 * is garbage too), and its `_start` makes `calls` random calls, dropping the
 * errnos. A correct kernel answers each with an errno; nothing it does may
 * throw into the host, trap, or touch memory outside the guest's.
 */
import { ByteWriter } from "../../src/wasm/binary.js";
import { SYSCALLS, WASI_MODULE } from "../../src/kernel/syscalls.js";
import type { Prng } from "./prng.js";

/** Calls that end the instance on purpose; made only as the last call, sometimes. */
const ENDING = new Set(["proc_exit", "proc_raise"]);

const MEMORY_PAGES = 2;
const MEMORY_BYTES = MEMORY_PAGES * 65536;

function i32Arg(rng: Prng): number {
  return rng.pick([
    () => 0,
    () => 1,
    () => rng.int(16), // plausible descriptors, small lengths
    () => -1,
    () => 0x7fffffff,
    () => 0x80000000 | 0,
    () => MEMORY_BYTES - 1 - rng.int(64), // pointers at the end of memory
    () => MEMORY_BYTES + rng.int(65536), // just past it
    () => rng.int(MEMORY_BYTES), // somewhere inside
    () => rng.u32() | 0,
  ])();
}

function i64Arg(rng: Prng): bigint {
  return rng.pick([() => 0n, () => 1n, () => -1n, () => BigInt(rng.int(4096)), () => 1n << 62n, () => BigInt.asIntN(64, rng.u64())])();
}

export interface HostcallGuest {
  bytes: Uint8Array;
  /** The calls made, in order, for reproducing a failure. */
  calls: string[];
}

export function hostcallGuest(rng: Prng, calls = 200): HostcallGuest {
  const w = new ByteWriter(4096);
  w.bytes(Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00));
  const section = (id: number, body: ByteWriter): void => {
    const b = body.toBytes();
    w.u8(id).u32(b.length).bytes(b);
  };
  const valtype = (t: "i32" | "i64"): number => (t === "i32" ? 0x7f : 0x7e);

  // Types: one per syscall (index = syscall index), then () -> () for _start.
  const types = new ByteWriter();
  types.u32(SYSCALLS.length + 1);
  for (const s of SYSCALLS) {
    types.u8(0x60).u32(s.params.length);
    for (const [, t] of s.params) types.u8(valtype(t));
    if (s.result === "errno") types.u32(1).u8(0x7f);
    else types.u32(0);
  }
  types.u8(0x60).u32(0).u32(0);
  section(1, types);

  const imports = new ByteWriter();
  imports.u32(SYSCALLS.length);
  SYSCALLS.forEach((s, i) => imports.name(WASI_MODULE).name(s.name).u8(0x00).u32(i));
  section(2, imports);

  const funcs = new ByteWriter();
  funcs.u32(1).u32(SYSCALLS.length);
  section(3, funcs);

  const mem = new ByteWriter();
  mem.u32(1).u8(0x00).u32(MEMORY_PAGES);
  section(5, mem);

  const exports = new ByteWriter();
  exports.u32(2).name("memory").u8(0x02).u32(0).name("_start").u8(0x00).u32(SYSCALLS.length);
  section(7, exports);

  const made: string[] = [];
  const body = new ByteWriter(calls * 16);
  body.u32(0); // no locals
  const candidates = SYSCALLS.map((s, i) => [s, i] as const).filter(([s]) => !ENDING.has(s.name));
  const emitCall = (s: (typeof SYSCALLS)[number], index: number): void => {
    const args: string[] = [];
    for (const [, t] of s.params) {
      if (t === "i32") {
        const v = i32Arg(rng);
        body.u8(0x41).s64(BigInt(v));
        args.push(String(v));
      } else {
        const v = i64Arg(rng);
        body.u8(0x42).s64(v);
        args.push(`${v}n`);
      }
    }
    body.u8(0x10).u32(index);
    if (s.result === "errno") body.u8(0x1a);
    made.push(`${s.name}(${args.join(", ")})`);
  };
  for (let n = 0; n < calls; n++) {
    const [s, i] = rng.pick(candidates);
    emitCall(s, i);
  }
  if (rng.chance(0.2)) {
    const name = rng.chance(0.5) ? "proc_exit" : "proc_raise";
    const i = SYSCALLS.findIndex((s) => s.name === name);
    emitCall(SYSCALLS[i]!, i);
  }
  body.u8(0x0b);
  const code = new ByteWriter();
  const b = body.toBytes();
  code.u32(1).u32(b.length).bytes(b);
  section(10, code);

  // Random bytes over the first page and the last 4 KiB: garbage structs everywhere a pointer may land.
  const data = new ByteWriter();
  const first = rng.bytes(65536);
  const last = rng.bytes(4096);
  data.u32(2);
  data.u8(0x00).u8(0x41).s64(0n).u8(0x0b).u32(first.length).bytes(first);
  data.u8(0x00).u8(0x41).s64(BigInt(MEMORY_BYTES - 4096)).u8(0x0b).u32(last.length).bytes(last);
  section(11, data);

  return { bytes: w.toBytes(), calls: made };
}
