import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { call, deploy, gw, tempDataDir, tenant, testNode } from "./helpers.js";

test("a fresh node writes its bootstrap admin token to a 0600 file, and only on its first start", async () => {
  const dataDir = tempDataDir();
  const first = await testNode({ dataDir, executors: 1 });
  assert.ok(first.bootstrap);
  const file = join(dataDir, "bootstrap-token");
  assert.equal(readFileSync(file, "utf8").trim(), first.bootstrap.secret);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  await first.close();
  const second = await testNode({ dataDir, executors: 1 });
  assert.equal(second.bootstrap, undefined);
  assert.equal((await call(second.apiUrl, "GET", "/v1/whoami", first.bootstrap.secret)).json.scope, "admin");
  await second.close();
});

test("a restart brings back every tenant, token, image and app, serving as before", async () => {
  const dataDir = tempDataDir();
  let node = await testNode({ dataDir, executors: 1 });
  const admin = node.admin;
  const t = await tenant(node, "keep");
  await deploy(node, t, "cgi", "wagi/handler.wasm", { env: { GREETING: "persisted" }, routes: [{ host: "*", path: "/keep" }] }, admin);
  await deploy(node, t, "rx", "reactor/hello.wasm", { abi: "reactor" });
  const apps = (await call(node.apiUrl, "GET", `/v1/tenants/${t.name}/apps`, t.token)).json.apps;
  const images = (await call(node.apiUrl, "GET", `/v1/tenants/${t.name}/images`, t.token)).json.images;
  await node.close();

  node = Object.assign(await testNode({ dataDir, executors: 1 }), { admin });
  const apps2 = (await call(node.apiUrl, "GET", `/v1/tenants/${t.name}/apps`, t.token)).json.apps;
  const strip = (list: Record<string, unknown>[]) => list.map(({ urls: _u, status: _s, deniedCalls: _d, ...rest }) => rest);
  assert.deepEqual(strip(apps2), strip(apps));
  assert.deepEqual((await call(node.apiUrl, "GET", `/v1/tenants/${t.name}/images`, t.token)).json.images, images);
  assert.ok(apps2.every((a: { status: string }) => a.status === "running"));
  const echo = await gw(node, "other", "host", "/keep/echo");
  assert.match(echo.text, /greeting=persisted/);
  assert.match((await gw(node, t.name, "rx", "/")).text, /hello from reactor/);
  await node.close();
});

test("closing a node lets in-flight requests finish", async () => {
  const node = await testNode({ executors: 1 });
  const t = await tenant(node, "drain");
  await deploy(node, t, "app", "wagi/handler.wasm");
  const inflight = gw(node, t.name, "app", "/cpu?30");
  // Close once the request runs (a fixed sleep raced the request's arrival on a loaded machine).
  while (node.manager.scheduler.stats().running === 0) await new Promise((r) => setTimeout(r, 1));
  await node.close();
  const r = await inflight;
  assert.equal(r.status, 200);
  assert.match(r.text, /^\d+\n$/);
});

test("a service app that keeps ending is restarted with growing backoff, its output in the app log", async () => {
  const node = await testNode({ executors: 2, serviceBackoff: { baseMs: 20, maxMs: 80, resetAfterMs: 60_000 } }); // services may hold one of two
  try {
    const t = await tenant(node, "svc");
    // handler.wasm with no PATH_INFO prints its hello page to stdout and exits 0: a service that ends at once.
    const d = await deploy(node, t, "worker", "wagi/handler.wasm", { abi: "service" });
    assert.equal(d.status, 201, d.text);
    assert.deepEqual(d.json.config.routes, []);
    const restarts = async () =>
      (await call(node.apiUrl, "GET", `/v1/tenants/${t.name}/apps/worker/logs?tail=200`, t.token)).json.logs.filter((l: { line: string }) => /restart #\d+ in \d+ ms/.test(l.line));
    for (let i = 0; i < 100 && (await restarts()).length < 4; i++) await new Promise((r) => setTimeout(r, 25));
    const lines = (await restarts()).map((l: { line: string }) => l.line);
    assert.ok(lines.length >= 4, lines.join("\n"));
    assert.match(lines[0], /service exited with code 0; restart #1 in 20 ms/);
    assert.match(lines[1], /restart #2 in 40 ms/);
    assert.match(lines[3], /restart #4 in 80 ms/);
    const logs = (await call(node.apiUrl, "GET", `/v1/tenants/${t.name}/apps/worker/logs?tail=200`, t.token)).json.logs;
    assert.ok(logs.some((l: { stream: string; line: string }) => l.stream === "stdout" && /hello from wagi/.test(l.line)));
    assert.equal((await call(node.apiUrl, "GET", `/v1/tenants/${t.name}/instances`, t.token)).json.instances[0].kind, "service");
    assert.equal((await call(node.apiUrl, "DELETE", `/v1/tenants/${t.name}/apps/worker`, t.token)).status, 204);
  } finally {
    await node.close();
  }
});
