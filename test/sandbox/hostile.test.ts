import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ExecutorPool } from "../../src/sandbox/executor-pool.js";
import { ByteWriter } from "../../src/wasm/binary.js";

const pool = new ExecutorPool({ size: 2 });
after(() => pool.close());

/** Assembles a module from [id, contents] sections. */
function module(...sections: [number, ByteWriter | Uint8Array][]): Uint8Array {
  const w = new ByteWriter();
  w.bytes(Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00));
  for (const [id, body] of sections) {
    const b = body instanceof ByteWriter ? body.toBytes() : body;
    w.u8(id).u32(b.length).bytes(b);
  }
  return w.toBytes();
}

const VOID_TYPE = (): ByteWriter => new ByteWriter().u32(1).u8(0x60).u32(0).u32(0);
const ONE_FUNC = (): ByteWriter => new ByteWriter().u32(1).u32(0);
const EXPORT_START = (index = 0): ByteWriter => new ByteWriter().u32(1).name("_start").u8(0x00).u32(index);
function code(body: Uint8Array, locals: [number, number][] = []): ByteWriter {
  const b = new ByteWriter();
  b.u32(locals.length);
  for (const [n, t] of locals) b.u32(n).u8(t);
  b.bytes(body);
  const bytes = b.toBytes();
  return new ByteWriter().u32(1).u32(bytes.length).bytes(bytes);
}

describe("hostile modules", () => {
  test("deep nesting is refused with the limit named", async () => {
    const depth = 100_000;
    const body = new Uint8Array(depth * 2 + 1);
    body.fill(0x02, 0, depth); // block (blocktype follows)
    for (let i = 0; i < depth; i++) body[i] = 0x02;
    const nested = new ByteWriter();
    for (let i = 0; i < depth; i++) nested.u8(0x02).u8(0x40);
    for (let i = 0; i < depth; i++) nested.u8(0x0b);
    nested.u8(0x0b);
    const r = await pool.run(module([1, VOID_TYPE()], [3, ONE_FUNC()], [7, EXPORT_START()], [10, code(nested.toBytes())]));
    assert.equal(r.reason, "invalid_module");
    assert.match(r.message, /nest/i);
  });
  test("a section claiming 4 GiB is refused as truncated", async () => {
    const bytes = module([1, VOID_TYPE()]);
    const lying = new Uint8Array([...bytes.subarray(0, 9), 0xff, 0xff, 0xff, 0xff, 0x0f, ...bytes.subarray(10)]);
    const r = await pool.run(lying);
    assert.equal(r.reason, "invalid_module");
    assert.match(r.message, /truncat|end of|past/i);
  });
  test("a module with too many imports is refused before compiling", async () => {
    const imports = new ByteWriter();
    const n = 50_000;
    imports.u32(n);
    for (let i = 0; i < n; i++) imports.name("wasi_snapshot_preview1").name("sched_yield").u8(0x00).u32(0);
    const r = await pool.run(module([1, new ByteWriter().u32(1).u8(0x60).u32(0).u32(1).u8(0x7f)], [2, imports]));
    assert.equal(r.reason, "invalid_module");
    assert.match(r.message, /import/i);
  });
  test("too many locals in one function are refused", async () => {
    const r = await pool.run(module([1, VOID_TYPE()], [3, ONE_FUNC()], [7, EXPORT_START()], [10, code(Uint8Array.of(0x0b), [[1_000_000, 0x7f]])]));
    assert.equal(r.reason, "invalid_module");
    assert.match(r.message, /local/i);
  });
  test("a memory that needs 4 GiB to start is refused with memory_limit", async () => {
    const mem = new ByteWriter().u32(1).u8(0x00).u32(65536);
    const r = await pool.run(module([1, VOID_TYPE()], [3, ONE_FUNC()], [5, mem], [7, EXPORT_START()], [10, code(Uint8Array.of(0x0b))]));
    assert.equal(r.reason, "memory_limit");
  });
  test("a huge table is refused", async () => {
    const table = new ByteWriter().u32(1).u8(0x70).u8(0x00).u32(9_000_000);
    const r = await pool.run(module([1, VOID_TYPE()], [3, ONE_FUNC()], [4, table], [7, EXPORT_START()], [10, code(Uint8Array.of(0x0b))]));
    assert.equal(r.reason, "invalid_module");
    assert.match(r.message, /table/i);
  });
  test("a data segment outside memory traps at instantiation, reported as a trap", async () => {
    const mem = new ByteWriter().u32(1).u8(0x00).u32(1);
    const data = new ByteWriter().u32(1).u8(0x00).u8(0x41).s64(70000n).u8(0x0b).u32(4).bytes(Uint8Array.of(1, 2, 3, 4));
    const r = await pool.run(module([1, VOID_TYPE()], [3, ONE_FUNC()], [5, mem], [7, EXPORT_START()], [10, code(Uint8Array.of(0x0b))], [11, data]));
    assert.equal(r.reason, "trap");
    assert.equal(r.trap?.reason, "segment_out_of_bounds");
  });
  test("a start function that loops forever is stopped by the deadline", async () => {
    const start = new ByteWriter().u32(0);
    const r = await pool.run(
      module([1, VOID_TYPE()], [3, ONE_FUNC()], [7, EXPORT_START()], [8, start], [10, code(Uint8Array.of(0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b))]),
      { limits: { timeoutMs: 50 } },
    );
    assert.equal(r.reason, "deadline_exceeded");
  });
  test("an empty file and a non-wasm file are invalid modules", async () => {
    assert.equal((await pool.run(new Uint8Array(0))).reason, "invalid_module");
    assert.equal((await pool.run(new TextEncoder().encode("\x7fELF not wasm"))).reason, "invalid_module");
  });
});
