import { test } from "node:test";
import assert from "node:assert/strict";
import { ResourceManager, Refusal, type InstanceRunner, type CommandRequest, type RunOutcome } from "../../src/manager/index.js";
import type { PrepareReport } from "../../src/manager/runner.js";
import { appRecord } from "./helpers.js";
import type { AppRecord } from "../../src/store/types.js";

/** A runner whose commands finish when the test says so; it records the order they started in. */
class GateRunner implements InstanceRunner {
  readonly name = "gates";
  readonly started: string[] = [];
  /** The deadline each command got, in start order. */
  readonly deadlines: number[] = [];
  private readonly pending: (() => void)[] = [];
  private readonly pendingWho: string[] = [];
  constructor(readonly executors: number) {}
  /** What the next prepare reports (a huge module's compile). */
  prepareReport: PrepareReport = { prepared: false, wallMs: 0 };
  async prepare(): Promise<PrepareReport> {
    return this.prepareReport;
  }
  runCommand(req: CommandRequest): Promise<RunOutcome> {
    this.started.push(req.env["WHO"]!);
    this.deadlines.push(req.limits.timeoutMs!);
    this.pendingWho.push(req.env["WHO"]!);
    return new Promise((resolve) => this.pending.push(() => resolve({ reason: "exit", exitCode: 0, durationMs: Number(req.env["COST"] ?? 1) })));
  }
  /** Finishes the oldest running command of `who`. */
  finish(who: string): boolean {
    const i = this.pendingWho.indexOf(who);
    if (i < 0) return false;
    this.pendingWho.splice(i, 1);
    this.pending.splice(i, 1)[0]!();
    return true;
  }
  /** Finishes the oldest running command. */
  finishOne(): boolean {
    this.pendingWho.shift();
    const f = this.pending.shift();
    f?.();
    return f !== undefined;
  }
  async startReactor(): Promise<never> {
    throw new Error("not used");
  }
  async close(): Promise<void> {}
}


const sinks = { onStdout: () => undefined, onStderr: () => undefined };
const tick = () => new Promise((r) => setImmediate(r));

const app = (id: string, tenantId: string, memoryMiB = 16) =>
  appRecord(id, tenantId, { maxMemoryBytes: memoryMiB * 1024 * 1024, maxBodyBytes: 1, stdoutBytes: 1 });

test("through the resource manager, a tenant arriving behind another tenant's flood is served next, not after the backlog", async () => {
  const runner = new GateRunner(1);
  const m = new ResourceManager({ runner });
  try {
    m.setTenant({ id: "flood", name: "flood", weight: 1, quotas: {} });
    m.setTenant({ id: "quiet", name: "quiet", weight: 1, quotas: {} });
    await m.deploy(app("f", "flood"), { digest: "sha256:f", bytes: new Uint8Array() });
    await m.deploy(app("q", "quiet"), { digest: "sha256:q", bytes: new Uint8Array() });
    const all: Promise<RunOutcome>[] = [];
    for (let i = 0; i < 30; i++) all.push(m.invoke("f", { env: { WHO: `F${i}`, COST: "20" }, args: [], body: new Uint8Array(), sinks }));
    await tick();
    // Let the flood establish its cost (20 ms per request) for a few rounds.
    for (let i = 0; i < 3; i++) {
      runner.finishOne();
      await tick();
    }
    all.push(m.invoke("q", { env: { WHO: "Q", COST: "1" }, args: [], body: new Uint8Array(), sinks }));
    await tick();
    while (runner.finishOne()) await tick();
    await Promise.all(all);
    const q = runner.started.indexOf("Q");
    const floodBeforeQ = runner.started.slice(0, q).length;
    assert.ok(floodBeforeQ <= 5, `the quiet tenant's request started after ${floodBeforeQ} flood requests: ${runner.started.join(" ")}`);
  } finally {
    await m.close();
  }
});

test("an instance with a writable in-memory directory also reserves its memDirBytes (what it writes there is host memory); read-only dirs reserve nothing more", async () => {
  const runner = new GateRunner(4);
  const m = new ResourceManager({ runner });
  try {
    m.setTenant({ id: "t", name: "t", weight: 1, quotas: { memoryMiB: 1024 } });
    const scratch = app("scratch", "t", 16);
    scratch.config.limits = { ...scratch.config.limits, memDirBytes: 8 * 1024 * 1024 };
    const files = { "a.txt": new Uint8Array(4) };
    await m.deploy(scratch, { digest: "sha256:s", bytes: new Uint8Array() }, { preopens: [{ guest: "/tmp", memory: files, readonly: false }] });
    await m.deploy(app("static", "t", 16), { digest: "sha256:r", bytes: new Uint8Array() }, { preopens: [{ guest: "/static", memory: files, readonly: true }] });
    const running = m.invoke("scratch", { env: { WHO: "s" }, args: [], body: new Uint8Array(), sinks });
    await tick();
    assert.equal(m.tenantUsage("t").reservedMemoryBytes, (16 + 8) * 1024 * 1024);
    const other = m.invoke("static", { env: { WHO: "r" }, args: [], body: new Uint8Array(), sinks });
    await tick();
    assert.equal(m.tenantUsage("t").reservedMemoryBytes, (16 + 8 + 16) * 1024 * 1024);
    while (runner.finishOne()) await tick();
    await Promise.all([running, other]);
    assert.equal(m.tenantUsage("t").reservedMemoryBytes, 0);
  } finally {
    await m.close();
  }
});

