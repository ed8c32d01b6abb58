import { test } from "node:test";
import assert from "node:assert/strict";
import { limitTables } from "../../src/wasm/rewrite.js";
import { growRefused, hookGrow, resetGrowFailed } from "../../src/wasm/grow-hook.js";
import { readModuleInfo } from "../../src/wasm/reader.js";
import { WasmLimitError } from "../../src/wasm/errors.js";
import { fixturePath, moduleOf, section, u32, vec } from "./helpers.js";
import { readFileSync } from "node:fs";

/** Tables given as [refType byte, min, max?], plus `grow$i` exports: (n) -> table.grow $i null n. */
function tablesModule(tables: [number, number, number?][]): Uint8Array {
  const types = section(1, vec([[0x60, 0x01, 0x7f, 0x01, 0x7f]]));
  const funcs = section(3, vec(tables.map(() => [0x00])));
  const tsec = section(4, vec(tables.map(([rt, min, max]) => (max === undefined ? [rt, 0x00, ...u32(min)] : [rt, 0x01, ...u32(min), ...u32(max)]))));
  const exports = section(7, vec(tables.map((_, i) => [...u32(`grow${i}`.length), ...Buffer.from(`grow${i}`), 0x00, ...u32(i)])));
  const bodies = tables.map(([rt], i) => {
    const body = [0x00, 0xd0, rt, 0x20, 0x00, 0xfc, 0x0f, ...u32(i), 0x0b]; // ref.null rt; local.get 0; table.grow i
    return [...u32(body.length), ...body];
  });
  const code = section(10, [...u32(tables.length), ...bodies.flat()]);
  return moduleOf(types, funcs, tsec, exports, code);
}

type Grow = (n: number) => number;

test("table maxima are rewritten so that all tables together stay within the budget", async () => {
  const bytes = tablesModule([[0x70, 10], [0x70, 0], [0x6f, 5, 1000]]);
  const r = limitTables(bytes, 100);
  assert.equal(r.changed, true);
  // Headroom 100 - 15 = 85, 28 each; the third keeps its own lower maximum only when lower.
  assert.deepEqual(
    r.tables.map((t) => t.max),
    [38, 28, 33],
  );
  assert.ok(r.tables.reduce((n, t) => n + t.max, 0) <= 100);
  const info = readModuleInfo(r.bytes);
  assert.deepEqual(info.tables.map((t) => t.limits.max), [38, 28, 33]);
  const { instance } = await WebAssembly.instantiate(r.bytes);
  const grow0 = instance.exports["grow0"] as Grow;
  assert.equal(grow0(28), 10, "growing to exactly the maximum succeeds");
  assert.equal(grow0(1), -1, "one element past it is refused, as the spec says");
});

test("a declared maximum below the share is kept and the bytes are untouched", () => {
  const bytes = tablesModule([[0x70, 1, 2]]);
  const r = limitTables(bytes, 1000);
  assert.equal(r.changed, false);
  assert.equal(r.bytes, bytes);
  assert.equal(r.tables[0]!.max, 2);
});

test("tables whose minima exceed the budget are refused with maxTableElements", () => {
  assert.throws(
    () => limitTables(tablesModule([[0x70, 600], [0x70, 600]]), 1000),
    (err: unknown) => err instanceof WasmLimitError && err.limit === "maxTableElements" && err.actual === 1200 && err.max === 1000,
  );
});

test("the grow hook flags a refused table.grow and leaves successful grows unflagged", async () => {
  const limited = limitTables(tablesModule([[0x70, 0], [0x6f, 0]]), 10);
  const hooked = hookGrow(limited.bytes);
  assert.equal(hooked.changed, true);
  assert.equal(hooked.memoryGrow, "none");
  const { instance } = await WebAssembly.instantiate(hooked.bytes);
  const e = instance.exports;
  assert.equal((e["grow0"] as Grow)(5), 0);
  assert.deepEqual(growRefused(e), { memory: false, table: false });
  assert.equal((e["grow1"] as Grow)(6), -1);
  assert.deepEqual(growRefused(e), { memory: false, table: true });
  resetGrowFailed(e);
  assert.deepEqual(growRefused(e), { memory: false, table: false });
});

test("the issue's hostile module (100 tables grown by 10,000,000 each) is bounded to the budget", async () => {
  const bytes = new Uint8Array(readFileSync(fixturePath("hostile/table-grow.wasm")));
  const r = limitTables(bytes, 1_000_000);
  assert.equal(r.tables.length, 100);
  assert.ok(r.tables.every((t) => t.max === 10_000));
  const { instance } = await WebAssembly.instantiate(r.bytes);
  (instance.exports["_start"] as () => void)(); // every grow is refused: nothing is allocated
  const mem = readModuleInfo(r.bytes);
  assert.equal(mem.tables.length, 100);
});
