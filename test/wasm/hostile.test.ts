/**
 * Hostile input: truncated, mutated and adversarial modules. Every entry
 * point must either succeed or throw a WasmError (or a RangeError for a bad
 * argument), never anything else, and rewrites of modules V8 accepts must
 * still be accepted by V8.
 */
import { test } from "node:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import { funcType, readModuleInfo, type FuncType } from "../../src/wasm/reader.js";
import { isFuelExhausted, setFuel } from "../../src/wasm/fuel.js";
import { instrumentFuel, limitMemory } from "../../src/wasm/rewrite.js";
import { checkModule } from "../../src/wasm/validate.js";
import { WasmError, WasmFormatError } from "../../src/wasm/errors.js";
import { functionsModule, moduleOf, optionalFixture, prng, section, u32, wat, WAT_FIXTURES } from "./helpers.js";

type EntryPoint = [string, (bytes: Uint8Array) => unknown];
const ENTRY_POINTS: EntryPoint[] = [
  ["readModuleInfo", readModuleInfo],
  ["checkModule", (b) => checkModule(b)],
  ["instrumentFuel", (b) => instrumentFuel(b)],
  ["instrumentFuel(block)", (b) => instrumentFuel(b, { granularity: "block" })],
  ["limitMemory", (b) => limitMemory(b, 4)],
];

