/**
 * Tiers on a node (src/manager/tier-runner.ts): each app runs on its tier —
 * its own limits.tier raised to the tenant's and the node's minimum — on its
 * tenant's own pool of sandboxed executor processes (a process serves one
 * tenant only); the node says which tier and why; an app asking for what a
 * sandbox cannot give is refused at deploy; kill -9 of one tenant's executor
 * under load ends only its own in-flight request (executor_lost), is
 * replaced, and another tenant's requests are all answered; idle tenants'
 * pools are stopped, and the node's sandboxed processes stay bounded.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { InProcessRunner, ResourceManager } from "../../src/manager/index.js";
import { DEFAULT_TENANT_QUOTAS } from "../../src/manager/quotas.js";
import { TierRunner } from "../../src/manager/tier-runner.js";
import { tierUnavailable } from "../../src/sandbox/tiers/tier.js";
import type { AppRecord } from "../../src/store/types.js";
import { call, deploy, gw, tenant, testNode } from "./helpers.js";

type PoolView = { tier: string; tenant: string; executors: number; ready: number; busy: number; replaced: number; pids: number[]; busyPids: number[]; reactors: number };

/** The process-tier pool of the tenant named `name`, as /v1/node shows it (undefined: it has none). */
async function poolOf(node: { apiUrl: string; admin: string }, name: string): Promise<PoolView | undefined> {
  const info = (await call(node.apiUrl, "GET", "/v1/node", node.admin)).json;
  return info.tiers.pools.find((p: PoolView) => p.tier === "process" && p.tenant === name);
}

/** `pid` and every process under it, from /proc (the executor's node runs under bwrap's pid). */
function processTree(pid: number): number[] {
  const out = [pid];
  const tasks = `/proc/${pid}/task`;
  if (!existsSync(tasks)) return out;
  for (const tid of readdirSync(tasks)) {
    let children = "";
    try {
      children = readFileSync(`${tasks}/${tid}/children`, "utf8");
    } catch {
      continue; // the task ended
    }
    for (const c of children.split(" ").filter((x) => x.trim().length > 0)) out.push(...processTree(Number(c)));
  }
  return out;
}

