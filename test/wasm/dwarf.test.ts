/** Source lines in trap backtraces, from the module's DWARF line table (clang -g). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { readLineTable } from "../../src/wasm/dwarf.js";
import { bytesOf, demangle, formatBacktrace } from "../../src/wasm/backtrace.js";
import { readModuleInfo } from "../../src/wasm/reader.js";
import { runModule } from "../../src/sandbox/inline.js";
import { ExecutorPool } from "../../src/sandbox/executor-pool.js";
import { fixturePath, wat } from "./helpers.js";

const source = readFileSync(fixturePath("dwarf/trap.c"), "utf8").split("\n");
const lineOf = (marker: string) => source.findIndex((l) => l.includes(marker)) + 1;
const TRAP = lineOf("/* TRAP */");
const CALL = lineOf("/* CALL */");
const fixture = (v: number) => new Uint8Array(readFileSync(fixturePath(`dwarf/trap-dwarf${v}.wasm`)));

function sections(bytes: Uint8Array): Map<string, Uint8Array> {
  const info = readModuleInfo(bytes);
  return new Map(info.customSections.map((c) => [c.name, bytesOf(bytes)(c)]));
}

for (const v of [4, 5]) {
  test(`a DWARF ${v} line table maps the trapping instruction to its source line`, async () => {
    const bytes = fixture(v);
    const table = readLineTable(sections(bytes))!;
    assert.ok(table && table.size > 0);
    const r = await runModule(bytes, { stdout: "buffer", stderr: "buffer" });
    assert.equal(r.reason, "trap");
    const [inner, caller] = r.trap!.frames;
    assert.equal(inner!.name, "check");
    assert.match(inner!.source!.file, /trap\.c$/);
    assert.equal(inner!.source!.line, TRAP);
    assert.equal(caller!.name, "outer");
    assert.equal(caller!.source!.line, CALL);
    assert.match(r.trap!.backtrace, new RegExp(`0: check \\(func\\[\\d+\\] @ 0x[0-9a-f]+\\) at \\S*trap\\.c:${TRAP}:\\d+`));
  });
}

test("frames of a module the sandbox rewrote (memory limit, fuel) keep the original module's offsets and source lines", async () => {
  const bytes = fixture(5);
  const plain = (await runModule(bytes, { stdout: "buffer" })).trap!.frames;
  const pool = new ExecutorPool({ size: 1 });
  try {
    for (const limits of [{ maxMemoryBytes: 16 << 20 }, { maxMemoryBytes: 16 << 20, fuel: 1_000_000 }]) {
      const r = await pool.run(bytes, { limits });
      assert.equal(r.reason, "trap", JSON.stringify(limits));
      assert.deepEqual(
        r.trap!.frames.map((f) => [f.name, f.offset, f.source?.line]),
        plain.map((f) => [f.name, f.offset, f.source?.line]),
        JSON.stringify(limits),
      );
      assert.equal(r.trap!.frames[0]!.source!.line, TRAP);
    }
  } finally {
    await pool.close();
  }
});

test("a module without DWARF, or with a damaged line table, gets names and offsets but no lines, never an error", async () => {
  assert.equal(readLineTable(sections(wat("traps"))), undefined);
  const line = sections(fixture(4)).get(".debug_line")!;
  for (const cut of [1, 7, 20, Math.floor(line.length / 2), line.length - 1]) {
    const table = readLineTable(new Map([[".debug_line", line.subarray(0, cut)]]));
    if (table) assert.ok(table.lookup(0) === undefined || typeof table.lookup(0)!.line === "number");
  }
  const garbage = new Uint8Array(64).map((_, i) => (i * 37) & 0xff);
  assert.doesNotThrow(() => readLineTable(new Map([[".debug_line", garbage]])));
});

test("backtraces show Rust and C++ symbols as source names (legacy Rust mangling, C++ names without parameter types)", () => {
  assert.equal(demangle("_ZN3std7process5abort17h7684f52b170e25fcE"), "std::process::abort");
  assert.equal(demangle("_ZN68_$LT$core..fmt..builders..PadAdapter$u20$as$u20$core..fmt..Write$GT$9write_str17h0123456789abcdefE"), "<core::fmt::builders::PadAdapter as core::fmt::Write>::write_str");
  assert.equal(demangle("_ZN4demo5crashEPVi"), "demo::crash");
  assert.equal(demangle("_Z5crashPi"), "crash");
  for (const plain of ["main", "_start", "_Zfoo", "_ZN3abc", "_ZN99abcE"]) assert.equal(demangle(plain), plain);
  assert.equal(formatBacktrace([{ funcIndex: 3, name: "_ZN4main5crash17h644759154a7a5946E", offset: 0x4d3 }]), "  0: main::crash (func[3] @ 0x4d3)");
});
