import { test } from "node:test";
import assert from "node:assert/strict";
import { openSync, closeSync, readFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WASI } from "node:wasi";
import { instrumentFuel, FUEL_EXPORT, type FuelGranularity } from "../../src/wasm/rewrite.js";
import { fuelConsumed, fuelGlobal, isFuelExhausted, remainingFuel, setFuel } from "../../src/wasm/fuel.js";
import { readModuleInfo } from "../../src/wasm/reader.js";
import { describeTrap } from "../../src/wasm/backtrace.js";
import { WasmError } from "../../src/wasm/errors.js";
import { moduleOf, optionalFixture, section, str, wat, WAT_FIXTURES } from "./helpers.js";

const GRANULARITIES: FuelGranularity[] = ["loop", "block"];

async function metered(name: string, granularity: FuelGranularity = "loop", imports: WebAssembly.Imports = {}): Promise<WebAssembly.Instance> {
  const { bytes } = instrumentFuel(wat(name), { granularity });
  return (await WebAssembly.instantiate(bytes, imports)).instance;
}

function call(instance: WebAssembly.Instance, name: string, ...args: unknown[]): unknown {
  return (instance.exports[name] as (...a: unknown[]) => unknown)(...args);
}

/** Runs `fn`, which must trap, and returns the trap. */
function trapOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  assert.fail("expected a trap");
}

for (const granularity of GRANULARITIES) {
  test(`[${granularity}] a metered loop stops at exactly the same iteration on every run`, async () => {
    // spin's loop costs 5 per iteration (4 instructions + br); entry is free.
    for (const fuel of [0n, 4n, 5n, 1000n, 12_345n]) {
      const seen = new Set<number>();
      for (let run = 0; run < 3; run++) {
        const instance = await metered("loop", granularity);
        setFuel(instance, fuel);
        const err = trapOf(() => call(instance, "spin"));
        assert.ok(err instanceof WebAssembly.RuntimeError);
        assert.equal(isFuelExhausted(instance), true);
        seen.add((instance.exports.iterations as WebAssembly.Global).value as number);
      }
      assert.deepEqual([...seen], [Number(fuel / 5n)], `fuel ${fuel}`);
    }
  });

  test(`[${granularity}] fuel consumed is reported exactly for a loop of known cost`, async () => {
    // sum(n): 14 per loop iteration (n + 1 of them, the last exits at br_if) + 1 for the result.
    const instance = await metered("loop", granularity);
    for (const n of [0, 1, 10, 1000]) {
      setFuel(instance, 1_000_000n);
      assert.equal(call(instance, "sum", n), BigInt((n * (n - 1)) / 2));
      assert.equal(fuelConsumed(instance, 1_000_000n), BigInt(14 * (n + 1) + 1), `sum(${n})`);
    }
  });

  test(`[${granularity}] the metered compute fixture returns what the original returns`, async () => {
    const plain = (await WebAssembly.instantiate(wat("compute"))).instance;
    const instance = await metered("compute", granularity);
    setFuel(instance, 1n << 40n);
    const cases: [string, unknown[]][] = [
      ["fib", [20]], ["primes", [10_000]], ["dispatch", [0, 5, 3]], ["dispatch", [1, 5, 3]], ["dispatch", [2, 5, 3]],
      ["dispatch", [3, 5, 3]], ["dispatch", [9, 5, 3]], ["mix", [1000]], ["checksum", []], ["nulls", []],
      ["classify", [-5]], ["classify", [0]], ["classify", [5]],
    ];
    for (const [name, args] of cases) {
      assert.deepEqual(call(instance, name, ...args), call(plain, name, ...args), `${name}(${args.join(", ")})`);
    }
  });

  test(`[${granularity}] the same calls always cost the same fuel`, async () => {
    const costs = new Set<bigint>();
    for (let run = 0; run < 3; run++) {
      const instance = await metered("compute", granularity);
      setFuel(instance, 1n << 40n);
      call(instance, "fib", 15);
      call(instance, "primes", 500);
      costs.add(fuelConsumed(instance, 1n << 40n));
    }
    assert.equal(costs.size, 1);
    assert.ok([...costs][0]! > 0n);
  });

  test(`[${granularity}] SIMD, atomics and tail calls keep working metered`, async () => {
    const plain = (await WebAssembly.instantiate(wat("features"))).instance;
    const instance = await metered("features", granularity);
    setFuel(instance, 1_000_000n);
    assert.equal(call(instance, "simd", 7), call(plain, "simd", 7));
    assert.equal(call(instance, "atomic"), call(plain, "atomic"));
    assert.equal(call(instance, "tail", 100), 42);
    // A tail-recursive countdown is still metered: it runs out like any loop.
    setFuel(instance, 50n);
    trapOf(() => call(instance, "tail", 1_000_000));
    assert.equal(isFuelExhausted(instance), true);
  });

  test(`[${granularity}] fuel a callee spends before throwing stays spent after the catch`, async () => {
    // burn_then_throw(n) costs 2 + 6n; catch_it adds 5 around it.
    const instance = await metered("exceptions", granularity);
    for (const n of [1, 10, 100]) {
      setFuel(instance, 100_000n);
      assert.equal(call(instance, "catch_it", n), 107);
      const used = fuelConsumed(instance, 100_000n);
      if (granularity === "loop") assert.equal(used, BigInt(7 + 6 * n));
      else assert.ok(used >= BigInt(2 + 6 * n), `callee's ${2 + 6 * n} counted, got ${used}`);
    }
    setFuel(instance, 100_000n);
    assert.equal(call(instance, "catch_all", 10), 1);
  });

  test(`[${granularity}] running out of fuel cannot be caught by the guest`, async () => {
    const instance = await metered("exceptions", granularity);
    setFuel(instance, 30n);
    const err = trapOf(() => call(instance, "catch_all", 1000));
    assert.ok(err instanceof WebAssembly.RuntimeError);
    assert.equal(isFuelExhausted(instance), true);
  });
}

