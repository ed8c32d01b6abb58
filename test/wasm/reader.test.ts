import { test } from "node:test";
import assert from "node:assert/strict";
import {
  findExport,
  formatFuncType,
  funcType,
  functionDisplayName,
  functionName,
  importedFunctions,
  importedMemories,
  readFunctionBody,
  readModuleInfo,
} from "../../src/wasm/reader.js";
import { WasmFormatError, WasmUnsupportedError } from "../../src/wasm/errors.js";
import { functionsModule, moduleOf, optionalFixture, section, str, u32, vec, wat } from "./helpers.js";

test("readModuleInfo reads the structure of a WAT module", () => {
  const info = readModuleInfo(wat("compute"));
  assert.equal(info.functions.length, 13);
  assert.equal(info.imports.length, 0);
  assert.deepEqual(info.memories, [{ min: 1, max: undefined, shared: false, is64: false }]);
  assert.equal(info.tables.length, 1);
  assert.deepEqual(info.tables[0], { refType: "funcref", limits: { min: 4, max: undefined, shared: false, is64: false } });
  assert.deepEqual(info.globals, [{ valType: "i64", mutable: true }]);
  assert.equal(info.elementSegmentCount, 1);
  assert.equal(info.dataSegmentCount, 1);
  assert.equal(info.dataCount, 1);
  assert.equal(info.codeBodies.length, 13);
  assert.deepEqual(findExport(info, "fib"), { name: "fib", kind: "function", index: 3 });
  assert.deepEqual(findExport(info, "memory", "memory"), { name: "memory", kind: "memory", index: 0 });
  assert.equal(findExport(info, "fib", "global"), undefined);
  assert.deepEqual(
    info.sections.filter((s) => s.id !== 0).map((s) => s.name),
    ["type", "function", "table", "memory", "global", "export", "element", "datacount", "code", "data"],
  );
});

test("funcType gives the signature of defined functions, including multi-value", () => {
  const info = readModuleInfo(wat("compute"));
  assert.deepEqual(funcType(info, 3), { params: ["i32"], results: ["i32"] });
  const minmax = [...info.names.functions].find(([, n]) => n === "minmax")![0];
  assert.equal(formatFuncType(funcType(info, minmax)!), "(i32, i32) -> (i32, i32)");
  assert.equal(funcType(info, 999), undefined);
});

test("the name section gives function names; unnamed functions fall back to func[N]", () => {
  const info = readModuleInfo(wat("traps"));
  assert.equal(info.names.module, "traps");
  assert.equal(functionName(info, 1), "do_unreachable");
  assert.equal(functionDisplayName(info, 1), "do_unreachable");
  const bare = readModuleInfo(wat("nonames"));
  assert.equal(bare.names.functions.size, 0);
  assert.equal(functionName(bare, 0), undefined);
  assert.equal(functionDisplayName(bare, 0), "func[0]");
  assert.equal(functionDisplayName(undefined, 7), "func[7]");
});

test("imported memories are reported with their limits", () => {
  const info = readModuleInfo(wat("memory-import"));
  assert.equal(info.importedMemoryCount, 1);
  const [mem] = importedMemories(info);
  assert.equal(mem!.module, "env");
  assert.equal(mem!.name, "memory");
  assert.deepEqual(mem!.memory, { min: 2, max: undefined, shared: false, is64: false });
});

test("shared memories are flagged and keep their maximum", () => {
  const info = readModuleInfo(wat("features"));
  assert.deepEqual(info.memories, [{ min: 1, max: 2, shared: true, is64: false }]);
});

test("memory64 limits are read as 64-bit", () => {
  const bytes = moduleOf(section(5, vec([[0x05, 0x80, 0x80, 0x04, 0x80, 0x80, 0x08]])));
  const info = readModuleInfo(bytes);
  assert.deepEqual(info.memories, [{ min: 65536, max: 131072, shared: false, is64: true }]);
});

test("importedFunctions lists WASI imports of the C hello with their signatures", { skip: optionalFixture("c-sandbox/hello.wasm") ? false : "test/fixtures/c-sandbox/hello.wasm not built" }, () => {
  const info = readModuleInfo(optionalFixture("c-sandbox/hello.wasm")!);
  const imports = importedFunctions(info);
  assert.ok(imports.length > 0);
  assert.ok(imports.every((i) => i.module === "wasi_snapshot_preview1"));
  const fdWrite = imports.find((i) => i.name === "fd_write");
  assert.ok(fdWrite, "hello imports fd_write");
  assert.equal(formatFuncType(fdWrite.type), "(i32, i32, i32, i32) -> (i32)");
  assert.deepEqual(funcType(info, fdWrite.index), fdWrite.type);
  assert.ok(findExport(info, "_start", "function"));
  assert.ok(findExport(info, "memory", "memory"));
});

test("function bodies are located up front and their locals decoded on demand", () => {
  const bytes = wat("loop");
  const info = readModuleInfo(bytes);
  const sum = [...info.names.functions].find(([, n]) => n === "sum")![0];
  const body = readFunctionBody(bytes, info, sum - info.importedFunctionCount);
  assert.deepEqual(body.locals, [
    { count: 1, type: "i32" },
    { count: 1, type: "i64" },
  ]);
  assert.equal(body.localCount, 2);
  assert.equal(bytes[body.end - 1], 0x0b, "a body ends with end");
});

