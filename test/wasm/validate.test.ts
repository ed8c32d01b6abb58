import { test } from "node:test";
import assert from "node:assert/strict";
import { checkModule, compileChecked, compileCheckedSync, DEFAULT_MODULE_LIMITS, type ModuleLimits } from "../../src/wasm/validate.js";
import { WasmCompileError, WasmFormatError, WasmLimitError } from "../../src/wasm/errors.js";
import { functionsModule, moduleOf, section, str, u32, vec, wat, WAT_FIXTURES } from "./helpers.js";

function limitError(fn: () => unknown, limit: keyof ModuleLimits): WasmLimitError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof WasmLimitError, `expected WasmLimitError, got ${String(err)}`);
    assert.equal(err.limit, limit);
    return err;
  }
  assert.fail(`expected ${limit} to be enforced`);
}

/** `depth` nested blocks in one function. */
function nested(depth: number): Uint8Array {
  const body = [0x00, ...new Array<number>(depth).fill(0).flatMap(() => [0x02, 0x40]), ...new Array<number>(depth + 1).fill(0x0b)];
  return functionsModule([body]);
}

test("every WAT fixture passes the default limits and compiles", async () => {
  for (const name of WAT_FIXTURES) {
    const { module, info } = await compileChecked(wat(name));
    assert.ok(module instanceof WebAssembly.Module);
    assert.ok(info.functions.length > 0, name);
  }
});

test("maxModuleBytes is enforced before anything is parsed", () => {
  const bytes = wat("compute");
  const err = limitError(() => checkModule(bytes, { maxModuleBytes: 100 }), "maxModuleBytes");
  assert.equal(err.actual, bytes.length);
  assert.match(err.message, /module size in bytes: \d+ exceeds the limit of 100 \(maxModuleBytes\)/);
  checkModule(bytes, { maxModuleBytes: bytes.length });
});

test("maxFunctions, maxExports and maxImports are enforced and can be raised", () => {
  const compute = wat("compute");
  limitError(() => checkModule(compute, { maxFunctions: 12 }), "maxFunctions");
  checkModule(compute, { maxFunctions: 13 });
  limitError(() => checkModule(compute, { maxExports: 3 }), "maxExports");
  const imports = wat("memory-import");
  limitError(() => checkModule(imports, { maxImports: 0 }), "maxImports");
  checkModule(imports, { maxImports: 1 });
});

test("maxMemories defaults to one memory per module", () => {
  const two = moduleOf(section(5, vec([[0x00, 0x01], [0x00, 0x01]])));
  limitError(() => checkModule(two), "maxMemories");
  checkModule(two, { maxMemories: 2 });
});

test("maxInitialTableElements bounds the initial size of each table, at V8's 10,000,000 by default", () => {
  const table = moduleOf(section(4, vec([[0x70, 0x00, ...u32(10_000_001)]])));
  limitError(() => checkModule(table), "maxInitialTableElements");
  checkModule(moduleOf(section(4, vec([[0x70, 0x00, ...u32(2_000_000)]]))));
  limitError(() => checkModule(moduleOf(section(4, vec([[0x70, 0x00, ...u32(2_000)]]))), { maxInitialTableElements: 1000 }), "maxInitialTableElements");
});

test("structural limits follow V8's own where they do not protect the host", () => {
  assert.equal(DEFAULT_MODULE_LIMITS.maxFunctions, 1_000_000); // kV8MaxWasmFunctions
  assert.equal(DEFAULT_MODULE_LIMITS.maxTypes, 1_000_000);
  assert.equal(DEFAULT_MODULE_LIMITS.maxImports, 100_000);
  assert.equal(DEFAULT_MODULE_LIMITS.maxGlobals, 1_000_000);
  assert.equal(DEFAULT_MODULE_LIMITS.maxFunctionBodyBytes, 7_654_321);
  assert.equal(DEFAULT_MODULE_LIMITS.maxLocalsPerFunction, 50_000);
});

