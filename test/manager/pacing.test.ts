import { test } from "node:test";
import assert from "node:assert/strict";
import { ALONE, BULK_SHARE, CPU_BURST_MS, cpuShare, SharePacer, THREAD_BURST_MS, threadShare } from "../../src/manager/pacing.js";
import { ResourceManager, Refusal, type InstanceRunner, type CommandRequest, type RunOutcome } from "../../src/manager/index.js";
import { FairScheduler } from "../../src/manager/scheduler.js";
import type { OutputSinks, PrepareReport } from "../../src/manager/runner.js";
import { appRecord } from "./helpers.js";

test("a tenant alone is never made to wait, however much it spends", () => {
  const pacer = new SharePacer(() => threadShare(1), THREAD_BURST_MS);
  const t0 = performance.now();
  for (let i = 0; i < 100; i++) assert.equal(pacer.spend(50, t0 + i), 0);
  assert.equal(threadShare(1), ALONE);
  assert.equal(cpuShare(1, 2), ALONE);
});

test("with others active, a tenant past its burst waits until its share has paid for what it spent", () => {
  const share = threadShare(1 / 3); // three tenants of the same weight: a sixth of the thread
  assert.equal(share, BULK_SHARE / 3);
  const pacer = new SharePacer(() => share, THREAD_BURST_MS);
  const t0 = performance.now();
  assert.equal(pacer.spend(THREAD_BURST_MS, t0), 0, "the burst is free");
  const wait = pacer.spend(3, t0);
  // (to within the µs between the pacer's making and t0)
  assert.ok(Math.abs(wait - 3 / share) < 0.05, `3 ms over at a share of ${share} is ${3 / share} ms of waiting (got ${wait})`);
  assert.ok(Math.abs(pacer.due(t0 + wait / 2) - wait / 2) < 1e-9, "due() says how much of the wait is left, spending nothing");
  // After the wait the debt is paid: the next spend waits only for itself (its own time's share accrued as it was used).
  assert.ok(Math.abs(pacer.spend(1, t0 + wait + 1) - (1 - share) / share) < 1e-9);
});

test("a CPU share is in cores: two of three equal tenants' worth of a 2-core node", () => {
  assert.ok(Math.abs(cpuShare(1 / 3, 2) - 2 / 3) < 1e-12);
  const pacer = new SharePacer(() => cpuShare(1 / 3, 2), 0);
  // A guest that spun 2 s on one core owes (2000 - 2000 × 2/3) ms of CPU when it ends (its share accrued while it
  // spun), paid back at 2/3 of a core: a second.
  const t0 = performance.now();
  pacer.spend(0, t0);
  const wait = pacer.spend(2000, t0 + 2000);
  assert.ok(Math.abs(wait - 1000) < 1e-6, `waits ${wait} ms`);
});

test("an idle tenant banks no more than the burst", () => {
  const pacer = new SharePacer(() => 0.25, THREAD_BURST_MS);
  const t0 = performance.now();
  pacer.spend(0, t0);
  // 8 ms of burst plus the share of the 18 ms it used: short of 18 ms.
  assert.ok(pacer.spend(THREAD_BURST_MS + 10, t0 + 60_000) > 0, "a minute idle buys only the burst");
});

// ---- on a manager: a runner that plays guests on executors (no real guest: the test is about admission and relay) ----

/** Reports env.COST ms of executor time; writes env.CHUNKS chunks of env.BYTES bytes, keeping what each sink call returned. */
class CostRunner implements InstanceRunner {
  readonly name = "cost";
  readonly executors = 2;
  readonly sinkResults: unknown[] = [];
  async prepare(): Promise<PrepareReport> {
    return { prepared: false, wallMs: 0 };
  }
  async runCommand(req: CommandRequest): Promise<RunOutcome> {
    for (let i = 0; i < Number(req.env["CHUNKS"] ?? 0); i++) this.sinkResults.push(req.onStdout(new Uint8Array(Number(req.env["BYTES"] ?? 16))));
    return { reason: "exit", exitCode: 0, durationMs: Number(req.env["COST"] ?? 0) };
  }
  async startReactor(): Promise<never> {
    throw new Error("not used");
  }
  async close(): Promise<void> {}
}


