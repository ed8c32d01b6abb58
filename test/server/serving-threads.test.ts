/**
 * The multi-core gateway (serve --serving-threads, src/server/serving-threads.ts):
 * serving threads share the gateway port with the main thread, run inline
 * apps themselves, and keep the tenant's quotas and the node's placement
 * correct across all of them.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { call, deploy, gw, tenant, testNode } from "./helpers.js";

type Node = Awaited<ReturnType<typeof testNode>>;
let node: Node;

before(async () => {
  node = await testNode({ executors: 1, servingThreads: 2, inlineFuel: 5_000_000 });
});
after(async () => {
  await node.close();
});

/** `n` requests at once, each on a connection of its own (so the kernel spreads them over the threads). */
async function burst(t: string, app: string, n: number, path = "/"): Promise<number[]> {
  return (await Promise.all(Array.from({ length: n }, () => gw(node, t, app, path, { headers: { connection: "close" } })))).map((r) => r.status);
}

async function servedByThreads(): Promise<number> {
  await new Promise((r) => setTimeout(r, 100)); // serving threads report in batches
  const info = (await call(node.apiUrl, "GET", "/v1/node", node.admin)).json;
  assert.equal(info.servingThreads.count, 2);
  return info.servingThreads.requests.reduce((a: number, b: number) => a + b, 0);
}

test("a tenant's rate quota holds across serving threads: the threads admit against one shared bucket", async () => {
  const t = await tenant(node, "rated", { requestsPerSecond: 10 });
  assert.equal((await deploy(node, t, "hello", "wagi/hello.wasm")).status, 201);
  const before = await servedByThreads();
  const started = performance.now();
  const codes = await burst(t.name, "hello", 80);
  const seconds = (performance.now() - started) / 1000;
  const ok = codes.filter((c) => c === 200).length;
  assert.equal(ok + codes.filter((c) => c === 429).length, 80, codes.join(","));
  // The burst (10) plus what the rate refilled while the requests ran, whichever thread took them.
  assert.ok(ok >= 10 && ok <= 10 + Math.ceil(10 * seconds) + 1, `${ok} admitted in ${seconds.toFixed(2)} s at 10/s`);
  const byThreads = (await servedByThreads()) - before;
  assert.ok(byThreads > 0, "the serving thread answered some of them");
});

test("a deploy that returned is served by every thread; an app on executors is answered through the main thread", async () => {
  const t = await tenant(node, "mixed");
  assert.equal((await deploy(node, t, "fast", "reactor/hello.wasm", { abi: "reactor" })).status, 201);
  assert.equal((await deploy(node, t, "slow", "wagi/hello.wasm", { extensions: { grants: ["uniwasm:kv"] } })).status, 201);
  const before = await servedByThreads();
  assert.deepEqual(new Set(await burst(t.name, "fast", 30)), new Set([200]));
  assert.deepEqual(new Set(await burst(t.name, "slow", 30)), new Set([200]));
  assert.ok((await servedByThreads()) > before);
  const apps = (await call(node.apiUrl, "GET", `/v1/tenants/${t.name}/apps`, t.token)).json.apps;
  assert.deepEqual(Object.fromEntries(apps.map((a: { name: string; execution: { placement: string } }) => [a.name, a.execution.placement])), { fast: "inline", slow: "executor" });
});

test("a spinning guest on a serving thread is stopped at the inline budget, the app moves to executors on every thread, and its requests end at its deadline", async () => {
  const t = await tenant(node, "spinner");
  assert.equal((await deploy(node, t, "spin", "c-sandbox/spin.wasm", { limits: { timeoutMs: 300 } })).status, 201);
  assert.equal((await deploy(node, t, "hello", "wagi/hello.wasm")).status, 201);
  // One at a time: the node has one executor, and a second spin would wait for it past its deadline (503).
  const spins = burst(t.name, "spin", 1);
  assert.deepEqual(new Set(await burst(t.name, "hello", 20)), new Set([200]));
  assert.deepEqual(new Set(await spins), new Set([504]));
  const view = (await call(node.apiUrl, "GET", `/v1/tenants/${t.name}/apps/spin`, t.token)).json;
  assert.equal(view.execution.placement, "executor");
  assert.match(view.execution.why, /inline fuel budget/);
  for (let i = 0; i < 3; i++) assert.deepEqual(await burst(t.name, "spin", 1), [504]);
});

test("a quota change reaches every thread before the call answers, and an inline reactor that traps on a serving thread is replaced", async () => {
  const t = await tenant(node, "changing", { requestsPerSecond: 1 });
  assert.equal((await deploy(node, t, "rx", "reactor/hello.wasm", { abi: "reactor" })).status, 201);
  const limited = await burst(t.name, "rx", 20);
  assert.ok(limited.filter((c) => c === 429).length >= 15, limited.join(","));
  const patched = await call(node.apiUrl, "PATCH", `/v1/tenants/${t.name}`, node.admin, { quotas: { requestsPerSecond: 10_000 } });
  assert.equal(patched.status, 200, patched.text);
  // The bucket refills at the new rate on every thread (a second is enough for the burst of 1 to become 10,000).
  await new Promise((r) => setTimeout(r, 1100));
  assert.deepEqual(new Set(await burst(t.name, "rx", 30)), new Set([200]));
  const crashes = await burst(t.name, "rx", 6, "/crash");
  assert.deepEqual(new Set(crashes), new Set([502]));
  assert.deepEqual(new Set(await burst(t.name, "rx", 20)), new Set([200]));
});

test("a tenant's CPU quota holds across serving threads: once its minute is spent, every thread refuses it", async () => {
  const t = await tenant(node, "cpu-bound", { cpuMsPerMinute: 30 });
  assert.equal((await deploy(node, t, "cpu", "wagi/handler.wasm", { limits: { fuel: 4_000_000 } })).status, 201);
  // Each runs an xorshift loop to the app's own fuel (inline, a few ms), charged to the shared CPU window.
  let refused = false;
  for (let i = 0; i < 100 && !refused; i++) refused = (await burst(t.name, "cpu", 4, "/cpu?1")).includes(429);
  assert.ok(refused, "the tenant's CPU minute was spent");
  const before = await servedByThreads();
  const codes = await burst(t.name, "cpu", 20, "/cpu?1");
  assert.deepEqual(new Set(codes), new Set([429]));
  assert.ok((await servedByThreads()) > before, "the serving thread refused some of them");
  const r = await gw(node, t.name, "cpu", "/cpu?1");
  assert.equal(JSON.parse(r.text).error.code, "tenant_cpu_exhausted");
});
