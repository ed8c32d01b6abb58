import { test } from "node:test";
import assert from "node:assert/strict";
import { limitMemory } from "../../src/wasm/rewrite.js";
import { readModuleInfo } from "../../src/wasm/reader.js";
import { WasmLimitError } from "../../src/wasm/errors.js";
import { wat } from "./helpers.js";

async function instantiate(bytes: Uint8Array, imports: WebAssembly.Imports = {}): Promise<WebAssembly.Exports> {
  const { instance } = await WebAssembly.instantiate(bytes, imports);
  return instance.exports;
}

type Grow = (pages: number) => number;

test("memory.grow past the limit returns -1 and leaves the memory as it was", async () => {
  const limited = limitMemory(wat("memory"), 4);
  assert.equal(limited.changed, true);
  assert.deepEqual(limited.memories, [{ index: 0, min: 1, declaredMax: undefined, max: 4 }]);
  const e = await instantiate(limited.bytes);
  assert.equal((e.grow as Grow)(3), 1, "growing to exactly the limit succeeds");
  assert.equal((e.grow as Grow)(1), -1, "one page past the limit fails as the spec says");
  assert.equal((e.size as () => number)(), 4);
});

test("without the limit the same module grows past it", async () => {
  const e = await instantiate(wat("memory"));
  assert.equal((e.grow as Grow)(4), 1);
  assert.equal((e.size as () => number)(), 5);
});

test("a module's own lower maximum is kept and the bytes are untouched", () => {
  const bytes = wat("memory-max");
  const result = limitMemory(bytes, 20);
  assert.equal(result.changed, false);
  assert.equal(result.bytes, bytes);
  assert.deepEqual(result.memories, [{ index: 0, min: 3, declaredMax: 10, max: 10 }]);
});

test("a module's higher maximum is lowered to the limit", async () => {
  const result = limitMemory(wat("memory-max"), 5);
  assert.deepEqual(readModuleInfo(result.bytes).memories, [{ min: 3, max: 5, shared: false, is64: false }]);
  const e = await instantiate(result.bytes);
  assert.equal((e.grow as Grow)(2), 3);
  assert.equal((e.grow as Grow)(1), -1);
});

test("a minimum above the limit is refused, naming the limit", () => {
  assert.throws(
    () => limitMemory(wat("memory-max"), 2),
    (err: unknown) =>
      err instanceof WasmLimitError &&
      err.limit === "maxMemoryPages" &&
      err.actual === 3 &&
      err.max === 2 &&
      /memory 0 needs 3 pages \(0.1875 MiB\) to start/.test(err.message),
  );
});

test("imported memories are reported with the maximum to create them with", async () => {
  const bytes = wat("memory-import");
  const result = limitMemory(bytes, 6);
  assert.equal(result.changed, false);
  assert.deepEqual(result.importedMemories, [
    { module: "env", name: "memory", index: 0, min: 2, declaredMax: undefined, shared: false, is64: false, max: 6 },
  ]);
  const req = result.importedMemories[0]!;
  const memory = new WebAssembly.Memory({ initial: req.min, maximum: req.max });
  const e = await instantiate(result.bytes, { env: { memory } });
  assert.equal((e.grow as Grow)(4), 2);
  assert.equal((e.grow as Grow)(1), -1);
  assert.throws(() => limitMemory(bytes, 1), WasmLimitError);
});

test("shared memories stay shared with the lower maximum", async () => {
  const result = limitMemory(wat("features"), 1);
  assert.deepEqual(readModuleInfo(result.bytes).memories, [{ min: 1, max: 1, shared: true, is64: false }]);
  await WebAssembly.compile(result.bytes);
});

test("rewriting memory keeps the name section and every other section", () => {
  const bytes = wat("memory");
  const before = readModuleInfo(bytes);
  const after = readModuleInfo(limitMemory(bytes, 2).bytes);
  assert.deepEqual(after.names, before.names);
  assert.deepEqual(after.exports, before.exports);
  assert.deepEqual(after.sections.map((s) => s.name), before.sections.map((s) => s.name));
});

test("a bad page count is a RangeError", () => {
  assert.throws(() => limitMemory(wat("memory"), -1), RangeError);
  assert.throws(() => limitMemory(wat("memory"), 1.5), RangeError);
});