test("a module of 620,000 functions is accepted (a compiled Haskell program has as many)", () => {
  const n = 620_000;
  // One type, n functions of it, n bodies `end`.
  const funcs = [...u32(n), ...new Array<number>(n).fill(0)];
  const bodies: number[] = [...u32(n)];
  for (let i = 0; i < n; i++) bodies.push(0x02, 0x00, 0x0b);
  const bytes = moduleOf(section(1, vec([[0x60, 0x00, 0x00]])), section(3, funcs), section(10, bodies));
  const info = checkModule(bytes);
  assert.equal(info.functions.length, n);
  limitError(() => checkModule(bytes, { maxFunctions: 600_000 }), "maxFunctions");
});

test("maxTags bounds exception tags (each is an object in every instance)", () => {
  const tags = moduleOf(section(1, vec([[0x60, 0x00, 0x00]])), section(13, vec([[0x00, 0x00], [0x00, 0x00]])));
  limitError(() => checkModule(tags, { maxTags: 1 }), "maxTags");
  checkModule(tags, { maxTags: 2 });
});

test("maxLocalsPerFunction counts declared locals", () => {
  const body = [0x02, ...u32(20_000), 0x7f, ...u32(20_000), 0x7e, 0x0b];
  const bytes = functionsModule([body]);
  const err = limitError(() => checkModule(bytes, { maxLocalsPerFunction: 30_000 }), "maxLocalsPerFunction");
  assert.equal(err.actual, 40_000);
  checkModule(bytes, { maxLocalsPerFunction: 40_000 });
  // Past V8's own maximum the module is malformed whatever the host allows.
  const tooMany = functionsModule([[0x02, ...u32(30_000), 0x7f, ...u32(30_000), 0x7e, 0x0b]]);
  assert.throws(() => checkModule(tooMany, { maxLocalsPerFunction: 100_000 }), /declares more than 50000 locals/);
});

test("maxFunctionBodyBytes bounds each body", () => {
  const body = [0x00, ...new Array<number>(100).fill(0x01), 0x0b];
  limitError(() => checkModule(functionsModule([body]), { maxFunctionBodyBytes: 50 }), "maxFunctionBodyBytes");
});

test("maxNestingDepth stops deeply nested blocks, iteratively and fast", () => {
  const deep = nested(200_000);
  const err = limitError(() => checkModule(deep), "maxNestingDepth");
  assert.equal(err.actual, DEFAULT_MODULE_LIMITS.maxNestingDepth + 1);
  assert.match(err.message, /block nesting in function func\[0\]/);
  checkModule(nested(100), { maxNestingDepth: 100 });
  limitError(() => checkModule(nested(101), { maxNestingDepth: 100 }), "maxNestingDepth");
});

test("a limit that is not a non-negative integer is a RangeError", () => {
  assert.throws(() => checkModule(wat("loop"), { maxFunctions: -1 }), RangeError);
  assert.throws(() => checkModule(wat("loop"), { maxFunctions: Number.NaN }), RangeError);
});

test("V8's CompileError becomes a WasmCompileError naming the function and offset", async () => {
  // (func $broken (result i32)) with an empty body: a type error only V8 checks.
  const names = section(0, [...str("name"), 0x01, ...u32(1 + 1 + 7), 0x01, 0x00, ...str("broken")]);
  const bytes = moduleOf(
    section(1, vec([[0x60, 0x00, 0x01, 0x7f]])),
    section(3, vec([[0x00]])),
    section(10, vec([[0x02, 0x00, 0x0b]])),
    names,
  );
  await assert.rejects(compileChecked(bytes), (err: unknown) => {
    assert.ok(err instanceof WasmCompileError, String(err));
    assert.match(err.message, /^invalid WebAssembly module: function broken is invalid: .* \(at offset 0x[0-9a-f]+\)$/);
    assert.equal(typeof err.offset, "number");
    assert.match(err.engineMessage, /Compiling function #0/);
    return true;
  });
  assert.throws(() => compileCheckedSync(bytes), WasmCompileError);
});

test("malformed bytes are reported by the reader, not by V8", async () => {
  await assert.rejects(compileChecked(Uint8Array.of(0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 5, 1)), WasmFormatError);
});
