import { test } from "node:test";
import assert from "node:assert/strict";
import { FairScheduler, SchedulerRejection, type TenantShare } from "../../src/manager/scheduler.js";

const share = (id: string, extra: Partial<TenantShare> = {}): TenantShare => ({ id, weight: 1, maxConcurrency: 8, maxQueue: 1000, ...extra });

/** A job that finishes when released, reporting `cost` as its executor time. */
function gate() {
  let release!: () => void;
  const done = new Promise<void>((r) => (release = r));
  return { done, release };
}

test("a flooding tenant does not starve another: with one executor, a late tenant's jobs run before the flood's backlog", async () => {
  const s = new FairScheduler({ slots: 1 });
  const order: string[] = [];
  const flood = share("flood");
  const quiet = share("quiet");
  const jobs: Promise<unknown>[] = [];
  // 50 expensive jobs (10 ms each, charged exactly) from "flood" first...
  for (let i = 0; i < 50; i++) jobs.push(s.run(flood, 10, async () => order.push(`F${i}`), { actualCost: () => 10 }));
  // ...then 5 cheap ones (0.1 ms) from "quiet".
  for (let i = 0; i < 5; i++) jobs.push(s.run(quiet, 0.1, async () => order.push(`Q${i}`), { actualCost: () => 0.1 }));
  await Promise.all(jobs);
  const lastQuiet = order.indexOf("Q4");
  assert.ok(lastQuiet >= 0);
  const floodBefore = order.slice(0, lastQuiet).filter((x) => x.startsWith("F")).length;
  // Deficit round robin: the quiet tenant's cheap jobs need ~0.5 ms of credit in total; the
  // flood may only run the job already started plus a couple more before all of them.
  assert.ok(floodBefore <= 3, `flood ran ${floodBefore} jobs before quiet's last: ${order.slice(0, lastQuiet + 1).join(" ")}`);
});

test("under contention, executor time is shared in proportion to weight", async () => {
  const s = new FairScheduler({ slots: 1 });
  const ran: Record<string, number> = { heavy: 0, light: 0 };
  const jobs: Promise<unknown>[] = [];
  for (let i = 0; i < 300; i++) {
    jobs.push(s.run(share("heavy", { weight: 2 }), 1, async () => ran.heavy!++, { actualCost: () => 1 }));
    jobs.push(s.run(share("light", { weight: 1 }), 1, async () => ran.light!++, { actualCost: () => 1 }));
  }
  // Look at the first 150 completions, while both are backlogged.
  let seen = 0;
  const snapshot = new Promise<Record<string, number>>((resolve) => {
    for (const j of jobs) void j.then(() => { if (++seen === 150) resolve({ ...ran }); });
  });
  const at = await snapshot;
  await Promise.all(jobs);
  const ratio = at.heavy! / at.light!;
  assert.ok(ratio > 1.6 && ratio < 2.5, `heavy:light = ${at.heavy}:${at.light}`);
});

test("a tenant never holds more executors than its maxConcurrency, leaving the rest to others", async () => {
  const s = new FairScheduler({ slots: 3 });
  const greedy = share("greedy", { maxConcurrency: 2 });
  const gates = Array.from({ length: 5 }, gate);
  const greedyJobs = gates.map((g) => s.run(greedy, 1, () => g.done));
  await new Promise((r) => setImmediate(r));
  assert.equal(s.stats().tenants["greedy"]!.running, 2);
  let otherRan = false;
  await s.run(share("other"), 1, async () => (otherRan = true));
  assert.ok(otherRan, "the third executor stayed free for another tenant");
  gates.forEach((g) => g.release());
  await Promise.all(greedyJobs);
});

test("a tenant's queue beyond maxQueue is refused, naming the quota", async () => {
  const s = new FairScheduler({ slots: 1 });
  const g = gate();
  const t = share("t", { maxQueue: 1 });
  const running = s.run(t, 1, () => g.done);
  const queued = s.run(t, 1, async () => 1);
  await assert.rejects(s.run(t, 1, async () => 1), (e: unknown) => e instanceof SchedulerRejection && e.reason === "tenant_queue_full" && /maxQueue 1/.test(e.message));
  g.release();
  await running;
  assert.equal(await queued, 1);
});