test("a fuel trap is told apart from an unreachable the program executes", async () => {
  const traps = await metered("traps");
  setFuel(traps, 1000n);
  const err = trapOf(() => call(traps, "unreachable"));
  assert.equal(isFuelExhausted(traps), false);
  assert.equal(describeTrap(err, { instance: traps }).reason, "unreachable");

  const loop = await metered("loop");
  setFuel(loop, 100n);
  const fuelErr = trapOf(() => call(loop, "spin"));
  const info = describeTrap(fuelErr, { instance: loop });
  assert.equal(info.reason, "fuel_exhausted");
  assert.equal(info.message, "fuel exhausted");
  assert.equal(remainingFuel(loop), 0n);
  assert.equal(fuelConsumed(loop, 100n), 100n);
});

test("other traps leave fuel non-negative, so they are never taken for exhaustion", async () => {
  const traps = await metered("traps");
  for (const name of ["oob", "div_zero", "div_overflow", "bad_conversion", "table_oob", "null_call", "nested"]) {
    setFuel(traps, 1000n);
    trapOf(() => call(traps, name));
    assert.equal(isFuelExhausted(traps), false, name);
  }
});

test("an exhausted reactor can be refuelled and called again", async () => {
  const instance = await metered("loop");
  setFuel(instance, 50n);
  trapOf(() => call(instance, "spin"));
  assert.equal((instance.exports.iterations as WebAssembly.Global).value, 10);
  setFuel(instance, 50n);
  trapOf(() => call(instance, "spin"));
  assert.equal((instance.exports.iterations as WebAssembly.Global).value, 20);
});

