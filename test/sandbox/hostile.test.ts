import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ExecutorPool, ReactorStartError } from "../../src/sandbox/executor-pool.js";
import { ByteWriter } from "../../src/wasm/binary.js";
import { REPO } from "./helpers.js";

function hostile(name: string): Uint8Array {
  return readFileSync(`${REPO}test/fixtures/hostile/${name}`);
}

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`still not ${what} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

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
  test("a module with more imports than V8 allows is refused before compiling", async () => {
    const imports = new ByteWriter();
    const n = 100_001;
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
  test("a table that needs more elements than the table limit to start is refused with memory_limit", async () => {
    const table = new ByteWriter().u32(1).u8(0x70).u8(0x00).u32(9_000_000);
    const r = await pool.run(module([1, VOID_TYPE()], [3, ONE_FUNC()], [4, table], [7, EXPORT_START()], [10, code(Uint8Array.of(0x0b))]));
    assert.equal(r.reason, "memory_limit");
    assert.match(r.message, /table limit of 1000000 elements reached: .*9000000 elements to start.*--max-table-elements/);
  });
  test("100 tables grown by 10,000,000 elements each: every grow past the table limit is refused, nothing is allocated", async () => {
    // Issue 8: this module aborted the whole process (8 GB of V8 heap) before tables were bounded.
    const r = await pool.run(hostile("table-grow.wasm"), { limits: { maxMemoryBytes: 16 << 20, timeoutMs: 5000 } });
    assert.equal(r.reason, "exit");
    assert.equal(r.exitCode, 0);
    const after = await pool.run(hostile("table-small.wasm"));
    assert.equal(after.exitCode, 0, "the pool goes on");
  });
  test("a guest that fails after a refused table.grow ends with memory_limit naming the table limit", async () => {
    const r = await pool.run(hostile("table-grow-trap.wasm"), { limits: { maxMemoryBytes: 16 << 20 } });
    assert.equal(r.reason, "memory_limit");
    assert.match(r.message, /^table limit of 1000000 elements reached: a table\.grow was refused, then trapped/);
  });
  test("maxTableElements is enforced and can be raised", async () => {
    const low = await pool.run(hostile("table-small.wasm"), { limits: { maxTableElements: 500 } });
    assert.equal(low.reason, "memory_limit");
    assert.match(low.message, /table limit of 500 elements reached: a table\.grow was refused, then exited with 3/);
    const high = await pool.run(hostile("table-small.wasm"), { limits: { maxTableElements: 2000 } });
    assert.equal(high.reason, "exit");
    assert.equal(high.exitCode, 0);
    await assert.rejects(pool.run(hostile("table-small.wasm"), { limits: { maxTableElements: 2_000_000 } }), /maxTableElements: must be an integer from 0 to 1000000/);
  });
  test("an executor whose V8 heap fills up ends alone with memory_limit naming the heap, and is replaced", async () => {
    const small = new ExecutorPool({ size: 1, executorHeapMb: 64 });
    try {
      const bytes = hostile("big-table-reactor.wasm");
      const reactors = [];
      let failure: ReactorStartError | undefined;
      // Each instance holds ~16 MB of heap in its table: a 64 MiB heap takes three or four.
      for (let i = 0; i < 10 && !failure; i++) {
        try {
          reactors.push(await small.reactor(bytes));
        } catch (err) {
          if (!(err instanceof ReactorStartError)) throw err;
          failure = err;
        }
      }
      assert.ok(failure, "the heap limit was reached");
      assert.equal(failure.outcome.reason, "memory_limit");
      assert.match(failure.outcome.message, /executor's V8 heap limit of 64 MiB was reached/);
      assert.equal(small.stats().heapKills, 1);
      const r = await small.run(hostile("table-small.wasm"));
      assert.equal(r.exitCode, 0, "a fresh executor took its place");
      // The warm reactors of the lost executor start afresh on their next call.
      const call = await reactors[0]!.call("noop");
      assert.equal(call.outcome.reason, "exit");
    } finally {
      await small.close();
    }
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
    // The terminated executor's thread stops, freeing what it held; it does not linger.
    await until("stopped", () => pool.stats().lingering === 0);
  });
  test("an empty file and a non-wasm file are invalid modules", async () => {
    assert.equal((await pool.run(new Uint8Array(0))).reason, "invalid_module");
    assert.equal((await pool.run(new TextEncoder().encode("\x7fELF not wasm"))).reason, "invalid_module");
  });
});
