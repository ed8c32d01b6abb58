import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ExecutorPool } from "../../src/sandbox/executor-pool.js";
import { initializeForSnapshot, instantiate, type PreparedModule } from "../../src/sandbox/guest.js";
import { resolveLimits } from "../../src/sandbox/limits.js";
import { captureSnapshot } from "../../src/sandbox/snapshot.js";
import { compilePrepared } from "../../src/sandbox/modules.js";
import { exportMutableGlobals, SNAPSHOT_GLOBAL_PREFIX } from "../../src/wasm/export-globals.js";
import { prepareModule } from "../../src/wasm/prepare.js";
import { readModuleInfo } from "../../src/wasm/reader.js";
import { fixture, text } from "./helpers.js";

const pool = new ExecutorPool({ size: 2 });
after(() => pool.close());

/** The module as an executor would get it for a snapshot, without the memory import (this test reads the instance's own). */
function prepareInProcess(bytes: Uint8Array): PreparedModule {
  const p = prepareModule(bytes, { maxMemoryPages: 65536, maxTableElements: 1_000_000, fuel: false, snapshot: true, recycleMemory: false });
  return compilePrepared(p, "test", 0, undefined);
}

describe("snapshots", () => {
  test("every mutable global the module defines is exported for the snapshot", () => {
    const bytes = fixture("primes-command.wasm");
    const { bytes: out, globals } = exportMutableGlobals(bytes);
    const info = readModuleInfo(out);
    assert.ok(globals.length >= 1);
    for (const g of globals) assert.ok(info.exports.some((e) => e.kind === "global" && e.name === g.exportName));
    assert.ok(globals.some((g) => g.exportName.startsWith(SNAPSHOT_GLOBAL_PREFIX)), "__stack_pointer is private and gets exported");
    // Nothing else moved: the same functions, exports plus the globals.
    assert.equal(info.codeBodies.length, readModuleInfo(bytes).codeBodies.length);
  });

  for (const name of ["primes-reactor.wasm", "values-reactor.wasm", "primes-command.wasm", "recurse.wasm", "counter.wasm"]) {
  test(`a restored ${name} has exactly the memory and globals of an instance that ran its initializer`, () => {
    const prepared = prepareInProcess(fixture(name));
    const limits = resolveLimits();
    const init = initializeForSnapshot(prepared, {}, limits);
    assert.equal(init.outcome.reason, "exit");
    assert.equal(init.initializer, name === "primes-command.wasm" ? "wizer.initialize" : "_initialize");
    const snap = captureSnapshot({
      id: "s1",
      moduleKey: "test",
      baseline: init.baseline,
      baselineTables: init.baselineTables,
      memory: init.guest.memory!,
      exports: init.guest.instance.exports,
      globals: prepared.snapshotGlobals,
      initializer: init.initializer,
      initMicros: init.initMicros,
    });
    assert.ok(snap.pageIndexes.length <= snap.memoryPages);
    assert.equal(snap.pageData.byteLength, snap.pageIndexes.length * 65536);
    const restored = instantiate(prepared, {}, limits, {}, snap);
    assert.deepEqual(new Uint8Array(restored.memory!.buffer), new Uint8Array(init.guest.memory!.buffer));
    for (const g of prepared.snapshotGlobals) {
      assert.equal((restored.instance.exports[g.exportName] as WebAssembly.Global).value, (init.guest.instance.exports[g.exportName] as WebAssembly.Global).value);
    }
  });
  }

  test("a reactor from a snapshot answers a sequence of calls exactly like a fresh one, bytes included", async () => {
    const bytes = fixture("values-reactor.wasm");
    const snap = await pool.snapshot(bytes);
    const fresh = await pool.reactor(bytes);
    const warm = await pool.reactor(bytes, { snapshot: snap });
    const calls: [string, (number | bigint | Uint8Array)[], "value" | "bytes"][] = [
      ["incr", [], "value"],
      ["reverse", [new TextEncoder().encode("snapshot")], "bytes"],
      ["add_i64", [1n << 40n, 7n], "value"],
      ["byte_sum", [new Uint8Array(5000).fill(3)], "value"],
      ["reverse", [new Uint8Array(100_000).map((_, i) => i)], "bytes"],
      ["incr", [], "value"],
    ];
    for (const [fn, args, result] of calls) {
      const a = await fresh.call(fn, args, { result });
      const b = await warm.call(fn, args, { result });
      assert.deepEqual(b.value, a.value, fn);
    }
    await fresh.close();
    await warm.close();
  });

  test("a command started from its wizer.initialize snapshot prints what a fresh run prints", async () => {
    const bytes = fixture("primes-command.wasm");
    const snap = await pool.snapshot(bytes);
    assert.equal(snap.initializer, "wizer.initialize");
    for (const n of ["97", "1000000", "1999993", "4"]) {
      const fresh = await pool.run(bytes, { args: ["primes", n] });
      const fromSnap = await pool.run(bytes, { args: ["primes", n], snapshot: snap });
      assert.equal(fromSnap.reason, "exit");
      assert.equal(text(fromSnap.stdout), text(fresh.stdout));
      assert.equal(fromSnap.exitCode, fresh.exitCode);
    }
    const out = await pool.run(bytes, { args: ["primes", "97"], snapshot: snap });
    assert.equal(text(out.stdout), "initialized once: 148933 primes below 2000000; 97 is prime\n");
  });

  test("a snapshot run skips the initialization (fuel counts it)", async () => {
    const bytes = fixture("primes-command.wasm");
    const limits = { fuel: 10n ** 12n };
    const snap = await pool.snapshot(bytes, { limits });
    const fresh = await pool.run(bytes, { args: ["p", "97"], limits });
    const fromSnap = await pool.run(bytes, { args: ["p", "97"], limits, snapshot: snap });
    assert.equal(text(fresh.stdout), text(fromSnap.stdout));
    assert.ok(fromSnap.fuelConsumed! * 100n < fresh.fuelConsumed!, `${fromSnap.fuelConsumed} vs ${fresh.fuelConsumed}`);
  });

  test("reactors started from a snapshot answer like freshly initialized ones", async () => {
    const bytes = fixture("primes-reactor.wasm");
    const snap = await pool.snapshot(bytes);
    const fresh = await pool.reactor(bytes);
    const warm = await pool.reactor(bytes, { snapshot: snap });
    for (const [fn, args] of [["prime_count", []], ["nth_prime", [0]], ["nth_prime", [12345]], ["is_prime", [3999971]], ["is_prime", [3999973]], ["calls", []]] as const) {
      const a = await fresh.call(fn, [...args]);
      const b = await warm.call(fn, [...args]);
      assert.equal(b.outcome.reason, "exit");
      assert.equal(b.value, a.value, `${fn}(${args.join(",")})`);
    }
    await fresh.close();
    await warm.close();
  });

  test("many instances from one snapshot are independent", async () => {
    const bytes = fixture("primes-reactor.wasm");
    const snap = await pool.snapshot(bytes);
    const a = await pool.reactor(bytes, { snapshot: snap });
    const b = await pool.reactor(bytes, { snapshot: snap });
    await a.call("prime_count");
    await a.call("prime_count");
    assert.equal((await a.call("calls")).value, 2);
    assert.equal((await b.call("calls")).value, 0);
    await a.close();
    await b.close();
  });

  test("a module without an initializer cannot be snapshotted, and says why", async () => {
    await assert.rejects(pool.snapshot(fixture("hello.wasm")), /neither "wizer.initialize" nor "_initialize"/);
  });

  test("a snapshot is refused for a module prepared with other limits", async () => {
    const bytes = fixture("primes-command.wasm");
    const snap = await pool.snapshot(bytes);
    await assert.rejects(pool.run(bytes, { snapshot: snap, limits: { maxMemoryBytes: 32 << 20 } }), /was taken from module/);
  });
});
