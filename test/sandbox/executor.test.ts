import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ExecutorPool, WasmImage } from "../../src/sandbox/executor-pool.js";
import { fixture, text } from "./helpers.js";

// One executor, so that every run below goes through the same deadline timer.
const pool = new ExecutorPool({ size: 1 });
after(() => pool.close());

const hello = new WasmImage(fixture("hello.wasm"));
const spin = new WasmImage(fixture("spin.wasm"));

describe("executor deadlines", () => {
  test("a deadline sooner than the one the executor's timer is armed for still stops its guest", async () => {
    assert.equal((await pool.run(hello, { limits: { timeoutMs: 600_000 } })).reason, "exit");
    const r = await pool.run(spin, { limits: { timeoutMs: 50 } });
    assert.equal(r.reason, "deadline_exceeded");
  });

  test("a run after a shorter-lived one keeps its own, later deadline", async () => {
    await pool.whenReady();
    await pool.run(hello); // warm: the module is prepared and in the executor
    assert.equal((await pool.run(hello, { limits: { timeoutMs: 500 } })).reason, "exit");
    // The timer armed for the first run fires during this one: it must re-arm, not stop it.
    const t0 = performance.now();
    const r = await pool.run(spin, { limits: { timeoutMs: 1200 } });
    assert.equal(r.reason, "deadline_exceeded");
    assert.ok(performance.now() - t0 >= 1199, `stopped after ${(performance.now() - t0).toFixed(0)} ms, before its 1200 ms deadline`);
  });

  test("a deadline beyond setTimeout's 2^31-1 ms range does not stop a guest early", async () => {
    await pool.whenReady();
    const r = await pool.run(new WasmImage(fixture("sha256.wasm")), { args: ["sha256", "4"], limits: { timeoutMs: 2 ** 33 } });
    assert.equal(r.reason, "exit", r.message);
    assert.match(text(r.stdout), /^[0-9a-f]{64}/);
  });

  test("runs without a deadline are never stopped, between runs with one", async () => {
    await pool.whenReady();
    for (const timeoutMs of [Infinity, 50, Infinity]) {
      const r = await pool.run(hello, { limits: { timeoutMs } });
      assert.equal(r.reason, "exit");
    }
  });
});