async function until(cond: () => Promise<boolean> | boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("an app's tier is its own, raised to the tenant's and the node's minimum, naming which decided", async () => {
  const m = new ResourceManager({ runner: new InProcessRunner(), minTier: "process", tenantMinTiers: { acme: "gvisor" } });
  const app = (tier?: "isolate" | "process" | "gvisor") => ({ config: { limits: { tier } } }) as unknown as AppRecord;
  const plain = { name: "plain", quotas: { ...DEFAULT_TENANT_QUOTAS } };
  assert.deepEqual(m.tierOf(app(), plain), { tier: "process", why: "this node's minimum tier (serve --min-tier)" });
  assert.deepEqual(m.tierOf(app("gvisor"), plain), { tier: "gvisor", why: "the app's limits.tier" });
  assert.deepEqual(m.tierOf(app("isolate"), { name: "acme", quotas: { ...DEFAULT_TENANT_QUOTAS } }), { tier: "gvisor", why: "this node's minimum for tenant acme (serve --tenant-min-tier)" });
  const low = new ResourceManager({ runner: new InProcessRunner() });
  assert.deepEqual(low.tierOf(app(), plain), { tier: "isolate", why: "the default" });
  assert.deepEqual(low.tierOf(app(), { name: "strict", quotas: { ...DEFAULT_TENANT_QUOTAS, minTier: "process" } }), { tier: "process", why: "tenant strict's minimum tier" });
  await Promise.all([m.close(), low.close()]);
});

const why = tierUnavailable("process");
describe("a node with process-tier apps", { skip: why ? `the process tier is not available here: ${why}` : false }, () => {
  type Node = Awaited<ReturnType<typeof testNode>>;
  let node: Node;
  let T: { name: string; token: string };
  let strict: { name: string; token: string };
  let acme: { name: string; token: string };

  before(async () => {
    node = await testNode({ executors: 2, tierExecutors: 2, tenantMinTiers: { acme: "process" } });
    T = await tenant(node, "tiers");
    strict = await tenant(node, "strict", { minTier: "process" } as unknown as Record<string, number>);
    acme = await tenant(node, "acme");
    for (const [t, app, fixture, extra] of [
      [T, "boxed", "wagi/hello.wasm", { limits: { tier: "process" } }],
      [T, "plain", "wagi/hello.wasm", {}],
      [T, "rx", "reactor/hello.wasm", { abi: "reactor", limits: { tier: "process" } }],
      [T, "spin", "c-sandbox/spin.wasm", { limits: { tier: "process", timeoutMs: 30_000 } }],
      [T, "spin2", "c-sandbox/spin.wasm", { limits: { tier: "process", timeoutMs: 1500 } }],
      [strict, "hello", "wagi/hello.wasm", {}],
      [acme, "hello", "wagi/hello.wasm", {}],
      [acme, "rx", "reactor/hello.wasm", { abi: "reactor" }],
      [acme, "spin2", "c-sandbox/spin.wasm", { limits: { timeoutMs: 1500 } }],
    ] as const) {
      const r = await deploy(node, t, app, fixture, extra);
      assert.equal(r.status, 201, `${app}: ${r.text}`);
    }
  });
  after(async () => {
    await node?.close();
  });

  const execution = async (t: { name: string; token: string }, app: string) => (await call(node.apiUrl, "GET", `/v1/tenants/${t.name}/apps/${app}`, t.token)).json.execution;

  test("the app view says each app's tier and why; a process-tier app runs on executors", async () => {
    assert.deepEqual(await execution(T, "boxed"), { placement: "executor", why: "the process tier: executors in sandboxed processes (the app's limits.tier)", tier: "process", tierWhy: "the app's limits.tier" });
    assert.equal((await execution(T, "plain")).tier, "isolate");
    assert.deepEqual([(await execution(strict, "hello")).tier, (await execution(strict, "hello")).tierWhy], ["process", "tenant strict's minimum tier"]);
    assert.deepEqual([(await execution(acme, "hello")).tier, (await execution(acme, "hello")).tierWhy], ["process", "this node's minimum for tenant acme (serve --tenant-min-tier)"]);
    const info = (await call(node.apiUrl, "GET", "/v1/node", node.admin)).json;
    assert.equal(info.tiers.available.process, true);
    assert.deepEqual([info.tiers.processes.perTenant, info.tiers.processes.maxProcesses], [2, 8]);
    const pool = (await poolOf(node, T.name))!;
    assert.equal(pool.executors, 2);
    assert.equal(pool.pids.length, 2);
    // The plain (isolate) tenant-less pool does not exist: every process-tier pool belongs to a tenant.
    for (const p of info.tiers.pools) assert.ok([T.name, strict.name, acme.name].includes(p.tenant), JSON.stringify(p));
  });

  test("two tenants' process-tier apps never run in the same executor process", async () => {
    // Both tenants spin at once: each spin holds one of its own tenant's processes.
    const spins = [gw(node, T.name, "spin2", "/"), gw(node, acme.name, "spin2", "/")];
    const load = Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? gw(node, T.name, i % 4 === 0 ? "boxed" : "rx", "/") : gw(node, acme.name, i % 4 === 1 ? "hello" : "rx", "/")));
    await until(async () => ((await poolOf(node, T.name))?.busyPids.length ?? 0) >= 1 && ((await poolOf(node, acme.name))?.busyPids.length ?? 0) >= 1, "both tenants' spins running");
    const [t, a] = [(await poolOf(node, T.name))!, (await poolOf(node, acme.name))!];
    for (const pid of t.busyPids) assert.ok(t.pids.includes(pid) && !a.pids.includes(pid), `T's busy ${pid} is T's only`);
    for (const pid of a.busyPids) assert.ok(a.pids.includes(pid) && !t.pids.includes(pid), `acme's busy ${pid} is acme's only`);
    // From /proc: the process trees (bwrap and the node inside it) of the two tenants' executors share no process.
    const tree = (pids: number[]) => new Set(pids.flatMap(processTree));
    const [tt, at] = [tree(t.pids), tree(a.pids)];
    assert.ok(tt.size > t.pids.length && at.size > a.pids.length, "each executor pid has its sandboxed process under it");
    for (const pid of tt) assert.ok(!at.has(pid), `process ${pid} serves both tenants`);
    // Every tenant's pool is apart from every other's.
    const info = (await call(node.apiUrl, "GET", "/v1/node", node.admin)).json;
    const seen = new Map<number, string>();
    for (const p of info.tiers.pools as PoolView[]) {
      for (const pid of p.pids) {
        assert.ok(!seen.has(pid), `executor ${pid} is in ${seen.get(pid)}'s pool and ${p.tenant}'s`);
        seen.set(pid, p.tenant);
      }
    }
    for (const r of await Promise.all(spins)) assert.equal(r.status, 504, r.text);
    for (const r of await Promise.all(load)) assert.equal(r.status, 200, r.text);
  });

  test("the same image answers the same on the isolate and the process tier (WAGI and reactor)", async () => {
    const [a, b] = await Promise.all([gw(node, T.name, "boxed", "/x?y=1"), gw(node, T.name, "plain", "/x?y=1")]);
    assert.equal(a.status, 200, a.text);
    assert.equal(a.text.replace(/boxed/g, "APP"), b.text.replace(/plain/g, "APP"));
    const r = await gw(node, T.name, "rx", "/");
    assert.equal(r.status, 200, r.text);
    const instances = (await call(node.apiUrl, "GET", `/v1/tenants/${T.name}/instances?app=rx`, T.token)).json.instances;
    assert.ok(instances.length >= 1);
    for (const i of instances) assert.equal(i.tier, "process");
  });

  test("an app granted a host extension on the process tier is refused at deploy, naming the tier and why", async () => {
    const r = await deploy(node, T, "kv", "ext/kv.wasm", { limits: { tier: "process" }, extensions: { grants: ["uniwasm:kv"] } });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error.code, "invalid_config");
    assert.match(r.json.error.message, /process tier .*host extensions \(uniwasm:kv\) are not available yet/);
  });

  test("raising a tenant's minimum tier moves its running apps there before the call answers; one that cannot run there is stopped, not left weaker", async () => {
    const late = await tenant(node, "late");
    assert.equal((await deploy(node, late, "web", "wagi/hello.wasm")).status, 201);
    assert.equal((await deploy(node, late, "kv", "ext/kv.wasm", { extensions: { grants: ["uniwasm:kv"] } })).status, 201);
    assert.equal((await execution(late, "web")).tier, "isolate");
    const r = await call(node.apiUrl, "PATCH", `/v1/tenants/${late.name}`, node.admin, { quotas: { minTier: "process" } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.quotas.minTier, "process");
    const web = await execution(late, "web");
    assert.deepEqual([web.tier, web.tierWhy], ["process", "tenant late's minimum tier"]);
    assert.equal((await gw(node, late.name, "web", "/")).status, 200);
    const kv = (await call(node.apiUrl, "GET", `/v1/tenants/${late.name}/apps/kv`, late.token)).json;
    assert.equal(kv.status, "stopped");
    assert.equal(kv.execution, null);
  });

  test("kill -9 of one tenant's process-tier executor under load: its in-flight request ends with executor_lost, it is replaced, another tenant's in-flight process-tier requests are all answered", async () => {
    const runner = node.manager.runner as TierRunner;
    const tenantId = (name: string) => node.store.tenants.find(name)!.id;
    const poolFor = (name: string) => runner.tierPools().find((p) => p.tier === "process" && p.tenant === tenantId(name))!;
    const pool = () => poolFor(T.name);
    const before = pool();
    const acmeBefore = poolFor(acme.name);
    const spin = gw(node, T.name, "spin", "/");
    // The spin holds one executor: wait until it does.
    for (let i = 0; i < 500 && pool().busyPids.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(pool().busyPids.length, 1, "the spin never started");
    // Load on the other apps of both tiers while the sandbox dies.
    const load = Array.from({ length: 30 }, (_, i) => gw(node, T.name, ["boxed", "plain", "rx"][i % 3]!, "/"));
    // The other tenant's process-tier requests, in flight when the sandbox dies.
    const other = Array.from({ length: 30 }, (_, i) => gw(node, acme.name, ["hello", "rx"][i % 2]!, "/"));
    const busyPid = pool().busyPids[0]!;
    assert.ok(!acmeBefore.pids.includes(busyPid));
    process.kill(busyPid, "SIGKILL");
    const lost = await spin;
    assert.equal(lost.status, 502, lost.text);
    assert.match(lost.text, /executor_lost: .*killed by SIGKILL/);
    const replies = await Promise.all(load);
    for (const r of replies) assert.equal(r.status, 200, r.text);
    const others = await Promise.all(other);
    for (const r of others) assert.equal(r.status, 200, r.text);
    // The other tenant's executors were not touched: same processes, nothing replaced.
    assert.deepEqual(poolFor(acme.name).pids.sort(), [...acmeBefore.pids].sort());
    assert.equal(poolFor(acme.name).replaced, acmeBefore.replaced);
    // Replaced: the pool is back to two executors, the killed one gone.
    for (let i = 0; i < 500 && (pool().ready < 2 || pool().pids.includes(busyPid)); i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(pool().ready, 2);
    assert.ok(!pool().pids.includes(busyPid));
    assert.ok(pool().replaced > before.replaced);
    assert.equal((await gw(node, T.name, "boxed", "/")).status, 200);
  });
});

describe("a node with a minimum tier (serve --min-tier)", { skip: why ? `the process tier is not available here: ${why}` : false }, () => {
  test("its sandboxed executors are booted before it serves, and every app runs there, saying why", async () => {
    const node = await testNode({ executors: 1, minTier: "process" });
    try {
      // Before any app: no tenant's pool yet (the tier's spare is booted, owned by nobody).
      const info = (await call(node.apiUrl, "GET", "/v1/node", node.admin)).json;
      assert.equal(info.tiers.minimum, "process");
      assert.deepEqual(info.tiers.pools, []);
      assert.equal(info.tiers.processes.spares, 1);
      const t = await tenant(node, "any");
      assert.equal((await deploy(node, t, "web", "wagi/hello.wasm", { limits: { tier: "isolate" } })).status, 201);
      const e = (await call(node.apiUrl, "GET", `/v1/tenants/${t.name}/apps/web`, t.token)).json.execution;
      assert.deepEqual([e.tier, e.tierWhy, e.placement], ["process", "this node's minimum tier (serve --min-tier)", "executor"]);
      assert.equal((await gw(node, t.name, "web", "/")).status, 200);
      const pool = (await poolOf(node, t.name))!;
      assert.deepEqual([pool.executors, pool.ready], [1, 1]);
    } finally {
      await node.close();
    }
  });
});

describe("a node's sandboxed processes are bounded and idle tenants' pools are stopped", { skip: why ? `the process tier is not available here: ${why}` : false }, () => {
  test("a pool idle past --tier-idle-timeout is stopped (its processes exit), a warm reactor keeps its pool, a new tenant takes an idle pool's room, and past the bound a request is refused with node_overloaded", async () => {
    // One process per tenant, two for the node: a reactor tenant holds one for good (a warm instance).
    const node = await testNode({ executors: 2, tierExecutors: 1, tierMaxProcesses: 2, tierIdleMs: 400, minTier: "process" });
    try {
      const [a, b, r] = [await tenant(node, "ta"), await tenant(node, "tb"), await tenant(node, "tr")];
      assert.equal((await deploy(node, r, "rx", "reactor/hello.wasm", { abi: "reactor", scale: { minInstances: 1 } })).status, 201);
      assert.equal((await deploy(node, a, "web", "wagi/hello.wasm")).status, 201);
      assert.equal((await deploy(node, a, "spin", "c-sandbox/spin.wasm", { limits: { timeoutMs: 3000 } })).status, 201);
      assert.equal((await gw(node, a.name, "web", "/")).status, 200);
      const aPids = (await poolOf(node, a.name))!.pids;
      assert.equal(aPids.length, 1);
      // Idle past the timeout: a's pool is stopped and its process is gone; r's stays (it hosts a warm reactor).
      await until(async () => (await poolOf(node, a.name)) === undefined, "a's idle pool stopped");
      await until(() => aPids.every((pid) => !existsSync(`/proc/${pid}`)), "a's executor process exited");
      const rPool = (await poolOf(node, r.name))!;
      assert.deepEqual([rPool.executors, rPool.reactors], [1, 1]);
      assert.equal((await gw(node, r.name, "rx", "/")).status, 200);
      // A tenant whose pool was stopped is served again (a new pool, from the tier's spare).
      assert.equal((await gw(node, a.name, "web", "/")).status, 200);
      // b's deploy needs a process while a's pool is idle but not yet timed out: a's makes room.
      assert.equal((await deploy(node, b, "web", "wagi/hello.wasm")).status, 201);
      let info = (await call(node.apiUrl, "GET", "/v1/node", node.admin)).json;
      assert.ok(info.tiers.processes.held <= 2, JSON.stringify(info.tiers.processes));
      assert.equal((await poolOf(node, a.name)), undefined, "a's idle pool made room for b's");
      // Past the bound: r's reactor and a's spin hold both processes; b is refused, not queued forever.
      await until(async () => (await poolOf(node, b.name)) === undefined, "b's idle pool stopped");
      const spin = gw(node, a.name, "spin", "/");
      await until(async () => ((await poolOf(node, a.name))?.busyPids.length ?? 0) === 1, "a's spin running");
      const refused = await gw(node, b.name, "web", "/");
      assert.equal(refused.status, 503, refused.text);
      assert.match(refused.text, /node_overloaded/);
      assert.match(refused.text, /2 sandboxed executor processes/);
      assert.equal((await spin).status, 504);
      // Once a's spin ended, its idle pool makes room again.
      assert.equal((await gw(node, b.name, "web", "/")).status, 200);
      info = (await call(node.apiUrl, "GET", "/v1/node", node.admin)).json;
      assert.ok(info.tiers.processes.held <= 2 && info.tiers.processes.reaped >= 3, JSON.stringify(info.tiers.processes));
    } finally {
      await node.close();
    }
  });
});
