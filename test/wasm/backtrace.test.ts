import { test } from "node:test";
import assert from "node:assert/strict";
import { describeTrap, formatBacktrace, parseWasmFrames, type TrapReason } from "../../src/wasm/backtrace.js";
import { readModuleInfo } from "../../src/wasm/reader.js";
import { instrumentFuel } from "../../src/wasm/rewrite.js";
import { setFuel } from "../../src/wasm/fuel.js";
import { wat } from "./helpers.js";

async function exportsOf(bytes: Uint8Array, imports: WebAssembly.Imports = {}): Promise<WebAssembly.Exports> {
  return (await WebAssembly.instantiate(bytes, imports)).instance.exports;
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  assert.fail("expected a throw");
}

const EXPECTED: [string, TrapReason, string][] = [
  ["unreachable", "unreachable", "unreachable executed"],
  ["oob", "memory_out_of_bounds", "out of bounds memory access"],
  ["div_zero", "divide_by_zero", "integer divide by zero"],
  ["div_overflow", "integer_overflow", "integer overflow"],
  ["bad_conversion", "invalid_conversion", "invalid conversion to integer"],
  ["table_oob", "table_out_of_bounds", "undefined element: table index out of bounds"],
  ["null_call", "indirect_call_mismatch", "indirect call to a null function or with the wrong signature"],
  ["recurse", "stack_exhausted", "call stack exhausted"],
];

for (const [name, reason, message] of EXPECTED) {
  test(`a ${name} trap is reported as ${reason}`, async () => {
    const bytes = wat("traps");
    const info = readModuleInfo(bytes);
    const e = await exportsOf(bytes);
    const trap = describeTrap(thrown(() => (e[name] as () => unknown)()), { info });
    assert.equal(trap.reason, reason);
    assert.equal(trap.message, message);
    assert.ok(trap.frames.length > 0, "has wasm frames");
  });
}

test("frames are innermost first and named from the name section", async () => {
  const bytes = wat("traps");
  const info = readModuleInfo(bytes);
  const e = await exportsOf(bytes);
  const trap = describeTrap(thrown(() => (e.nested as () => void)()), { info });
  assert.deepEqual(trap.frames.map((f) => f.name), ["do_unreachable", "inner", "outer"]);
  assert.deepEqual(trap.frames.map((f) => f.funcIndex), [1, 9, 10]);
  for (const f of trap.frames) assert.equal(typeof f.offset, "number");
  const text = formatBacktrace(trap.frames);
  assert.match(text, /^ {2}0: do_unreachable \(func\[1\] @ 0x[0-9a-f]+\)\n {2}1: inner \(func\[9\] @ 0x[0-9a-f]+\)\n {2}2: outer \(func\[10\] @ 0x[0-9a-f]+\)$/);
});

test("without a name section frames fall back to func[N]", async () => {
  const bytes = wat("nonames");
  const e = await exportsOf(bytes);
  const trap = describeTrap(thrown(() => (e.boom as () => void)()), { info: readModuleInfo(bytes) });
  assert.deepEqual(trap.frames.map((f) => f.name), ["func[0]", "func[1]"]);
  assert.match(formatBacktrace(trap.frames), /^ {2}0: func\[0\] @ 0x[0-9a-f]+\n {2}1: func\[1\] @ 0x[0-9a-f]+$/);
});

test("deep recursion folds into one backtrace line", async () => {
  const bytes = wat("traps");
  const e = await exportsOf(bytes);
  const trap = describeTrap(thrown(() => (e.recurse as () => void)()), { info: readModuleInfo(bytes) });
  assert.equal(trap.reason, "stack_exhausted");
  const lines = formatBacktrace(trap.frames).split("\n");
  assert.ok(lines.length < trap.frames.length, "repeats are folded");
  assert.match(lines.join("\n"), /recurse \(func\[6\] @ 0x[0-9a-f]+\) \(repeated \d+ times\)/);
});

