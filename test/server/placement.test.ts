/**
 * Placement on a node (src/manager/placement.ts): apps that qualify run
 * inline on the serving thread under a fuel budget; a spinning inline guest is
 * stopped there and the node keeps serving; the node says where each app runs.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { choosePlacement } from "../../src/manager/placement.js";
import type { AppRecord } from "../../src/store/types.js";
import { resolveLimits } from "../../src/limits.js";
import { call, deploy, gw, tenant, testNode } from "./helpers.js";

type Node = Awaited<ReturnType<typeof testNode>>;
let node: Node;
let T: { name: string; token: string };

before(async () => {
  node = await testNode({ executors: 2, inlineFuel: 5_000_000 });
  T = await tenant(node, "place");
  for (const [app, fixture, extra] of [
    ["hello", "wagi/hello.wasm", {}],
    ["rx", "reactor/hello.wasm", { abi: "reactor" }],
    ["spin", "c-sandbox/spin.wasm", { limits: { timeoutMs: 400 } }],
    ["metered", "c-sandbox/spin.wasm", { limits: { timeoutMs: 10_000, fuel: 1_000_000 } }],
    ["kv", "ext/kv.wasm", { extensions: { grants: ["uniwasm:kv"] } }],
  ] as const) {
    const r = await deploy(node, T, app, fixture, extra);
    assert.equal(r.status, 201, `${app}: ${r.text}`);
  }
});
after(async () => {
  await node.close();
});

async function execution(app: string): Promise<{ placement: string; why: string }> {
  // (The view also names the app's tier: test/server/tiers.test.ts.)
  const { placement, why } = (await call(node.apiUrl, "GET", `/v1/tenants/${T.name}/apps/${app}`, T.token)).json.execution;
  return { placement, why };
}

test("apps without extensions or sockets run inline, bounded by fuel; an app granted an extension runs on executors; the node says why", async () => {
  assert.deepEqual(await execution("hello"), { placement: "inline", why: "bounded by the node's inline fuel (5000000 instructions per request; past it, the app moves to executors)" });
  assert.equal((await execution("metered")).placement, "inline");
  assert.match((await execution("metered")).why, /fuel-metered \(1000000 instructions/);
  assert.equal((await execution("kv")).placement, "executor");
  assert.match((await execution("kv")).why, /host extensions \(uniwasm:kv\)/);
  assert.equal((await gw(node, T.name, "hello", "/")).status, 200);
  assert.equal((await gw(node, T.name, "rx", "/")).status, 200);
  const instances = (await call(node.apiUrl, "GET", `/v1/tenants/${T.name}/instances?app=rx`, T.token)).json.instances;
  assert.ok(instances.length >= 1);
  for (const i of instances) assert.equal(i.placement, "inline");
});

test("a spinning inline guest is stopped at the inline fuel budget, its request runs again on an executor to the app's deadline, the app stays there, and other requests are served meanwhile", async () => {
  let spinEnded = 0;
  const spin = gw(node, T.name, "spin", "/").then((r) => ((spinEnded = performance.now()), r));
  // The serving thread is back within the budget's few milliseconds: these are answered while the spin runs on an executor.
  const others = await Promise.all([gw(node, T.name, "hello", "/"), gw(node, T.name, "rx", "/"), gw(node, T.name, "hello", "/")]);
  const othersEnded = performance.now();
  for (const o of others) assert.equal(o.status, 200);
  const r = await spin;
  assert.equal(r.status, 504, r.text);
  assert.equal(JSON.parse(r.text).error.code, "guest_timeout");
  assert.ok(othersEnded < spinEnded, "the other requests were answered before the spinning one ended");
  const e = await execution("spin");
  assert.equal(e.placement, "executor");
  assert.match(e.why, /moved from the serving thread: a request used the inline fuel budget \(5000000 instructions\)/);
  const logs = (await call(node.apiUrl, "GET", `/v1/tenants/${T.name}/apps/spin/logs`, T.token)).text;
  assert.match(logs, /moves to executors/);
  // Still ended at its deadline on executors, and still the only app that moved.
  assert.equal((await gw(node, T.name, "spin", "/")).status, 504);
  assert.deepEqual(await execution("hello"), { placement: "inline", why: "bounded by the node's inline fuel (5000000 instructions per request; past it, the app moves to executors)" });
});

test("a fuel-metered inline guest that spins ends at its own fuel on the serving thread and stays inline; the node keeps serving", async () => {
  const started = performance.now();
  const r = await gw(node, T.name, "metered", "/");
  const ms = performance.now() - started;
  assert.equal(r.status, 502, r.text);
  assert.match(JSON.parse(r.text).error.message, /fuel of 1000000 instructions exhausted/);
  assert.ok(ms < 2000, `took ${ms.toFixed(0)} ms`);
  assert.equal((await execution("metered")).placement, "inline");
  const both = await Promise.all([gw(node, T.name, "metered", "/"), gw(node, T.name, "hello", "/")]);
  assert.deepEqual(both.map((b) => b.status), [502, 200]);
});

test("placement rules: services, extensions, sockets and blocking imports go to executors; inline needs the node's budget", () => {
  const app = (abi: "wagi" | "reactor" | "service", fuel: number | null = null, grants: string[] = []): AppRecord => ({
    id: "a", tenantId: "t", name: "a", imageDigest: "sha256:0", revision: 1, createdAt: 0, updatedAt: 0,
    config: { abi, routes: [], env: {}, args: [], limits: resolveLimits({ maxMemoryBytes: 16 * 1024 * 1024, fuel, timeoutMs: 1000, maxBodyBytes: 1, stdoutBytes: 1 }), scale: { minInstances: 0, maxInstances: 1, idleTimeoutMs: 1 }, ...(grants.length ? { extensions: { grants } } : {}) },
  } as AppRecord);
  const wasi = (name: string) => `wasi_snapshot_preview1.${name}`;
  assert.equal(choosePlacement(app("wagi"), {}, 1000, [wasi("fd_write")]).placement, "inline");
  assert.equal(choosePlacement(app("wagi"), {}, 0, [wasi("fd_write")]).placement, "executor");
  assert.equal(choosePlacement(app("service"), {}, 1000, []).placement, "executor");
  assert.equal(choosePlacement(app("wagi", null, ["uniwasm:kv"]), {}, 1000, []).placement, "executor");
  assert.equal(choosePlacement(app("wagi"), { capabilities: ["fd", "sockets"] }, 1000, []).placement, "executor");
  const sleeper = choosePlacement(app("reactor"), {}, 1000, [wasi("fd_write"), wasi("poll_oneoff")]);
  assert.equal(sleeper.placement, "executor");
  assert.match(sleeper.why, /poll_oneoff/);
  assert.deepEqual(choosePlacement(app("wagi", 500), {}, 1000, []), { placement: "inline", why: "fuel-metered (500 instructions per request)", fuel: 500, ownFuel: true });
  const over = choosePlacement(app("wagi", 5000), {}, 1000, []);
  assert.equal(over.fuel, 1000);
  assert.equal(over.ownFuel, false);
});

test("a node whose guests all run on its own thread (--in-process) says so: inline, by its runner", async () => {
  const own = await testNode({ inProcess: true });
  try {
    const t = await tenant(own, "solo");
    assert.equal((await deploy(own, t, "hello", "wagi/hello.wasm")).status, 201);
    const e = (await call(own.apiUrl, "GET", `/v1/tenants/${t.name}/apps/hello`, t.token)).json.execution;
    assert.deepEqual({ placement: e.placement, why: e.why }, { placement: "inline", why: "the runner (in-process) places every guest itself" });
    assert.equal((await gw(own, t.name, "hello", "/")).status, 200);
  } finally {
    await own.close();
  }
});
