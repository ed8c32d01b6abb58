import { test } from "node:test";
import assert from "node:assert/strict";
import { Backoff, Supervisor } from "../../src/manager/supervisor.js";
import { TokenBucket, CpuWindow } from "../../src/manager/rate.js";
import { MemoryBudget } from "../../src/manager/budget.js";
import { effectiveQuotas, DEFAULT_TENANT_QUOTAS } from "../../src/manager/quotas.js";
import { encodeReactorRequest, checkReactorExports } from "../../src/sandbox/reactor-abi.js";

test("restart backoff doubles from base to max and resets after a long enough run", () => {
  const b = new Backoff({ baseMs: 100, maxMs: 1000, resetAfterMs: 5000 });
  assert.deepEqual([b.next(0), b.next(0), b.next(0), b.next(0), b.next(0)], [100, 200, 400, 800, 1000]);
  assert.equal(b.next(6000), 100);
});

test("a supervised service that keeps crashing is restarted with growing delays until stopped", async () => {
  const delays: number[] = [];
  let runs = 0;
  let sup!: Supervisor;
  const stopped = new Promise<void>((resolve) => {
    sup = new Supervisor(
      {
        run: async () => {
          runs++;
          return "exited with code 1";
        },
        onRestart: (delay) => {
          delays.push(delay);
          if (delays.length === 4) void sup.stop().then(resolve);
        },
      },
      { baseMs: 1, maxMs: 8, resetAfterMs: 60_000 },
    );
  });
  const keepAlive = setInterval(() => undefined, 1000); // the supervisor's timers are unref'd
  sup.start();
  await stopped;
  clearInterval(keepAlive);
  assert.deepEqual(delays, [1, 2, 4, 8]);
  assert.equal(runs, 4);
});

test("the token bucket allows its burst, then refuses with the wait until the next token", () => {
  const b = new TokenBucket(10, 2, 0);
  assert.equal(b.take(0), 0);
  assert.equal(b.take(0), 0);
  assert.ok(Math.abs(b.take(0) - 0.1) < 1e-9);
  assert.equal(b.take(100), 0);
});

test("the CPU window forgets usage older than a minute", () => {
  const w = new CpuWindow();
  w.add(30, 1_000);
  w.add(20, 30_000);
  assert.equal(w.used(30_500), 50);
  assert.equal(w.used(61_500), 20);
  assert.equal(w.used(95_000), 0);
  assert.equal(w.retryAfter(40, 30_500), 31);
});

test("memory admission refuses past the tenant quota, the instance quota and the node budget, and release gives it back", () => {
  const m = new MemoryBudget(100);
  const a = m.reserve("a", 60, 80, 10);
  assert.notEqual(typeof a, "string");
  assert.equal(m.reserve("a", 30, 80, 10), "tenant_memory");
  assert.equal(m.reserve("b", 50, 80, 10), "node_memory");
  assert.equal(m.reserve("b", 10, 80, 0), "tenant_instances");
  (a as { release(): void }).release();
  assert.notEqual(typeof m.reserve("b", 50, 80, 10), "string");
  assert.equal(m.used(), 50);
});

test("tenant quotas override the defaults field by field and ignore invalid values", () => {
  const q = effectiveQuotas({ maxApps: 3, memoryMiB: -1 });
  assert.equal(q.maxApps, 3);
  assert.equal(q.memoryMiB, DEFAULT_TENANT_QUOTAS.memoryMiB);
});

test("a reactor request is encoded as u32 meta length, NAME=VALUE\\0 strings, then the body", () => {
  const bytes = encodeReactorRequest({ A: "1", PATH_INFO: "/x" }, new TextEncoder().encode("body"));
  const len = new DataView(bytes.buffer).getUint32(0, true);
  assert.equal(new TextDecoder().decode(bytes.subarray(4, 4 + len)), "A=1\0PATH_INFO=/x\0");
  assert.equal(new TextDecoder().decode(bytes.subarray(4 + len)), "body");
  assert.match(checkReactorExports([{ name: "memory", kind: "memory" }])!, /uniwasm_alloc, uniwasm_http_handle/);
  assert.equal(checkReactorExports([{ name: "memory", kind: "memory" }, { name: "uniwasm_alloc", kind: "function" }, { name: "uniwasm_http_handle", kind: "function" }]), undefined);
});

test("a reactor pool warms up to minInstances distinct instances and stops idle ones above it", async () => {
  const { ReactorPool } = await import("../../src/manager/pool.js");
  let made = 0;
  const stopped: string[] = [];
  const pool = new ReactorPool({
    min: 2,
    max: 3,
    idleTimeoutMs: 10,
    create: async () => ({ id: `i${++made}`, handle: { handle: async () => ({ reason: "exit", exitCode: 0, durationMs: 0 }), memoryBytes: () => 0, close: async () => undefined }, reservation: { bytes: 0, release: () => undefined }, startedAt: 0, lastUsedAt: 0, requests: 0, busy: false }),
    destroy: async (inst) => void stopped.push(inst.id),
  });
  await pool.warm();
  assert.equal(pool.size, 2);
  const a = await pool.acquire();
  const b = await pool.acquire();
  const c = await pool.acquire();
  assert.deepEqual([a.cold, b.cold, c.cold], [false, false, true]);
  for (const x of [a, b, c]) pool.release(x.instance, false);
  assert.equal(pool.reap(Date.now() + 1000), 1);
  assert.equal(pool.size, 2);
  assert.equal(stopped.length, 1);
});