test("the host can charge fuel for its own work during an import call", async () => {
  let instance: WebAssembly.Instance | undefined;
  const charging = {
    env: {
      tick: () => {
        const g = fuelGlobal(instance!)!;
        g.value = (g.value as bigint) - 100n;
      },
    },
  };
  instance = await metered("hostcall", "loop", charging);
  setFuel(instance, 1000n);
  trapOf(() => call(instance!, "run", 100));
  assert.equal((instance.exports.ticks as WebAssembly.Global).value, 10);
  assert.equal(isFuelExhausted(instance), true);

  const free = await metered("hostcall", "loop", { env: { tick: () => {} } });
  setFuel(free, 1000n);
  call(free, "run", 100); // 10 per iteration: exactly enough
  assert.equal((free.exports.ticks as WebAssembly.Global).value, 100);
  assert.equal(remainingFuel(free), 0n);
});

test("a start function runs on the initial fuel given at instrumentation", async () => {
  // init's loop: 8 per iteration, 10 iterations.
  const exact = instrumentFuel(wat("start"), { initialFuel: 80n });
  const { instance } = await WebAssembly.instantiate(exact.bytes);
  assert.equal((instance.exports.ran as WebAssembly.Global).value, 10);
  assert.equal(remainingFuel(instance), 0n);

  const short = instrumentFuel(wat("start"), { initialFuel: 79n });
  await assert.rejects(WebAssembly.instantiate(short.bytes), WebAssembly.RuntimeError);
});

test("deferStart exports the start function so the host can fuel each instance first", async () => {
  const result = instrumentFuel(wat("start"), { deferStart: true });
  assert.equal(result.startExport, "uniwasm_start");
  assert.equal(readModuleInfo(result.bytes).start, undefined);
  const { instance } = await WebAssembly.instantiate(result.bytes);
  assert.equal((instance.exports.ran as WebAssembly.Global).value, 0, "start did not run at instantiation");
  setFuel(instance, 80n);
  call(instance, "uniwasm_start");
  assert.equal((instance.exports.ran as WebAssembly.Global).value, 10);
  assert.equal(instrumentFuel(wat("loop"), { deferStart: true }).startExport, undefined, "no start, nothing to defer");
});

test("a host that never sets fuel gets a fuel trap, not an unmetered run", async () => {
  const instance = await metered("loop");
  trapOf(() => call(instance, "spin"));
  assert.equal(isFuelExhausted(instance), true);
  assert.equal((instance.exports.iterations as WebAssembly.Global).value, 0);
});

test("block granularity charges only the arms taken; loop granularity charges an upper bound", async () => {
  const used: Record<string, bigint> = {};
  for (const granularity of GRANULARITIES) {
    const instance = await metered("compute", granularity);
    setFuel(instance, 1000n);
    call(instance, "classify", -5);
    used[granularity] = fuelConsumed(instance, 1000n);
  }
  // classify(-5): lt_s test (4) + return's i32.const (1) actually run.
  assert.equal(used.block, 5n);
  assert.ok(used.loop! > used.block!, `loop ${used.loop} > block ${used.block}`);
});

test("instrumenting keeps function indices, names and exports, and adds the fuel export", () => {
  for (const name of WAT_FIXTURES) {
    const bytes = wat(name);
    const before = readModuleInfo(bytes);
    const result = instrumentFuel(bytes);
    const after = readModuleInfo(result.bytes);
    assert.deepEqual(after.names.functions, before.names.functions, name);
    assert.deepEqual(after.functions, before.functions, name);
    assert.deepEqual(after.exports.slice(0, -1), before.exports, name);
    assert.deepEqual(after.exports.at(-1), { name: FUEL_EXPORT, kind: "global", index: result.globalIndex });
    assert.deepEqual(after.globals.at(-1), { valType: "i64", mutable: true });
    assert.ok(WebAssembly.validate(result.bytes), `${name} still validates`);
  }
});

test("instrumenting an instrumented module is refused", () => {
  const once = instrumentFuel(wat("loop")).bytes;
  assert.throws(() => instrumentFuel(once), (err: unknown) => err instanceof WasmError && /already exports "uniwasm_fuel"/.test(err.message));
});