test("custom sections are listed and a malformed name section is ignored with a reason", () => {
  const badNames = section(0, [...str("name"), 0x01, 0x05, 0x02, 0x00]); // subsection claims 5 bytes, has 2
  const info = readModuleInfo(moduleOf(section(0, [...str("producers"), 0x00]), badNames));
  assert.deepEqual(info.customSections.map((c) => c.name), ["producers", "name"]);
  assert.match(info.nameSectionError ?? "", /truncated name section/);
  assert.equal(info.names.functions.size, 0);
});

test("a module without sections is valid and empty", () => {
  const info = readModuleInfo(moduleOf());
  assert.equal(info.sections.length, 0);
  assert.equal(info.functions.length, 0);
});

function formatError(bytes: Uint8Array): WasmFormatError {
  try {
    readModuleInfo(bytes);
  } catch (err) {
    assert.ok(err instanceof WasmFormatError, `expected WasmFormatError, got ${String(err)}`);
    return err;
  }
  assert.fail("expected readModuleInfo to throw");
}

test("bytes that are not wasm are refused as such", () => {
  assert.match(formatError(new TextEncoder().encode("#!/bin/sh\necho hi\n")).message, /not a WebAssembly module/);
  assert.match(formatError(Uint8Array.of(0, 0x61)).message, /truncated module header at offset 0x2: expected 2 more bytes/);
});

test("a component is named as such, not as a bad version", () => {
  const component = Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00);
  assert.match(formatError(component).message, /WebAssembly component, not a core module/);
});

test("truncated sections are reported with section, offset and missing bytes", () => {
  // import section declaring 10 bytes of content but holding 5
  const bytes = Uint8Array.from([...moduleOf(), 0x02, 0x0a, 0x01, 0x03, 0x65, 0x6e, 0x76]);
  const err = formatError(bytes);
  assert.equal(err.section, "import");
  assert.equal(err.truncated, true);
  assert.equal(err.message, "truncated import section at offset 0xa: expected 5 more bytes");
});

test("a huge declared count fails at once, naming the count", () => {
  const bytes = moduleOf(section(2, [...u32(0xffffffff)]));
  assert.match(formatError(bytes).message, /malformed import section at offset 0xa: 4294967295 imports declared, more than the maximum of 100000/);
  const many = moduleOf(section(1, [...u32(50_000), 0x60]));
  assert.match(formatError(many).message, /50000 types declared but only 1 bytes remain/);
});

test("over-long and overflowing LEB128 values are refused", () => {
  assert.match(formatError(moduleOf(section(1, [0x80, 0x80, 0x80, 0x80, 0x80, 0x00]))).message, /LEB128 u32 is longer than 5 bytes/);
  assert.match(formatError(moduleOf(section(1, [0xff, 0xff, 0xff, 0xff, 0x7f]))).message, /does not fit in 32 bits/);
});

test("a section size running past the end of the module is truncation", () => {
  const bytes = Uint8Array.from([...moduleOf(), 0x01, 0x20, 0x00]);
  const err = formatError(bytes);
  assert.equal(err.truncated, true);
  assert.match(err.message, /truncated type section at offset 0xa: expected 31 more bytes/);
});

test("sections out of order, unknown ids and trailing bytes are refused", () => {
  assert.match(formatError(moduleOf(section(3, vec([])), section(1, vec([])))).message, /type section is out of order or repeated/);
  assert.match(formatError(moduleOf(section(42, []))).message, /unknown section id 42/);
  assert.match(formatError(moduleOf(section(1, [0x00, 0x00]))).message, /1 unexpected bytes at the end of the section/);
});

test("a function section without matching code bodies is refused", () => {
  const bytes = moduleOf(section(1, vec([[0x60, 0, 0]])), section(3, vec([[0], [0]])), section(10, vec([[2, 0, 0x0b]])));
  assert.match(formatError(bytes).message, /declares 2 functions but the code section has 1 bodies/);
});

test("type and import references are checked", () => {
  assert.match(formatError(moduleOf(section(3, vec([[0x05]])))).message, /type index 5 out of range \(0 types\)/);
  const badKind = moduleOf(section(2, vec([[...str("a"), ...str("b"), 0x09, 0x00]])));
  assert.match(formatError(badKind).message, /invalid import kind 0x9 for "a" "b"/);
});

test("invalid UTF-8 in a name is refused", () => {
  const bytes = moduleOf(section(7, vec([[0x02, 0xc3, 0x28, 0x00, 0x00]])));
  assert.match(formatError(bytes).message, /name is not valid UTF-8/);
});

test("garbage-collection types are refused as unsupported, not misread", () => {
  assert.throws(() => readModuleInfo(moduleOf(section(1, vec([[0x4e, 0x01, 0x60, 0x00, 0x00]])))), WasmUnsupportedError);
});

test("functionsModule helper builds a module the reader accepts", () => {
  const info = readModuleInfo(functionsModule([[0x00, 0x0b]]));
  assert.equal(info.functions.length, 1);
});
