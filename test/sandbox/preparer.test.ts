import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ExecutorPool } from "../../src/sandbox/executor-pool.js";
import { threadCpuMs } from "../../src/sandbox/modules.js";
import { ExecutorPoolRunner } from "../../src/manager/executor-pool-runner.js";
import { WasmLimitError } from "../../src/wasm/errors.js";
import { bigModule } from "./big-module.js";
import { fixture, text } from "./helpers.js";

const pool = new ExecutorPool({ size: 1 });
after(() => pool.close());

describe("module preparation", () => {
  test("a pool prepares modules on a thread of its own and reports what that cost", async (t) => {
    const bytes = bigModule(20_000, 120); // ~2.5 MB
    const cpu0 = threadCpuMs();
    const prepared = await pool.prepare(bytes, pool.limits());
    const cpu1 = threadCpuMs();
    assert.ok(prepared.cost.wallMs > 0);
    if (cpu0 === undefined || cpu1 === undefined || prepared.cost.cpuMs === undefined) return t.skip("no per-thread CPU clock on this platform");
    assert.ok(prepared.cost.cpuMs > 0);
    // This thread only handed the bytes over and took the compiled module back.
    assert.ok(cpu1 - cpu0 < prepared.cost.cpuMs / 2, `this thread spent ${(cpu1 - cpu0).toFixed(1)} ms of CPU, the preparer ${prepared.cost.cpuMs.toFixed(1)} ms`);
    const r = await pool.run(bytes);
    assert.equal(r.reason, "exit");
  });

  test("a preparation's error comes back as the same WasmError, with its fields", async () => {
    const strict = new ExecutorPool({ size: 1, moduleLimits: { maxFunctions: 10 } });
    try {
      await assert.rejects(strict.prepare(bigModule(100), strict.limits()), (err: unknown) => {
        assert.ok(err instanceof WasmLimitError, String(err));
        assert.equal(err.limit, "maxFunctions");
        assert.equal(err.actual, 101);
        assert.match(err.message, /exceeds the limit of 10 \(maxFunctions\)/);
        return true;
      });
      const r = await strict.run(bigModule(100));
      assert.equal(r.reason, "invalid_module");
      assert.match(r.message, /maxFunctions/);
    } finally {
      await strict.close();
    }
  });

  test("a module of 620,000 functions is prepared and runs (V8's limit is 1,000,000)", async () => {
    const r = await pool.run(bigModule(620_000, 12));
    assert.equal(r.reason, "exit", r.message);
  });

  test("the same module prepared inline gives the same runs", async () => {
    const inline = new ExecutorPool({ size: 1, prepare: "inline" });
    try {
      const r = await inline.run(fixture("hello.wasm"));
      assert.equal(text(r.stdout), "hello from the sandbox\n");
    } finally {
      await inline.close();
    }
  });

  test("a runner reports the cost of a preparation once, and nothing for a cached module", async () => {
    const runner = new ExecutorPoolRunner({ executors: 1 });
    try {
      const module = { digest: "sha256:test-big", bytes: bigModule(5000, 60) };
      const first = await runner.prepare(module);
      assert.equal(first.prepared, true);
      assert.ok(first.wallMs > 0);
      const again = await runner.prepare(module);
      assert.equal(again.prepared, false, "a cached module is not prepared again");
      assert.equal(again.wallMs, 0, "and costs nothing");
      assert.deepEqual(again.imports, first.imports, "its imports (for placement) come from the cache");
    } finally {
      await runner.close();
    }
  });
});
