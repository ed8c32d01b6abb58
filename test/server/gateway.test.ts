import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { call, deploy, gw, tenant, testNode } from "./helpers.js";

type Node = Awaited<ReturnType<typeof testNode>>;
let node: Node;
let T: { name: string; token: string };

before(async () => {
  node = await testNode({ executors: 2, reapIntervalMs: 20 });
  T = await tenant(node, "gw");
  const d = await deploy(node, T, "cgi", "wagi/handler.wasm", {
    env: { GREETING: "hi" },
    routes: [{ host: "*", path: "/api" }],
    limits: { timeoutMs: 500, maxBodyBytes: 1000, stdoutBytes: 8 * 1024 * 1024 },
  }, node.admin); // a route on any host ("*") is for admins
  assert.equal(d.status, 201, d.text);
  assert.equal((await deploy(node, T, "rx", "reactor/hello.wasm", { abi: "reactor", limits: { timeoutMs: 500 } })).status, 201);
  // Streaming 4 MiB can take longer than cgi's 500 ms on a loaded machine; completeness is what is tested.
  assert.equal((await deploy(node, T, "big", "wagi/handler.wasm", { limits: { timeoutMs: 20_000, stdoutBytes: 8 * 1024 * 1024 } })).status, 201);
});
after(async () => {
  await node.close();
});

function field(text: string, name: string): string | undefined {
  return new RegExp(`^${name}=(.*)$`, "m").exec(text)?.[1];
}

test("a WAGI request gets CGI variables in env, query parameters as args and the body on stdin", async () => {
  const r = await gw(node, T.name, "cgi", "/echo?x=1&y=two%20words", { method: "POST", body: "payload", headers: { "x-test": "yes", authorization: "Bearer secret" } });
  assert.equal(r.status, 200);
  assert.equal(r.headers["x-echo"], "yes");
  assert.equal(field(r.text, "method"), "POST");
  assert.equal(field(r.text, "path"), "/echo");
  assert.equal(field(r.text, "query"), "x=1&y=two%20words");
  assert.equal(field(r.text, "host"), "cgi.gw.localhost");
  assert.equal(field(r.text, "header"), "yes");
  assert.equal(field(r.text, "auth"), "", "the Authorization header is not passed to guests");
  assert.equal(field(r.text, "arg1"), "x=1");
  assert.equal(field(r.text, "arg2"), "y=two words");
  assert.equal(field(r.text, "greeting"), "hi");
  assert.equal(field(r.text, "body"), "payload");
});

test("Status sets the HTTP status and Location alone redirects with 302", async () => {
  const s = await gw(node, T.name, "cgi", "/status");
  assert.equal(s.status, 404);
  assert.equal(s.text, "not here\n");
  const l = await gw(node, T.name, "cgi", "/redirect");
  assert.equal(l.status, 302);
  assert.equal(l.headers.location, "/hello");
});

test("a path-prefix route passes the rest of the path as PATH_INFO and the prefix as SCRIPT_NAME, on segment boundaries", async () => {
  const r = await gw(node, "any", "host", "/api/echo");
  assert.equal(r.status, 200);
  assert.equal(field(r.text, "path"), "/echo");
  assert.equal(field(r.text, "script"), "/api");
  const miss = await gw(node, "any", "host", "/apiecho");
  assert.equal(miss.status, 404);
  assert.equal(JSON.parse(miss.text).error.code, "no_route");
});

test("a guest that traps gets 502 with the request id, and the node keeps serving", async () => {
  const r = await gw(node, T.name, "cgi", "/crash");
  assert.equal(r.status, 502);
  const body = JSON.parse(r.text);
  assert.equal(body.error.code, "guest_error");
  assert.equal(body.error.requestId, r.headers["x-request-id"]);
  assert.match(body.error.message, new RegExp(body.error.requestId));
  assert.equal((await gw(node, T.name, "cgi", "/hello")).text, "hello from wagi\n");
});

test("a response without headers, or an exit code without output, is a 502", async () => {
  assert.equal((await gw(node, T.name, "cgi", "/noheaders")).status, 502);
  const r = await gw(node, T.name, "cgi", "/exit3");
  assert.equal(r.status, 502);
  assert.match(JSON.parse(r.text).error.message, /exited with code 3/);
});

test("a guest past its deadline gets 504, and other requests are served meanwhile", async () => {
  const spin = gw(node, T.name, "cgi", "/spin");
  const other = await gw(node, T.name, "rx", "/");
  assert.equal(other.status, 200);
  const r = await spin;
  assert.equal(r.status, 504);
  assert.equal(JSON.parse(r.text).error.code, "guest_timeout");
  assert.equal((await gw(node, T.name, "cgi", "/hello")).status, 200);
});

test("a request body over the app's limit gets 413 before the guest runs", async () => {
  const r = await gw(node, T.name, "cgi", "/echo", { method: "POST", body: "x".repeat(1001) });
  assert.equal(r.status, 413);
  assert.equal(JSON.parse(r.text).error.code, "payload_too_large");
});