test("a job that waits past its queue timeout is refused and never runs", async () => {
  const s = new FairScheduler({ slots: 1 });
  const g = gate();
  const running = s.run(share("a"), 1, () => g.done);
  let ran = false;
  const keepAlive = setInterval(() => undefined, 1000); // queue timers are unref'd
  await assert.rejects(
    s.run(share("b"), 1, async () => (ran = true), { queueTimeoutMs: 10 }),
    (e: unknown) => e instanceof SchedulerRejection && e.reason === "queue_timeout",
  );
  clearInterval(keepAlive);
  g.release();
  await running;
  assert.equal(ran, false);
  assert.equal(s.stats().queued, 0);
});

test("a job that waits past its queue timeout while its tenant holds maxConcurrency executors is refused as its tenant's limit, not the node's", async () => {
  const s = new FairScheduler({ slots: 3 });
  const g = gate();
  const capped = share("capped", { maxConcurrency: 1 });
  const running = s.run(capped, 1, () => g.done);
  const keepAlive = setInterval(() => undefined, 1000); // queue timers are unref'd
  // Two executors are free: only the tenant's own limit keeps this job waiting.
  await assert.rejects(
    s.run(capped, 1, async () => 1, { queueTimeoutMs: 10 }),
    (e: unknown) => e instanceof SchedulerRejection && e.reason === "tenant_concurrency_timeout" && /maxConcurrency 1/.test(e.message),
  );
  clearInterval(keepAlive);
  g.release();
  await running;
  assert.equal(s.stats().queued, 0);
});

test("a failing job frees its executor", async () => {
  const s = new FairScheduler({ slots: 1 });
  await assert.rejects(s.run(share("a"), 1, async () => { throw new Error("boom"); }), /boom/);
  assert.equal(await s.run(share("a"), 1, async () => 7), 7);
  assert.equal(s.stats().running, 0);
});

test("with several executors, a tenant does not take the last free one while another tenant is active, and takes it when alone", async () => {
  const s = new FairScheduler({ slots: 2, reserveWindowMs: 60_000 });
  const flood = share("flood");
  const gates = Array.from({ length: 3 }, gate);
  const jobs = gates.map((g) => s.run(flood, 1, () => g.done));
  await new Promise((r) => setImmediate(r));
  assert.equal(s.stats().tenants["flood"]!.running, 2, "alone, the flood uses both executors");
  gates[0]!.release();
  gates[1]!.release();
  await Promise.all(jobs.slice(0, 2));
  // Another tenant shows up (and finishes): from now on the flood keeps one executor free.
  await s.run(share("quiet"), 1, async () => undefined);
  const more = Array.from({ length: 2 }, gate);
  const moreJobs = more.map((g) => s.run(flood, 1, () => g.done));
  await new Promise((r) => setImmediate(r));
  assert.equal(s.stats().tenants["flood"]!.running, 1);
  let quietRan = false;
  await s.run(share("quiet"), 1, async () => (quietRan = true));
  assert.ok(quietRan, "the free executor served the quiet tenant at once");
  gates[2]!.release();
  more.forEach((g) => g.release());
  await Promise.all([...jobs, ...moreJobs]);
});

test("a tenant's overrun on an uncontended executor still counts once contention starts", async () => {
  const s = new FairScheduler({ slots: 1 });
  // Alone, "a" starts at once; its job is estimated at 1 ms but charged 50.
  await s.run(share("a"), 1, async () => undefined, { actualCost: () => 50 });
  const g = gate();
  const holder = s.run(share("c"), 1, () => g.done);
  const order: string[] = [];
  // Queued behind the holder, "a" first: its 49 ms of debt lets "b" go ahead.
  const jobs = [s.run(share("a"), 1, async () => order.push("a"), { actualCost: () => 1 }), s.run(share("b"), 1, async () => order.push("b"), { actualCost: () => 1 })];
  g.release();
  await Promise.all([holder, ...jobs]);
  assert.deepEqual(order, ["b", "a"]);
});

test("an uncontended job starts within the call, before the caller's next line", async () => {
  const s = new FairScheduler({ slots: 2 });
  let started = false;
  const job = s.run(share("a"), 1, async () => (started = true));
  assert.equal(started, true);
  assert.equal(s.stats().running, 1);
  await job;
  assert.equal(s.stats().running, 0);
});

