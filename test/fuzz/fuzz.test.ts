import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ExecutorPool } from "../../src/sandbox/executor-pool.js";
import { fuzz } from "./harness.js";

// A short, fixed-seed run: the same cases every time. `npm run fuzz` runs long ones.
const pool = new ExecutorPool({ size: 2 });
after(() => pool.close());

function summary(r: Awaited<ReturnType<typeof fuzz>>): string {
  return r.failures.map((f) => `${f.target} seed ${f.seed}: ${f.problem}\n  ${f.trail.split("\n").slice(-5).join("\n  ")}`).join("\n");
}

describe("fuzz (short run)", () => {
  test("mutated fixture modules are refused with a clear error or run to a named end, never a host crash", async () => {
    const r = await fuzz(pool, { firstSeed: 1, moduleCases: 300, runEvery: 1, hostcallCases: 0 });
    assert.equal(r.failures.length, 0, summary(r));
    assert.equal(r.cases, 300);
  });
  test("a guest calling every host function with random arguments gets only errnos", async () => {
    const r = await fuzz(pool, { firstSeed: 1, moduleCases: 0, runEvery: 1, hostcallCases: 25, hostcallCalls: 300 });
    assert.equal(r.failures.length, 0, summary(r));
    assert.ok((r.outcomes["hostcall:exit"] ?? 0) + (r.outcomes["hostcall:signal"] ?? 0) > 0, JSON.stringify(r.outcomes));
  });
});
