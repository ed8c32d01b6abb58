/**
 * Tiers on a node (src/manager/tier-runner.ts): each app runs on its tier —
 * its own limits.tier raised to the tenant's and the node's minimum — on a
 * pool of warm sandboxed executors per tier; the node says which tier and
 * why; an app asking for what a sandbox cannot give is refused at deploy; and
 * kill -9 of a process-tier executor under load ends only its own in-flight
 * request (executor_lost), is replaced, and no other app notices.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { InProcessRunner, ResourceManager } from "../../src/manager/index.js";
import { DEFAULT_TENANT_QUOTAS } from "../../src/manager/quotas.js";
import { TierRunner } from "../../src/manager/tier-runner.js";
import { tierUnavailable } from "../../src/sandbox/tiers/tier.js";
import type { AppRecord } from "../../src/store/types.js";
import { call, deploy, gw, tenant, testNode } from "./helpers.js";

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
      [strict, "hello", "wagi/hello.wasm", {}],
      [acme, "hello", "wagi/hello.wasm", {}],
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
    const pool = info.tiers.pools.find((p: { tier: string }) => p.tier === "process");
    assert.equal(pool.executors, 2);
    assert.equal(pool.pids.length, 2);
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

  test("kill -9 of a process-tier executor under load: its in-flight request ends with executor_lost, it is replaced, other apps' requests all succeed", async () => {
    const runner = node.manager.runner as TierRunner;
    const pool = () => runner.tierPools().find((p) => p.tier === "process")!;
    const before = pool();
    const spin = gw(node, T.name, "spin", "/");
    // The spin holds one executor: wait until it does.
    for (let i = 0; i < 500 && pool().busyPids.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(pool().busyPids.length, 1, "the spin never started");
    // Load on the other apps of both tiers while the sandbox dies.
    const load = Array.from({ length: 30 }, (_, i) => gw(node, T.name, ["boxed", "plain", "rx"][i % 3]!, "/"));
    const busyPid = pool().busyPids[0]!;
    process.kill(busyPid, "SIGKILL");
    const lost = await spin;
    assert.equal(lost.status, 502, lost.text);
    assert.match(lost.text, /executor_lost: .*killed by SIGKILL/);
    const replies = await Promise.all(load);
    for (const r of replies) assert.equal(r.status, 200, r.text);
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
      // Before any app: the pool is there and ready.
      const info = (await call(node.apiUrl, "GET", "/v1/node", node.admin)).json;
      assert.equal(info.tiers.minimum, "process");
      const pool = info.tiers.pools.find((p: { tier: string }) => p.tier === "process");
      assert.deepEqual([pool.executors, pool.ready], [1, 1]);
      const t = await tenant(node, "any");
      assert.equal((await deploy(node, t, "web", "wagi/hello.wasm", { limits: { tier: "isolate" } })).status, 201);
      const e = (await call(node.apiUrl, "GET", `/v1/tenants/${t.name}/apps/web`, t.token)).json.execution;
      assert.deepEqual([e.tier, e.tierWhy, e.placement], ["process", "this node's minimum tier (serve --min-tier)", "executor"]);
      assert.equal((await gw(node, t.name, "web", "/")).status, 200);
    } finally {
      await node.close();
    }
  });
});