/** Runs `fn`; returns its result, or undefined if it threw a WasmError; fails on anything else. */
function survive<T>(what: string, fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (err instanceof WasmError) return undefined;
    assert.fail(`${what} threw ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
  }
}

const CORPUS: [string, Uint8Array][] = [
  ...WAT_FIXTURES.map((n): [string, Uint8Array] => [n, wat(n)]),
  ...(["c-sandbox/hello.wasm", "c-sandbox/sha256.wasm"] as const).flatMap((p): [string, Uint8Array][] => {
    const b = optionalFixture(p);
    return b ? [[p, b]] : [];
  }),
];

test("a fixture truncated at any byte offset gives a WasmError or a valid smaller module", () => {
  for (const [name, bytes] of CORPUS) {
    // Every offset for the WAT fixtures; a stride for the large C ones.
    const step = bytes.length > 4096 ? 37 : 1;
    for (let cut = 0; cut < bytes.length; cut += step) {
      const truncated = bytes.subarray(0, cut);
      for (const [entry, fn] of ENTRY_POINTS) survive(`${entry}(${name}[0..${cut}])`, () => fn(truncated));
      const err = (() => {
        try {
          readModuleInfo(truncated);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      if (err !== undefined) assert.ok(err instanceof WasmFormatError, `${name}[0..${cut}]: ${String(err)}`);
    }
  }
});

test("truncation inside a section is reported as truncation with the section named", () => {
  const bytes = wat("compute");
  const info = readModuleInfo(bytes);
  const code = info.sections.find((s) => s.id === 10)!;
  const cut = code.contentOffset + Math.floor(code.size / 2);
  assert.throws(
    () => readModuleInfo(bytes.subarray(0, cut)),
    (err: unknown) => err instanceof WasmFormatError && err.truncated && err.section === "code" && /^truncated code section at offset 0x[0-9a-f]+: expected \d+ more bytes$/.test(err.message),
  );
});

test("random byte mutations never throw anything but a WasmError, and valid mutants stay valid when rewritten", () => {
  const next = prng(0x5eed);
  let rewrittenValid = 0;
  for (const [name, original] of CORPUS.filter(([n]) => !n.startsWith("c-sandbox"))) {
    for (let i = 0; i < 300; i++) {
      const bytes = original.slice();
      const flips = 1 + (next() % 4);
      for (let f = 0; f < flips; f++) {
        const at = 8 + (next() % (bytes.length - 8));
        bytes[at] = next() % 3 === 0 ? 0xff : next() & 0xff;
      }
      for (const [entry, fn] of ENTRY_POINTS) survive(`${entry}(mutant ${i} of ${name})`, () => fn(bytes));
      if (!WebAssembly.validate(bytes)) continue;
      // V8 accepts the mutant: rewrites must keep it acceptable (or refuse it clearly).
      const fuel = survive("instrumentFuel", () => instrumentFuel(bytes));
      if (fuel) {
        assert.ok(WebAssembly.validate(fuel.bytes), `fuel rewrite of valid mutant ${i} of ${name} is invalid`);
        rewrittenValid++;
      }
      const mem = survive("limitMemory", () => limitMemory(bytes, 1000));
      if (mem) assert.ok(WebAssembly.validate(mem.bytes), `memory rewrite of valid mutant ${i} of ${name} is invalid`);
    }
  }
  assert.ok(rewrittenValid > 0, "some valid mutants were rewritten");
});

test("huge declared counts in every vector section fail at once", () => {
  for (const id of [1, 2, 3, 4, 5, 6, 7, 9, 10, 11]) {
    const bytes = moduleOf(section(id, [...u32(0xfffffff0), 0x00]));
    assert.throws(() => readModuleInfo(bytes), WasmFormatError, `section ${id}`);
  }
});

test("a br_table with a huge declared target count fails at once", () => {
  const body = [0x00, 0x41, 0x00, 0x0e, ...u32(0x7fffffff), 0x00, 0x0b];
  for (const [entry, fn] of ENTRY_POINTS.slice(1, 3)) {
    assert.throws(() => fn(functionsModule([body])), WasmFormatError, entry);
  }
});

test("bad LEB128 in instructions is refused by the code scanners", () => {
  const body = [0x00, 0x41, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x1a, 0x0b]; // i32.const with a 6-byte LEB
  for (const [entry, fn] of ENTRY_POINTS.slice(1, 4)) {
    assert.throws(() => fn(functionsModule([body])), /LEB128 s32 is longer than 5 bytes/, entry);
  }
});

test("deep nesting is rewritten without recursion and the rewrite still compiles", async () => {
  const depth = 50_000;
  const body = [0x00, ...new Array<number>(depth).fill(0).flatMap(() => [0x03, 0x40]), ...new Array<number>(depth + 1).fill(0x0b)];
  const bytes = functionsModule([body]);
  for (const granularity of ["loop", "block"] as const) {
    const result = instrumentFuel(bytes, { granularity });
    assert.equal(result.chargePoints, 0, "empty loops cost nothing");
    assert.ok(WebAssembly.validate(result.bytes));
  }
});

test("unbalanced bodies are refused: missing end, stray else, code after the end", () => {
  const cases: [number[], RegExp][] = [
    [[0x00, 0x02, 0x40, 0x0b], /ends without its final end/],
    [[0x00, 0x05, 0x0b], /else outside an if/],
    [[0x00, 0x0b, 0x01], /1 bytes after the final end/],
    [[0x00, 0x0c, 0x05, 0x0b], /branch depth 5 exceeds/],
  ];
  for (const [body, message] of cases) {
    assert.throws(() => instrumentFuel(functionsModule([body])), message);
  }
});

test("unknown opcodes and unsupported proposals are refused by name", () => {
  assert.throws(() => instrumentFuel(functionsModule([[0x00, 0xfb, 0x00, 0x0b]])), /garbage collection is not supported/);
  assert.throws(() => instrumentFuel(functionsModule([[0x00, 0x1f, 0x40, 0x00, 0x0b, 0x0b]])), /exnref exception handling is not supported/);
  assert.throws(() => instrumentFuel(functionsModule([[0x00, 0x27, 0x0b]])), /unknown opcode 0x27/);
  assert.throws(() => instrumentFuel(functionsModule([[0x00, 0xfd, 0xff, 0x0f, 0x0b]])), /unknown SIMD instruction/);
});

test("valid mutants compute the same results metered as unmetered (differential run)", () => {
  const next = prng(0xd1ff);
  const outcome = (fn: () => unknown): string => {
    try {
      return `ok:${String(fn())}`;
    } catch (err) {
      return `trap:${err instanceof Error ? `${err.name}:${err.message}` : String(err)}`;
    }
  };
  let compared = 0;
  for (const name of ["compute", "exceptions", "features", "loop", "memory", "traps"]) {
    const original = wat(name);
    for (let i = 0; i < 150; i++) {
      const bytes = original.slice();
      for (let f = 1 + (next() % 3); f > 0; f--) bytes[8 + (next() % (bytes.length - 8))] = next() & 0xff;
      if (!WebAssembly.validate(bytes)) continue;
      const info = survive("readModuleInfo", () => readModuleInfo(bytes));
      const rewritten = survive("instrumentFuel", () => instrumentFuel(bytes, { granularity: next() % 2 ? "loop" : "block", initialFuel: 100_000n }));
      if (!info || !rewritten) continue;
      let metered: WebAssembly.Instance;
      let plain: WebAssembly.Instance;
      try {
        metered = new WebAssembly.Instance(new WebAssembly.Module(rewritten.bytes), {});
        plain = new WebAssembly.Instance(new WebAssembly.Module(bytes), {});
      } catch {
        continue; // a start function that traps, or a mutated import
      }
      for (const ex of info.exports) {
        if (ex.kind !== "function") continue;
        const sig: FuncType = funcType(info, ex.index)!;
        if (sig.params.some((p) => p !== "i32")) continue;
        const args: number[] = sig.params.map(() => next() % 50);
        setFuel(metered, 1_000_000n);
        const got = outcome(() => (metered.exports[ex.name] as (...a: number[]) => unknown)(...args));
        if (isFuelExhausted(metered)) continue; // the plain run might never end
        const want = outcome(() => (plain.exports[ex.name] as (...a: number[]) => unknown)(...args));
        assert.equal(got, want, `mutant ${i} of ${name}: ${ex.name}(${args.join(", ")})`);
        compared++;
      }
    }
  }
  assert.ok(compared > 100, `compared ${compared} calls`);
});

// Debian's binaryen by absolute path: under `npm test`, node_modules/.bin comes first on PATH and
// holds the JS build of wasm-opt that assemblyscript depends on, a different binaryen version.
const WASM_OPT = "/usr/bin/wasm-opt";
const hasWasmOpt = spawnSync(WASM_OPT, ["--version"]).status === 0;
test(
  "random modules from binaryen's translate-to-fuzz run the same metered as unmetered",
  { skip: hasWasmOpt ? false : "wasm-opt not installed (apt-get install binaryen)" },
  () => {
    const dir = mkdtempSync(join(tmpdir(), "uniwasm-ttf-"));
    const next = prng(0x77f);
    let compared = 0;
    const failures: string[] = [];
    try {
      for (let i = 0; i < 25; i++) {
        const seed = Uint8Array.from({ length: 2000 + (next() % 8000) }, () => next() & 0xff);
        writeFileSync(join(dir, "seed"), seed);
        const out = join(dir, "m.wasm");
        const flags = ["--enable-simd", "--enable-bulk-memory", "--enable-sign-ext", "--enable-nontrapping-float-to-int", "--enable-multivalue", "--enable-tail-call", "--enable-exception-handling"];
        // A busy machine can fail a spawn (EAGAIN); try again before giving up on this seed.
        let gen = spawnSync(WASM_OPT, ["-ttf", join(dir, "seed"), "-o", out, ...flags], { encoding: "utf8" });
        for (let retry = 0; retry < 3 && gen.status === null; retry++) gen = spawnSync(WASM_OPT, ["-ttf", join(dir, "seed"), "-o", out, ...flags], { encoding: "utf8" });
        if (gen.status !== 0) {
          failures.push(`seed ${i}: ${gen.error?.message ?? `status ${gen.status}`} ${gen.stderr ?? ""}`.trim());
          continue;
        }
        const bytes = new Uint8Array(readFileSync(out));
        if (!WebAssembly.validate(bytes)) continue;
        const info = readModuleInfo(bytes);
        checkModule(bytes);
        const metered = instrumentFuel(bytes, { granularity: i % 2 ? "block" : "loop", initialFuel: 1n << 40n }).bytes;
        assert.ok(WebAssembly.validate(metered), `module ${i} still validates`);
        const instance = (b: Uint8Array, log: string[]): WebAssembly.Instance => {
          const imports: Record<string, Record<string, WebAssembly.ImportValue>> = {};
          for (const imp of info.imports) {
            imports[imp.module] ??= {};
            if (imp.kind === "function") imports[imp.module]![imp.name] = (...a: unknown[]) => void log.push(`${imp.name}(${a.map(String).join(";")})`);
          }
          return new WebAssembly.Instance(new WebAssembly.Module(b), imports);
        };
        const logA: string[] = [];
        const logB: string[] = [];
        const a = instance(metered, logA);
        const b = instance(bytes, logB);
        for (const ex of info.exports) {
          if (ex.kind !== "function") continue;
          const args = funcType(info, ex.index)!.params.map((p) => (p === "i64" ? 3n : 3));
          const run = (inst: WebAssembly.Instance, log: string[]): string => {
            log.length = 0;
            let result: string;
            try {
              result = `ok:${String((inst.exports[ex.name] as (...x: unknown[]) => unknown)(...args))}`;
            } catch (err) {
              result = `trap:${err instanceof Error ? err.message : String(err)}`;
            }
            return `${result}|${log.join(",")}`;
          };
          setFuel(a, 1n << 40n);
          const got = run(a, logA);
          assert.equal(isFuelExhausted(a), false);
          assert.equal(got, run(b, logB), `module ${i}: ${ex.name}`);
          compared++;
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.ok(compared > 50, `compared ${compared} calls; wasm-opt failures: ${failures.slice(0, 3).join(" | ")}`);
  },
);