test("names survive fuel instrumentation, so metered traps name the same functions", async () => {
  const original = wat("traps");
  const { bytes } = instrumentFuel(original);
  const { instance } = await WebAssembly.instantiate(bytes);
  setFuel(instance, 1000n);
  const trap = describeTrap(thrown(() => (instance.exports.nested as () => void)()), { info: readModuleInfo(original), instance });
  assert.equal(trap.reason, "unreachable");
  assert.deepEqual(trap.frames.map((f) => f.name), ["do_unreachable", "inner", "outer"]);
});

test("with the offset map, metered trap frames give the original module's offsets", async () => {
  const original = wat("traps");
  const info = readModuleInfo(original);
  const plain = await exportsOf(original);
  for (const granularity of ["loop", "block"] as const) {
    const { bytes, offsetMap } = instrumentFuel(original, { granularity });
    const { instance } = await WebAssembly.instantiate(bytes);
    for (const name of ["unreachable", "oob", "div_zero", "bad_conversion", "table_oob", "nested"]) {
      setFuel(instance, 1000n);
      const want = describeTrap(thrown(() => (plain[name] as () => void)()), { info });
      const got = describeTrap(thrown(() => (instance.exports[name] as () => void)()), { info, instance, offsetMap });
      assert.deepEqual(got.frames, want.frames, `${granularity}: ${name}`);
      const raw = describeTrap(thrown(() => (instance.exports[name] as () => void)()), { info, instance });
      assert.notDeepEqual(raw.frames.map((f) => f.offset), want.frames.map((f) => f.offset), "offsets moved");
    }
  }
});

test("a fuel trap maps to the start of the block it could not pay for", async () => {
  const original = wat("loop");
  const { bytes, offsetMap } = instrumentFuel(original);
  const { instance } = await WebAssembly.instantiate(bytes);
  setFuel(instance, 3n);
  const trap = describeTrap(thrown(() => (instance.exports.spin as () => void)()), { instance, offsetMap });
  assert.equal(trap.reason, "fuel_exhausted");
  // spin's body: locals (1 byte), then `loop` (0x03 0x40): the charge sits right after it.
  const info = readModuleInfo(original);
  assert.equal(trap.frames[0]!.offset, info.codeBodies[0]!.offset + 1 + 2);
  assert.equal(original[trap.frames[0]!.offset!], 0x23, "global.get, the loop's first instruction");
});

test("an error thrown by a host function is a host_error, with the wasm frames that called it", async () => {
  const bytes = wat("hostcall");
  const e = await exportsOf(bytes, {
    env: {
      tick: () => {
        throw new TypeError("host exploded");
      },
    },
  });
  const trap = describeTrap(thrown(() => (e.run as (n: number) => void)(1)), { info: readModuleInfo(bytes) });
  assert.equal(trap.reason, "host_error");
  assert.equal(trap.message, "TypeError: host exploded");
  assert.deepEqual(trap.frames.map((f) => f.funcIndex), [1]);
});

test("non-error values are described without crashing", () => {
  const trap = describeTrap("a string");
  assert.equal(trap.reason, "host_error");
  assert.equal(trap.message, "a string");
  assert.deepEqual(trap.frames, []);
});

test("a trap that crossed a worker boundary as a plain object is still classified", async () => {
  const bytes = wat("traps");
  const e = await exportsOf(bytes);
  const err = thrown(() => (e.div_zero as () => void)()) as Error;
  const cloned = { name: err.name, message: err.message, stack: err.stack };
  const trap = describeTrap(cloned, { info: readModuleInfo(bytes) });
  assert.equal(trap.reason, "divide_by_zero");
  assert.deepEqual(trap.frames.map((f) => f.name), ["divide"]);
});

test("parseWasmFrames reads both V8 frame shapes", () => {
  const stack = [
    "RuntimeError: unreachable",
    "    at mod.f (wasm://wasm/mod-8c5f3c7a:wasm-function[12]:0x1f3)",
    "    at wasm://wasm/8c5f3c7a:wasm-function[3]:0x4b",
    "    at Object.<anonymous> (file:///x.js:1:1)",
  ].join("\n");
  assert.deepEqual(parseWasmFrames(stack), [
    { funcIndex: 12, name: "func[12]", offset: 0x1f3 },
    { funcIndex: 3, name: "func[3]", offset: 0x4b },
  ]);
});