test("a tenant's memory quota bounds its live instances: the next one is refused with tenant_memory_exhausted", async () => {
  const runner = new GateRunner(4);
  const m = new ResourceManager({ runner });
  try {
    m.setTenant({ id: "t", name: "t", weight: 1, quotas: { memoryMiB: 32 } });
    await m.deploy(app("a", "t", 16), { digest: "sha256:a", bytes: new Uint8Array() });
    const inv = (who: string) => m.invoke("a", { env: { WHO: who }, args: [], body: new Uint8Array(), sinks });
    const first = inv("1");
    const second = inv("2");
    await tick();
    await assert.rejects(inv("3"), (e: unknown) => e instanceof Refusal && e.code === "tenant_memory_exhausted" && /32 MiB memory quota/.test(e.message));
    assert.equal(m.tenantUsage("t").reservedMemoryBytes, 32 * 1024 * 1024);
    while (runner.finishOne()) await tick();
    await Promise.all([first, second]);
    assert.equal(m.tenantUsage("t").reservedMemoryBytes, 0, "finished instances give their memory back");
  } finally {
    await m.close();
  }
});

test("the node memory budget refuses with node_overloaded when full, whatever the tenant quotas", async () => {
  const runner = new GateRunner(4);
  const m = new ResourceManager({ runner, nodeMemoryBytes: 20 * 1024 * 1024 });
  try {
    m.setTenant({ id: "t", name: "t", weight: 1, quotas: {} });
    await m.deploy(app("a", "t", 16), { digest: "sha256:a", bytes: new Uint8Array() });
    const first = m.invoke("a", { env: { WHO: "1" }, args: [], body: new Uint8Array(), sinks });
    await tick();
    await assert.rejects(m.invoke("a", { env: { WHO: "2" }, args: [], body: new Uint8Array(), sinks }), (e: unknown) => e instanceof Refusal && e.code === "node_overloaded");
    runner.finishOne();
    await first;
  } finally {
    await m.close();
  }
});

test("a request that times out in the queue behind its own tenant's maxConcurrency is refused naming that limit; behind a busy node, as node_overloaded", async () => {
  const runner = new GateRunner(1);
  const m = new ResourceManager({ runner });
  const keepAlive = setInterval(() => undefined, 1000); // queue timers are unref'd
  try {
    m.setTenant({ id: "capped", name: "capped", weight: 1, quotas: { maxConcurrency: 1 } });
    m.setTenant({ id: "other", name: "other", weight: 1, quotas: {} });
    // A 50 ms deadline is also the queue timeout of its requests.
    const short = (id: string, tenantId: string): AppRecord => {
      const a = app(id, tenantId);
      return { ...a, config: { ...a.config, limits: { ...a.config.limits, timeoutMs: 50 } } };
    };
    await m.deploy(short("c", "capped"), { digest: "sha256:c", bytes: new Uint8Array() });
    await m.deploy(short("o", "other"), { digest: "sha256:o", bytes: new Uint8Array() });
    const inv = (appId: string, who: string) => m.invoke(appId, { env: { WHO: who }, args: [], body: new Uint8Array(), sinks });
    const first = inv("c", "c1");
    await tick();
    await assert.rejects(inv("c", "c2"), (e: unknown) => e instanceof Refusal && e.code === "tenant_concurrency_limited" && /tenant capped/.test(e.message) && /maxConcurrency 1/.test(e.message));
    // The one executor is capped's: another tenant, far below its own limit, waits for the node.
    await assert.rejects(inv("o", "o1"), (e: unknown) => e instanceof Refusal && e.code === "node_overloaded");
    runner.finishOne();
    await first;
  } finally {
    clearInterval(keepAlive);
    await m.close();
  }
});

test("a request beyond its tenant's share runs under the loan deadline; an app's deadline is cut to the node's bound", async () => {
  const runner = new GateRunner(4);
  const m = new ResourceManager({ runner, maxTimeoutMs: 30_000, loanTimeoutMs: 700 });
  try {
    m.setTenant({ id: "a", name: "a", weight: 1, quotas: {} });
    m.setTenant({ id: "b", name: "b", weight: 1, quotas: {} });
    await m.deploy(app("x", "a"), { digest: "sha256:x", bytes: new Uint8Array() }); // asks for 60 s
    await m.deploy(app("y", "b"), { digest: "sha256:y", bytes: new Uint8Array() });
    const inv = (appId: string, who: string) => m.invoke(appId, { env: { WHO: who }, args: [], body: new Uint8Array(), sinks });
    const yDone = inv("y", "b1"); // b is active: a's share is 2 of 4
    await tick();
    runner.finishOne();
    assert.equal((await yDone).loaned, false);
    const runs = [inv("x", "a1"), inv("x", "a2"), inv("x", "a3")];
    await tick();
    assert.deepEqual(runner.deadlines, [30_000, 30_000, 30_000, 700], "b's run, a's two within its share, a's loan");
    while (runner.finishOne()) await tick();
    const results = await Promise.all(runs);
    assert.deepEqual(results.map((r) => [r.loaned, r.deadlineMs]), [[false, 30_000], [false, 30_000], [true, 700]]);
    assert.equal(m.scheduler.stats().loans, 1);
  } finally {
    await m.close();
  }
});