test("a custom fuel export name is honoured", async () => {
  const { bytes } = instrumentFuel(wat("loop"), { exportName: "gas" });
  const { instance } = await WebAssembly.instantiate(bytes);
  assert.equal(fuelGlobal(instance), undefined);
  setFuel(instance, 10n, "gas");
  trapOf(() => call(instance, "spin"));
  assert.equal(isFuelExhausted(instance, "gas"), true);
});

test("DWARF and other offset-bound custom sections are dropped, others kept", () => {
  const bytes = Uint8Array.from([
    ...wat("nonames"),
    ...section(0, [...str(".debug_info"), 1, 2, 3]),
    ...section(0, [...str("producers"), 0]),
  ]);
  const result = instrumentFuel(bytes);
  assert.deepEqual(result.droppedSections, [".debug_info"]);
  assert.deepEqual(readModuleInfo(result.bytes).customSections.map((c) => c.name), ["producers"]);
});

test("a module without functions or globals gets a global and an export section", async () => {
  const { bytes } = instrumentFuel(moduleOf(), { initialFuel: 5n });
  const { instance } = await WebAssembly.instantiate(bytes);
  assert.equal(remainingFuel(instance), 5n);
});

test("setFuel refuses negative or oversized fuel and instances without the global", async () => {
  const instance = await metered("loop");
  assert.throws(() => setFuel(instance, -1n), RangeError);
  assert.throws(() => setFuel(instance, 1n << 63n), RangeError);
  const plain = (await WebAssembly.instantiate(wat("loop"))).instance;
  assert.throws(() => setFuel(plain, 1n), /no "uniwasm_fuel" global/);
  assert.equal(isFuelExhausted(plain), false);
});

const sha256 = optionalFixture("c-sandbox/sha256.wasm");
test("the C sha256 kernel prints the same digest metered and unmetered", { skip: sha256 ? false : "test/fixtures/c-sandbox/sha256.wasm not built" }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "uniwasm-fuel-"));
  try {
    const run = async (bytes: Uint8Array, fuel?: bigint): Promise<[string, bigint]> => {
      const out = join(dir, "out");
      const fd = openSync(out, "w");
      try {
        const wasi = new WASI({ version: "preview1", args: ["sha256", "1"], stdout: fd, returnOnExit: true });
        const { instance } = await WebAssembly.instantiate(bytes, wasi.getImportObject() as WebAssembly.Imports);
        if (fuel !== undefined) setFuel(instance, fuel);
        assert.equal(wasi.start(instance), 0);
        return [readFileSync(out, "utf8"), fuel === undefined ? 0n : fuelConsumed(instance, fuel)];
      } finally {
        closeSync(fd);
      }
    };
    const [expected] = await run(sha256!);
    assert.match(expected, /^[0-9a-f]{64}\n$/);
    const results = new Set<string>();
    for (const granularity of GRANULARITIES) {
      const { bytes } = instrumentFuel(sha256!, { granularity });
      const [digest, used] = await run(bytes, 1n << 50n);
      assert.equal(digest, expected, granularity);
      const [, again] = await run(bytes, 1n << 50n);
      assert.equal(again, used, `${granularity}: same fuel on every run`);
      results.add(`${granularity}:${used}`);
      // With a budget of half the fuel it needs, it stops, at the same point each time.
      const half = used / 2n;
      const wasi = new WASI({ version: "preview1", args: ["sha256", "1"], returnOnExit: true });
      const { instance } = await WebAssembly.instantiate(bytes, wasi.getImportObject() as WebAssembly.Imports);
      setFuel(instance, half);
      const err = trapOf(() => wasi.start(instance));
      assert.equal(describeTrap(err, { instance }).reason, "fuel_exhausted");
    }
    assert.equal(results.size, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
