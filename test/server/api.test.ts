import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { call, deploy, gw, tenant, testNode, wasm } from "./helpers.js";

type Node = Awaited<ReturnType<typeof testNode>>;
let node: Node;

before(async () => {
  node = await testNode({ executors: 1 });
});
after(async () => {
  await node.close();
});

const api = (method: string, path: string, token: string | undefined, body?: unknown, headers?: Record<string, string>) => call(node.apiUrl, method, path, token, body, headers);

test("the node serves its OpenAPI document with bearer security", async () => {
  const r = await api("GET", "/openapi.json", undefined);
  assert.equal(r.status, 200);
  assert.equal(r.json.openapi, "3.0.3");
  assert.ok(r.json.paths["/v1/tenants/{tenant}/apps/{app}"].put);
  assert.deepEqual(r.json.components.securitySchemes.bearer, { type: "http", scheme: "bearer" });
});

test("creating a tenant returns a working tenant token exactly once; listing tokens never shows secrets", async () => {
  const r = await api("POST", "/v1/tenants", node.admin, { name: "acme" });
  assert.equal(r.status, 201);
  const secret = r.json.token.secret as string;
  assert.match(secret, /^uw_/);
  assert.equal((await api("GET", "/v1/whoami", secret)).json.scope, "tenant");
  const list = await api("GET", "/v1/tenants/acme/tokens", secret);
  assert.ok(!list.text.includes(secret));
  assert.equal(list.json.tokens[0].prefix, secret.slice(0, 10));
  const dup = await api("POST", "/v1/tenants", node.admin, { name: "acme" });
  assert.equal(dup.json.error.code, "tenant_exists");
});

test("a revoked token is refused", async () => {
  const t = await tenant(node, "revoke-me");
  const extra = await api("POST", `/v1/tenants/${t.name}/tokens`, t.token, { name: "ci" });
  assert.equal((await api("GET", "/v1/whoami", extra.json.secret)).status, 200);
  assert.equal((await api("DELETE", `/v1/tenants/${t.name}/tokens/${extra.json.id}`, t.token)).status, 204);
  assert.equal((await api("GET", "/v1/whoami", extra.json.secret)).json.error.code, "unauthorized");
});