test("preparing a module is charged to its tenant: CPU time in the minute's quota and the fair scheduler's debt; a deploy is refused once the minute's CPU is spent", async () => {
  const runner = new GateRunner(1);
  const prepared: { tenantId: string; chargedMs: number }[] = [];
  const m = new ResourceManager({ runner, observer: { prepared: (e) => prepared.push(e) } });
  try {
    m.setTenant({ id: "big", name: "big", weight: 1, quotas: { cpuMsPerMinute: 1000 } });
    runner.prepareReport = { prepared: true, wallMs: 950, cpuMs: 900 };
    await m.deploy(app("huge", "big"), { digest: "sha256:huge", bytes: new Uint8Array() });
    assert.deepEqual(prepared.map((p) => [p.tenantId, p.chargedMs]), [["big", 900]]);
    assert.equal(m.tenantUsage("big").cpuMsLastMinute, 900);
    assert.equal(m.scheduler.stats().tenants["big"]!.deficit, -900, "it waits that much longer under contention");
    await m.deploy(app("huge2", "big"), { digest: "sha256:huge2", bytes: new Uint8Array() });
    assert.equal(m.tenantUsage("big").cpuMsLastMinute, 1800);
    await assert.rejects(
      m.deploy(app("huge3", "big"), { digest: "sha256:huge3", bytes: new Uint8Array() }),
      (e: unknown) => e instanceof Refusal && e.code === "tenant_cpu_exhausted" && /preparing a module/.test(e.message) && e.retryAfter >= 1,
    );
    runner.prepareReport = { prepared: false, wallMs: 0 };
    m.setTenant({ id: "other", name: "other", weight: 1, quotas: {} });
    await m.deploy(app("cached", "other"), { digest: "sha256:huge", bytes: new Uint8Array() });
    assert.equal(m.tenantUsage("other").cpuMsLastMinute, 0, "a module from the cache costs nothing");
  } finally {
    await m.close();
  }
});

test("services hold at most half the executors and their tenant's share: with 4 executors, a tenant's three spinning services leave two executors serving another tenant", async () => {
  const runner = new GateRunner(4);
  const m = new ResourceManager({ runner });
  try {
    m.setTenant({ id: "s", name: "s", weight: 1, quotas: {} });
    m.setTenant({ id: "r", name: "r", weight: 1, quotas: {} });
    const service = (id: string): AppRecord => {
      const a = app(id, "s");
      return { ...a, config: { ...a.config, abi: "service", env: { WHO: id }, limits: { ...a.config.limits, timeoutMs: Infinity } } };
    };
    for (const id of ["svc1", "svc2", "svc3"]) await m.deploy(service(id), { digest: `sha256:${id}`, bytes: new Uint8Array() });
    await m.deploy(app("web", "r"), { digest: "sha256:web", bytes: new Uint8Array() });
    await tick();
    assert.deepEqual(runner.started.sort(), ["svc1", "svc2"], "two services run, the third waits");
    assert.deepEqual(m.scheduler.stats().long, { running: 2, waiting: 1, maxSlots: 2 });
    assert.equal(m.instances("s").find((i) => i.appName === "svc3")!.state, "waiting");
    const requests = [m.invoke("web", { env: { WHO: "r1" }, args: [], body: new Uint8Array(), sinks }), m.invoke("web", { env: { WHO: "r2" }, args: [], body: new Uint8Array(), sinks })];
    await tick();
    assert.ok(runner.started.includes("r1") && runner.started.includes("r2"), `requests ran beside the services: ${runner.started.join(" ")}`);
    runner.finish("r1");
    runner.finish("r2");
    assert.deepEqual((await Promise.all(requests)).map((o) => o.reason), ["exit", "exit"]);
    // Undeploying the waiting service withdraws it; it never runs.
    await m.undeploy("svc3");
    assert.equal(m.scheduler.stats().long.waiting, 0);
    assert.ok(!runner.started.includes("svc3"));
  } finally {
    runner.finish("svc1");
    runner.finish("svc2");
    await m.close();
  }
});

test("a node whose services may hold no executor refuses a service app at deploy, naming the setting", async () => {
  const runner = new GateRunner(1);
  const m = new ResourceManager({ runner });
  try {
    m.setTenant({ id: "s", name: "s", weight: 1, quotas: {} });
    const a = app("svc", "s");
    await assert.rejects(m.deploy({ ...a, config: { ...a.config, abi: "service" } }, { digest: "sha256:svc", bytes: new Uint8Array() }), /services may hold 0 of its 1 executor\(s\).*serve --service-executors N/);
  } finally {
    await m.close();
  }
});