test("a large response arrives complete", async () => {
  const r = await gw(node, T.name, "big", "/big?4096");
  assert.equal(r.status, 200);
  assert.equal(r.text.length, 4096 * 1024);
});

test("a response over limits.stdoutBytes is cut off, never delivered whole", async () => {
  const r = await gw(node, T.name, "cgi", "/big?9000");
  assert.ok(r.aborted || r.status === 502, `status ${r.status}, ${r.text.length} bytes`);
  assert.ok(r.text.length < 9000 * 1024);
});

test("a reactor keeps its instance warm between requests, and a crash gets 502 then a fresh instance", async () => {
  const a = await gw(node, T.name, "rx", "/");
  const b = await gw(node, T.name, "rx", "/");
  const n = (s: string) => Number(/served (\d+)/.exec(s)![1]);
  assert.equal(n(b.text), n(a.text) + 1);
  const post = await gw(node, T.name, "rx", "/echo", { method: "POST", body: "abc" });
  assert.match(post.text, /method=POST body=abc/);
  const crash = await gw(node, T.name, "rx", "/crash");
  assert.equal(crash.status, 502);
  assert.equal(JSON.parse(crash.text).error.code, "guest_error");
  assert.match((await gw(node, T.name, "rx", "/")).text, /served 1\)/);
  assert.equal((await gw(node, T.name, "rx", "/fail")).status, 502, "a non-zero handler status is a 502");
});

test("a reactor past its deadline gets 504", async () => {
  const r = await gw(node, T.name, "rx", "/spin");
  assert.equal(r.status, 504);
  assert.equal((await gw(node, T.name, "rx", "/")).status, 200);
});

test("a tenant over its request rate gets 429 with Retry-After; other tenants are unaffected", async () => {
  const slow = await tenant(node, "ratelimited", { requestsPerSecond: 2 });
  await deploy(node, slow, "app", "wagi/hello.wasm");
  const codes: number[] = [];
  let retry: unknown;
  for (let i = 0; i < 5; i++) {
    const r = await gw(node, slow.name, "app", "/");
    codes.push(r.status);
    if (r.status === 429) retry = r.headers["retry-after"];
  }
  assert.ok(codes.includes(429), codes.join(","));
  assert.ok(Number(retry) >= 1);
  assert.equal((await gw(node, T.name, "cgi", "/hello")).status, 200);
});

test("a tenant that used its CPU time for the minute gets 429 tenant_cpu_exhausted", async () => {
  const t = await tenant(node, "cpu", { cpuMsPerMinute: 1 });
  await deploy(node, t, "app", "wagi/handler.wasm");
  await gw(node, t.name, "app", "/cpu?20");
  const r = await gw(node, t.name, "app", "/hello");
  assert.equal(r.status, 429);
  assert.equal(JSON.parse(r.text).error.code, "tenant_cpu_exhausted");
  assert.ok(Number(r.headers["retry-after"]) >= 1);
});

test("a tenant with no room in its queue gets 429 tenant_overloaded", async () => {
  const t = await tenant(node, "noqueue", { maxQueue: 0 });
  await deploy(node, t, "app", "wagi/hello.wasm");
  const r = await gw(node, t.name, "app", "/");
  assert.equal(r.status, 429);
  assert.equal(JSON.parse(r.text).error.code, "tenant_overloaded");
});

test("warm reactor instances scale to zero after their idle timeout; minInstances stay", async () => {
  const t = await tenant(node, "scale");
  await deploy(node, t, "zero", "reactor/hello.wasm", { abi: "reactor", scale: { minInstances: 0, maxInstances: 2, idleTimeoutMs: 50 } });
  await deploy(node, t, "one", "reactor/hello.wasm", { abi: "reactor", scale: { minInstances: 1, maxInstances: 2, idleTimeoutMs: 50 } });
  await gw(node, t.name, "zero", "/");
  const live = async () => (await call(node.apiUrl, "GET", `/v1/tenants/${t.name}/instances`, t.token)).json.instances.map((i: { appName: string }) => i.appName).sort();
  for (let i = 0; i < 100 && (await live()).includes("zero"); i++) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(await live(), ["one"]);
  assert.equal((await gw(node, t.name, "zero", "/")).status, 200, "a scaled-to-zero app starts again on demand");
});

test("an instance can be stopped through the API", async () => {
  const t = await tenant(node, "stopper");
  await deploy(node, t, "app", "reactor/hello.wasm", { abi: "reactor", scale: { minInstances: 1, maxInstances: 1, idleTimeoutMs: 600000 } });
  const [inst] = (await call(node.apiUrl, "GET", `/v1/tenants/${t.name}/instances`, t.token)).json.instances;
  const r = await call(node.apiUrl, "DELETE", `/v1/tenants/${t.name}/instances/${inst.id}`, t.token);
  assert.equal(r.status, 202);
  const after = (await call(node.apiUrl, "GET", `/v1/tenants/${t.name}/instances`, t.token)).json.instances;
  assert.ok(!after.some((i: { id: string }) => i.id === inst.id));
});