async function managerWith(runner: CostRunner, tenants: string[], timeoutMs?: number): Promise<ResourceManager> {
  const m = new ResourceManager({ runner, tenantCores: 2 });
  for (const id of tenants) {
    m.setTenant({ id, name: id, weight: 1, quotas: { cpuMsPerMinute: 10_000_000 } });
    await m.deploy(appRecord(`${id}-app`, id, timeoutMs === undefined ? {} : { timeoutMs }), { digest: `sha256:${id}`, bytes: new Uint8Array() });
  }
  return m;
}

const sinks: OutputSinks = { onStdout: () => undefined, onStderr: () => undefined };
const run = (env: Record<string, string>) => ({ env, args: [], body: new Uint8Array(), sinks });

test("a tenant over its CPU share while another tenant is active waits before its next request runs; alone it never does", async () => {
  const runner = new CostRunner();
  const m = await managerWith(runner, ["evil", "good"]);
  try {
    const evil = m.tenant("evil")!;
    await m.invoke("evil-app", run({ COST: "1200" }));
    assert.equal(evil.cpuPacer.due(), 0, "alone, 1.2 s of CPU in an instant owes nothing");
    await m.invoke("good-app", run({ COST: "1" })); // good is active now: evil's share is half the node's cores
    await m.invoke("evil-app", run({ COST: "1200" }));
    const share = cpuShare(1 / 2, 2);
    const due = evil.cpuPacer.due();
    assert.ok(due > 0 && due <= (1200 - CPU_BURST_MS) / share + 1, `evil owes ${due} ms`);
    const started = performance.now();
    await m.invoke("evil-app", run({ COST: "1" }));
    const waited = performance.now() - started;
    assert.ok(waited >= due - 5, `evil's next request waited ${waited} ms for its share (owed ${due} ms)`);
    assert.equal(m.tenant("good")!.cpuPacer.due(), 0, "good owes nothing");
  } finally {
    await m.close();
  }
});

test("a tenant whose CPU debt is longer than its request may queue is refused (429 tenant_cpu_exhausted), not kept waiting", async () => {
  const m = await managerWith(new CostRunner(), ["evil", "good"], 500);
  try {
    await m.invoke("good-app", run({ COST: "1" }));
    await m.invoke("evil-app", run({ COST: "100000" }));
    await assert.rejects(m.invoke("evil-app", run({ COST: "1" })), (err: unknown) => err instanceof Refusal && err.code === "tenant_cpu_exhausted" && /over its share of the node's CPU/.test(err.message) && err.retryAfter >= 1);
  } finally {
    await m.close();
  }
});

test("relaying a flood for a tenant over its share of the serving thread makes its guest wait; alone, it never waits", async () => {
  const runner = new CostRunner();
  const m = await managerWith(runner, ["flood", "other"]);
  try {
    // 64 chunks of 256 KiB: ~18 ms of the thread by the relay cost model, more than the 8 ms burst.
    await m.invoke("flood-app", run({ CHUNKS: "64", BYTES: String(256 * 1024) }));
    assert.equal(runner.sinkResults.filter((r) => r !== undefined).length, 0, "alone: every chunk taken at once");
    runner.sinkResults.length = 0;
    await m.invoke("other-app", run({ COST: "1" }));
    await m.invoke("flood-app", run({ CHUNKS: "64", BYTES: String(256 * 1024) }));
    const paused = runner.sinkResults.filter((r) => r instanceof Promise) as Promise<void>[];
    assert.ok(paused.length > 0, "past its burst, chunks are taken later (the guest waits)");
    assert.equal(runner.sinkResults[0], undefined, "the first chunk is within the burst");
    await Promise.all(paused);
  } finally {
    await m.close();
  }
});

test("a tenant's share of the thread counts itself among the busy, even before the scheduler has seen it", () => {
  const s = new FairScheduler({ slots: 2 });
  const share = (id: string, weight = 1) => ({ id, weight, maxConcurrency: 2, maxQueue: 10 });
  s.charge(share("good"), 1); // good is active now
  assert.equal(s.threadShare(share("new")), 1 / 2, "a tenant not seen yet shares with good: half, not all");
  assert.equal(s.threadShare(share("good")), 1, "good alone among the busy has it all");
  assert.equal(s.threadShare(share("heavy", 3)), 3 / 4, "by weight");
});