/** Lets every job that can run finish: a few turns of the event loop (jobs here complete in microtasks). */
async function settle(turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
}

test("one tenant's long job never stalls another's queue: with 2 executors, acme's backlog is served while evil spins", async () => {
  const s = new FairScheduler({ slots: 2 });
  const evil = share("evil");
  const acme = share("acme");
  const spin = gate(); // evil's requests spin until the end of the test (their deadline)
  const spinning = [s.run(evil, 1, () => spin.done)];
  const first = gate();
  const acmeFirst = s.run(acme, 1, () => first.done);
  spinning.push(s.run(evil, 1, () => spin.done)); // evil queues another spinner
  const served: number[] = [];
  const backlog = Array.from({ length: 20 }, (_, i) => s.run(acme, 1, async () => void served.push(i), { actualCost: () => 1 }));
  first.release();
  await acmeFirst;
  await settle();
  assert.equal(served.length, 20, `acme served ${served.length} of 20 while evil spun`);
  assert.equal(s.stats().tenants["evil"]!.running, 1, "evil kept to one executor while acme had work");
  spin.release();
  await Promise.all([...spinning, ...backlog]);
});

test("a tenant at its share gets more executors only as loans, and not while a tenant below its share waits", async () => {
  const s = new FairScheduler({ slots: 4 });
  const a = share("a");
  const b = share("b");
  await s.run(b, 1, async () => undefined); // b is active: each tenant's share is 2 of 4
  const grants: boolean[] = [];
  const aGates = Array.from({ length: 4 }, gate);
  const aJobs = aGates.map((g) => s.run(a, 1, async (grant) => { grants.push(grant.loan); await g.done; }));
  await settle();
  assert.deepEqual(grants, [false, false, true], "a's third executor is a loan; its fourth would be the last free one");
  assert.equal(s.stats().loans, 1);
  const bGates = Array.from({ length: 3 }, gate);
  const bGrants: boolean[] = [];
  const bJobs = bGates.map((g) => s.run(b, 1, async (grant) => { bGrants.push(grant.loan); await g.done; }));
  await settle();
  assert.equal(s.stats().tenants["b"]!.running, 1);
  aGates[0]!.release(); // an executor comes free: b (below its share) gets it, not a's waiting fourth job
  await settle();
  assert.equal(s.stats().tenants["b"]!.running, 2);
  assert.equal(s.stats().tenants["a"]!.running, 2);
  assert.deepEqual(bGrants, [false, false]);
  [...aGates, ...bGates].forEach((g) => g.release());
  await Promise.all([...aJobs, ...bJobs]);
});

test("a tenant alone gets every executor without loans", async () => {
  const s = new FairScheduler({ slots: 3 });
  const grants: boolean[] = [];
  const gates = Array.from({ length: 3 }, gate);
  const jobs = gates.map((g) => s.run(share("solo"), 1, async (grant) => { grants.push(grant.loan); await g.done; }));
  await settle();
  assert.deepEqual(grants, [false, false, false]);
  gates.forEach((g) => g.release());
  await Promise.all(jobs);
});

test("a long job (a service) starts only below its tenant's share and the long-job cap, never as a loan, and its signal withdraws it while it waits", async () => {
  const s = new FairScheduler({ slots: 2, maxLongSlots: 2 });
  const a = share("a");
  const b = share("b");
  await s.run(b, 1, async () => undefined); // b is active: shares are 1 of 2
  const g1 = gate();
  const long1 = s.run(a, 0, () => g1.done, { long: true });
  await settle();
  const withdraw = new AbortController();
  let ran2 = false;
  const long2 = s.run(a, 0, async () => void (ran2 = true), { long: true, signal: withdraw.signal });
  await settle();
  assert.deepEqual(s.stats().long, { running: 1, waiting: 1, maxSlots: 2 }, "a's second service waits: a holds its share");
  let served = false;
  await s.run(b, 1, async () => (served = true));
  assert.ok(served, "the free executor serves b");
  withdraw.abort();
  await assert.rejects(long2, (e: unknown) => e instanceof SchedulerRejection && e.reason === "cancelled");
  assert.equal(ran2, false);
  assert.equal(s.stats().long.waiting, 0);
  g1.release();
  await long1;
  assert.equal(s.stats().running, 0);
});
