/**
 * Builds large command modules for tests and benchmarks: `functions` small
 * functions (each a loop doing some i32 arithmetic, ~`bodyBytes` bytes), a
 * memory, and a `_start` that calls the first one and returns. The shape of a
 * big compiled program, without a toolchain.
 */
import { ByteWriter } from "../../src/wasm/binary.js";

export function bigModule(functions: number, bodyBytes = 32): Uint8Array {
  const w = new ByteWriter(functions * (bodyBytes + 4) + 1024);
  w.bytes(Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00));
  const section = (id: number, body: ByteWriter): void => {
    const b = body.toBytes();
    w.u8(id).u32(b.length).bytes(b);
  };
  // types: 0 = () -> (), 1 = (i32) -> i32
  section(1, new ByteWriter().u32(2).u8(0x60).u32(0).u32(0).u8(0x60).u32(1).u8(0x7f).u32(1).u8(0x7f));
  const funcs = new ByteWriter(functions * 2 + 8).u32(functions + 1).u32(0);
  for (let i = 0; i < functions; i++) funcs.u32(1);
  section(3, funcs);
  section(5, new ByteWriter().u32(1).u8(0x00).u32(1));
  section(7, new ByteWriter().u32(2).name("_start").u8(0x00).u32(0).name("memory").u8(0x02).u32(0));
  const code = new ByteWriter(functions * (bodyBytes + 4) + 16).u32(functions + 1);
  // _start: (drop (call 1 (i32.const 7)))
  const start = Uint8Array.of(0x00, 0x41, 0x07, 0x10, 0x01, 0x1a, 0x0b);
  code.u32(start.length).bytes(start);
  // f(x): loop { x = x * 31 + 7; x ^= x >> 3; ... } br_if while x & 1 == 0 (bounded by the arithmetic), then x
  const unit = [0x20, 0x00, 0x41, 0x1f, 0x6c, 0x41, 0x07, 0x6a, 0x21, 0x00, 0x20, 0x00, 0x20, 0x00, 0x41, 0x03, 0x76, 0x73, 0x21, 0x00];
  const units = Math.max(1, Math.floor((bodyBytes - 12) / unit.length));
  const body: number[] = [0x00, 0x03, 0x40];
  for (let u = 0; u < units; u++) body.push(...unit);
  body.push(0x20, 0x00, 0x41, 0x01, 0x71, 0x45, 0x0d, 0x00, 0x0b, 0x20, 0x00, 0x0b);
  const bodyArr = Uint8Array.from(body);
  for (let i = 0; i < functions; i++) code.u32(bodyArr.length).bytes(bodyArr);
  section(10, code);
  return w.toBytes();
}