test("bad input gets a precise error from the catalogue", async () => {
  const bad = await api("POST", "/v1/tenants", node.admin, { name: "Not A Name!" });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.code, "bad_request");
  assert.match(bad.json.error.message, /name/);
  const notJson = await api("POST", "/v1/tenants", node.admin, new TextEncoder().encode("{nope"), { "content-type": "application/json" });
  assert.equal(notJson.json.error.code, "bad_request");
  const t = await tenant(node, "inputs");
  const notWasm = await api("POST", `/v1/tenants/${t.name}/images?name=x`, t.token, new TextEncoder().encode("not wasm"), { "content-type": "application/wasm" });
  assert.equal(notWasm.json.error.code, "invalid_module");
  const media = await api("POST", `/v1/tenants/${t.name}/images`, t.token, new TextEncoder().encode("x"), { "content-type": "text/plain" });
  assert.equal(media.status, 415);
  assert.equal(media.json.error.code, "unsupported_media_type");
  const up = await api("POST", `/v1/tenants/${t.name}/images?name=h`, t.token, wasm("wagi/hello.wasm"), { "content-type": "application/wasm" });
  const limits = await api("PUT", `/v1/tenants/${t.name}/apps/x`, t.token, { image: up.json.digest, limits: { timeoutMs: 0 } });
  assert.equal(limits.json.error.code, "invalid_config");
  assert.match(limits.json.error.message, /limits\.timeoutMs must be a number from 1 /);
  const oldName = await api("PUT", `/v1/tenants/${t.name}/apps/x`, t.token, { image: up.json.digest, limits: { memoryMiB: 16 } });
  assert.equal(oldName.json.error.code, "invalid_config", "a limit name from before the one vocabulary is refused, never silently dropped");
  assert.match(oldName.json.error.message, /limits\.memoryMiB is not a limit \(known: maxMemoryBytes,/);
  const badSize = await api("PUT", `/v1/tenants/${t.name}/apps/x`, t.token, { image: up.json.digest, limits: { maxMemoryBytes: "lots" } });
  assert.equal(badSize.json.error.code, "invalid_config");
  assert.match(badSize.json.error.message, /limits\.maxMemoryBytes is not a size: "lots"/);
  const long = await api("PUT", `/v1/tenants/${t.name}/apps/x`, t.token, { image: up.json.digest, limits: { timeoutMs: 600_000 } });
  assert.equal(long.json.error.code, "invalid_config", "an app may not ask for a deadline past the node's bound");
  assert.match(long.json.error.message, /limits\.timeoutMs 600000 is above this node's bound on request deadlines \(60000 ms/);
  const reactor = await api("PUT", `/v1/tenants/${t.name}/apps/y`, t.token, { image: up.json.digest, abi: "reactor" });
  assert.equal(reactor.json.error.code, "invalid_config");
  assert.match(reactor.json.error.message, /uniwasm_alloc/);
  const unknown = await api("GET", "/v1/nope", t.token);
  assert.equal(unknown.json.error.code, "not_found");
});

test("an uploaded module's config limits are the one vocabulary: stored parsed, an unknown name refused, and they reach the app", async () => {
  const t = await tenant(node, "uplimits");
  const module = wasm("wagi/handler.wasm").toString("base64");
  const bad = await api("POST", `/v1/tenants/${t.name}/images`, t.token, { name: "h", module, config: { limits: { memoryMiB: 16 } } });
  assert.equal(bad.json.error.code, "invalid_config");
  assert.match(bad.json.error.message, /config\.limits\.memoryMiB is not a limit/);
  const up = await api("POST", `/v1/tenants/${t.name}/images`, t.token, { name: "h", module, config: { limits: { stdoutBytes: "1KiB", timeoutMs: "3s" } } });
  assert.equal(up.status, 201, up.text);
  assert.deepEqual(up.json.config.limits, { stdoutBytes: 1024, timeoutMs: 3000 });
  const d = await api("PUT", `/v1/tenants/${t.name}/apps/h`, t.token, { image: up.json.digest });
  assert.equal(d.status, 201, d.text);
  assert.equal(d.json.config.limits.stdoutBytes, 1024);
  assert.equal(d.json.config.limits.timeoutMs, 3000);
  assert.equal((await gw(node, t.name, "h", "/big?4")).status, 502, "4 KiB past the image's 1 KiB stdout limit");
});

test("an image used by an app cannot be deleted; after the app is gone it can", async () => {
  const t = await tenant(node, "imgs");
  const d = await deploy(node, t, "web", "wagi/hello.wasm");
  const digest = d.json.image as string;
  const busy = await api("DELETE", `/v1/tenants/${t.name}/images/${digest}`, t.token);
  assert.equal(busy.json.error.code, "image_in_use");
  assert.equal((await api("DELETE", `/v1/tenants/${t.name}/apps/web`, t.token)).status, 204);
  assert.equal((await api("DELETE", `/v1/tenants/${t.name}/images/${digest.slice(7, 19)}`, t.token)).status, 204);
});

test("the apps quota refuses one app too many", async () => {
  const t = await tenant(node, "small", { maxApps: 1 });
  assert.equal((await deploy(node, t, "one", "wagi/hello.wasm")).status, 201);
  const second = await deploy(node, t, "two", "wagi/hello.wasm");
  assert.equal(second.status, 403);
  assert.equal(second.json.error.code, "quota_exceeded");
});

test("an update rolls over with zero downtime: requests during the update all succeed and then see the new revision", async () => {
  const t = await tenant(node, "roll");
  assert.equal((await deploy(node, t, "app", "reactor/hello.wasm", { abi: "reactor" })).status, 201);
  let failures = 0;
  let stop = false;
  const traffic = (async () => {
    let n = 0;
    while (!stop && n++ < 2000) {
      const r = await gw(node, t.name, "app", "/");
      if (r.status !== 200) failures++;
    }
  })();
  const up = await deploy(node, t, "app", "reactor/hello-as.wasm", { abi: "reactor" });
  assert.equal(up.status, 200);
  assert.equal(up.json.revision, 2);
  stop = true;
  await traffic;
  assert.equal(failures, 0);
  assert.match((await gw(node, t.name, "app", "/x")).text, /hello from assemblyscript/);
});

test("a broken update leaves the previous revision serving", async () => {
  const t = await tenant(node, "broken");
  assert.equal((await deploy(node, t, "app", "wagi/handler.wasm")).status, 201);
  const up = await api("POST", `/v1/tenants/${t.name}/images?name=bad`, t.token, wasm("wagi/hello.wasm"), { "content-type": "application/wasm" });
  // A command module cannot start as a reactor: refused before the switch.
  const r = await api("PUT", `/v1/tenants/${t.name}/apps/app`, t.token, { image: up.json.digest, abi: "reactor" });
  assert.equal(r.status, 400);
  const app = await api("GET", `/v1/tenants/${t.name}/apps/app`, t.token);
  assert.equal(app.json.revision, 1);
  assert.equal((await gw(node, t.name, "app", "/hello")).text, "hello from wagi\n");
});

test("logs keep guest stderr and platform events, and follow streams new lines as Server-Sent Events", async () => {
  const t = await tenant(node, "logs");
  await deploy(node, t, "app", "wagi/handler.wasm");
  const ctrl = new AbortController();
  const res = await fetch(`${node.apiUrl}/v1/tenants/${t.name}/apps/app/logs?follow=true&tail=0`, { headers: { authorization: `Bearer ${t.token}` }, signal: ctrl.signal });
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  const reader = res.body!.getReader();
  await gw(node, t.name, "app", "/stderr");
  let text = "";
  while (!text.includes("a line for the log")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  ctrl.abort();
  assert.match(text, /data: \{.*"stream":"stderr","line":"a line for the log"\}/);
  const all = await api("GET", `/v1/tenants/${t.name}/apps/app/logs?tail=50`, t.token);
  assert.ok(all.json.logs.some((l: { stream: string; line: string }) => l.stream === "event" && /deployed revision 1/.test(l.line)));
});

test("usage counts a tenant's requests and errors", async () => {
  const t = await tenant(node, "usage");
  await deploy(node, t, "app", "wagi/handler.wasm");
  await gw(node, t.name, "app", "/hello");
  await gw(node, t.name, "app", "/crash");
  const u = await api("GET", `/v1/tenants/${t.name}/usage`, t.token);
  assert.equal(u.json.days[0].requests, 2);
  assert.equal(u.json.days[0].errors, 1);
  assert.ok(u.json.days[0].cpuMs > 0);
});

test("/metrics exposes per-tenant request counts, latency histograms, cold/warm starts and limit hits", async () => {
  const t = await tenant(node, "metrics");
  await deploy(node, t, "rx", "reactor/hello.wasm", { abi: "reactor" });
  await gw(node, t.name, "rx", "/");
  await gw(node, t.name, "rx", "/");
  const m = await api("GET", "/metrics", node.admin);
  assert.equal(m.status, 200);
  assert.match(m.text, /uniwasm_requests_total\{tenant="metrics",app="rx",status="200"\} 2/);
  assert.match(m.text, /uniwasm_request_duration_seconds_bucket\{le="[0-9.]+",tenant="metrics",app="rx"\}/);
  assert.match(m.text, /uniwasm_instance_starts_total\{tenant="metrics",app="rx",kind="warm"\} 2/);
  assert.match(m.text, /# TYPE uniwasm_limit_hits_total counter/);
  assert.match(m.text, /# TYPE uniwasm_denied_host_calls_total counter/);
});

test("a deploy's module preparation is charged to the tenant: in its usage, its CPU minute, the app's log and /metrics", async () => {
  const t = await tenant(node, "compiles");
  assert.equal((await deploy(node, t, "app", "wagi/handler.wasm", { limits: { maxMemoryBytes: "17MiB" } })).status, 201);
  node.store.flush();
  const usage = (await api("GET", `/v1/tenants/${t.name}/usage`, t.token)).json;
  assert.ok(usage.days[0].cpuMs > 0, JSON.stringify(usage));
  assert.ok(usage.live.cpuMsLastMinute > 0, JSON.stringify(usage.live));
  const logs = (await api("GET", `/v1/tenants/${t.name}/apps/app/logs`, t.token)).json.logs.map((l: { line: string }) => l.line);
  assert.ok(logs.some((l: string) => /^module prepared in \d+ ms \(\d+ ms of CPU, charged to the tenant\)$/.test(l)), logs.join("\n"));
  assert.match((await api("GET", "/metrics", node.admin)).text, /^uniwasm_prepare_cpu_seconds_total\{tenant="compiles"\} [0-9.e-]+$/m);
});

test("/metrics families are all uniwasm_*: the process and Node.js runtime ones once prefixed (uniwasm_process_*, uniwasm_nodejs_*), never uniwasm_process_process_*", async () => {
  const text = (await api("GET", "/metrics", node.admin)).text;
  const families = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!);
  assert.deepEqual(families.filter((f) => !f.startsWith("uniwasm_")), []);
  assert.deepEqual(families.filter((f) => /^uniwasm_process_(process|nodejs)_/.test(f)), []);
  for (const f of ["uniwasm_process_cpu_user_seconds_total", "uniwasm_process_resident_memory_bytes", "uniwasm_nodejs_eventloop_lag_seconds", "uniwasm_nodejs_heap_size_used_bytes", "uniwasm_requests_total"]) {
    assert.ok(families.includes(f), `${f} missing from ${families.join(" ")}`);
  }
});

test("a redeploy keeps every setting it does not give (env, routes, limits), replaces the ones it gives, and \"env\": {} clears the env", async () => {
  const t = await tenant(node, "keeps");
  const first = await deploy(node, t, "app", "wagi/handler.wasm", { env: { GREETING: "hi" }, routes: [{ path: "/x" }], limits: { timeoutMs: 5000 } });
  assert.equal(first.status, 201, first.text);
  const digest = first.json.image as string;
  const put = (body: Record<string, unknown>) => api("PUT", `/v1/tenants/${t.name}/apps/app`, t.token, { image: digest, ...body });
  const again = await put({});
  assert.equal(again.status, 200, again.text);
  assert.equal(again.json.revision, 2);
  assert.deepEqual(again.json.config.env, { GREETING: "hi" }, "an image-only redeploy keeps the env");
  assert.deepEqual(again.json.config.routes.map((r: { path: string }) => r.path), ["/", "/x"]);
  assert.equal(again.json.config.limits.timeoutMs, 5000);
  assert.deepEqual(again.json.config.settings, { env: { GREETING: "hi" }, routes: [{ path: "/x" }], limits: { timeoutMs: 5000 } });
  assert.match((await gw(node, t.name, "app", "/x/echo")).text, /^greeting=hi$/m);
  const replaced = await put({ env: { OTHER: "1" } });
  assert.deepEqual(replaced.json.config.env, { OTHER: "1" }, "a given env replaces the earlier one");
  assert.equal(replaced.json.config.limits.timeoutMs, 5000, "...and the rest stays");
  assert.deepEqual((await put({ env: {} })).json.config.env, {});
});
