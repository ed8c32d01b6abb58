import { test } from "node:test";
import assert from "node:assert/strict";
import { BULK_SHARE, BURST_MS, ServingThreadPacer } from "../../src/manager/pacing.js";

test("a tenant alone on the serving thread is never made to wait, however much it spends", () => {
  const pacer = new ServingThreadPacer(() => 1);
  const t0 = performance.now();
  for (let i = 0; i < 100; i++) assert.equal(pacer.spend(50, t0 + i), 0);
});

test("with others active, a tenant past its burst waits until its share of the thread has paid for what it spent", () => {
  const weightShare = 1 / 3; // three tenants of the same weight
  const share = weightShare * BULK_SHARE;
  const pacer = new ServingThreadPacer(() => weightShare);
  const t0 = performance.now();
  assert.equal(pacer.spend(BURST_MS, t0), 0, "the burst is free");
  const wait = pacer.spend(3, t0);
  assert.ok(Math.abs(wait - 3 / share) < 1e-9, `3 ms over at a share of ${share} is ${3 / share} ms of waiting (got ${wait})`);
  // After the wait the debt is paid: the next small spend waits only for itself.
  assert.ok(Math.abs(pacer.spend(1, t0 + wait) - 1 / share) < 1e-9);
});

test("an idle tenant banks no more than the burst", () => {
  const pacer = new ServingThreadPacer(() => 0.5);
  const t0 = performance.now();
  pacer.spend(0, t0);
  assert.equal(pacer.spend(BURST_MS, t0 + 60_000), 0);
  assert.ok(pacer.spend(1, t0 + 60_000) > 0, "an hour idle buys only the burst");
});
