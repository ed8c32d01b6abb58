/**
 * Host extensions on a node: apps granted (or not) the built-ins through the
 * deploy API, with the node's providers — KV in its SQLite, variables set
 * through the API, log lines in the app's logs, outbound HTTP through the
 * checked client, service calls through the manager — and nothing leaking
 * across apps or tenants. The node keeps serving through every refusal.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { call, deploy, gw, tenant, testNode } from "./helpers.js";

type Node = Awaited<ReturnType<typeof testNode>>;
type Tenant = { name: string; token: string };

const q = (...ops: string[]): string => "/?" + ops.map(encodeURIComponent).join("&");
const ext = (e: Record<string, string[]>) => ({ extensions: e });

async function up(node: Node, t: Tenant, app: string, fixture: string, extra: Record<string, unknown> = {}): Promise<void> {
  const r = await deploy(node, t, app, fixture, extra);
  assert.ok(r.status === 201 || r.status === 200, `deploy ${app}: ${r.status} ${r.text}`);
}

async function body(node: Node, t: Tenant, app: string, path: string, opts: { method?: string; body?: string } = {}): Promise<string> {
  const r = await gw(node, t.name, app, path, opts);
  assert.equal(r.status, 200, `${app}${path}: ${r.status} ${r.text}`);
  return r.text;
}

describe("extensions on a node", () => {
  let node: Node;
  let a: Tenant;
  let b: Tenant;
  before(async () => {
    // The upstream below listens on loopback, which a node opens to apps only when told (--outbound-private).
    node = await testNode({ executors: 2, outbound: { privateNetworks: ["127.0.0.1"] } });
    a = await tenant(node, "acme", { kvMaxTotalBytes: 30_000, kvMaxValueBytes: 8192 });
    b = await tenant(node, "bravo");
  });
  after(() => node.close());

  test("kv: each app has its own store, a shared store is shared only by the apps granted it, and nothing crosses tenants", async () => {
    await up(node, a, "one", "ext/kv.wasm", ext({ grants: ["uniwasm:kv"], keyValueStores: ["team"] }));
    await up(node, a, "two", "ext/kv.wasm", ext({ grants: ["uniwasm:kv"], keyValueStores: ["team"] }));
    await up(node, a, "three", "ext/kv.wasm", ext({ grants: ["uniwasm:kv"] }));
    await up(node, b, "one", "ext/kv.wasm", ext({ grants: ["uniwasm:kv"], keyValueStores: ["team"] }));
    assert.equal(await body(node, a, "one", q("set", "k", "acme-one", "open", "team", "set", "t", "shared")), "set k: 0\nopen team: 0\nset t: 0\n");
    assert.equal(await body(node, a, "one", q("get", "k", "incr", "hits", "1", "incr", "hits", "1")), "get k = acme-one\nincr hits = 1\nincr hits = 2\n");
    assert.equal(await body(node, a, "two", q("get", "k", "open", "team", "get", "t")), "get k: errno 44\nopen team: 0\nget t = shared\n");
    assert.equal(await body(node, a, "three", q("open", "team", "get", "t")), "open team: 2\nget t: errno 44\n");
    // Same app and store names in another tenant: empty.
    assert.equal(await body(node, b, "one", q("get", "k", "open", "team", "get", "t", "list", "t")), "get k: errno 44\nopen team: 0\nget t: errno 44\nlist t:\n");
    const view = await call(node.apiUrl, "GET", `/v1/tenants/${a.name}/apps/three`, a.token);
    assert.deepEqual(view.json.deniedCalls, { "uniwasm:kv.open": 1 });
  });

  test("kv: the tenant's quotas end writes with clear errnos, and the node keeps serving", async () => {
    await up(node, a, "filler", "ext/kv.wasm", ext({ grants: ["uniwasm:kv"] }));
    const out = await body(node, a, "filler", q("set", "v", "x".repeat(9000), "fill", "100", "4000"));
    assert.match(out, /^set v: 22\nfill: \d+ written, errno 19\n$/);
    assert.equal(await body(node, a, "one", q("get", "k")), "get k = acme-one\n");
  });

  test("kv hostile pointers on a node get errnos, never a host fault", async () => {
    const out = await body(node, a, "three", q("hostile"));
    assert.match(out, /^get-oob-key 21\n/);
    assert.doesNotMatch(out, /host/);
  });

  test("variables: set through the API, secrets write-only in listings and logs, read by the guest only when granted", async () => {
    await up(node, a, "config", "ext/variables.wasm", ext({ grants: ["uniwasm:variables"], variables: ["api_url", "api_key"] }));
    const base = `/v1/tenants/${a.name}/apps/config/variables`;
    assert.equal((await call(node.apiUrl, "PUT", `${base}/api_url`, a.token, { value: "https://api.example.com" })).status, 200);
    const put = await call(node.apiUrl, "PUT", `${base}/api_key`, a.token, { value: "hunter2-secret", secret: true });
    assert.equal(put.status, 200);
    assert.equal(put.json.value, undefined);
    assert.equal((await call(node.apiUrl, "PUT", `${base}/db_password`, a.token, { value: "not-granted-secret", secret: true })).status, 200);
    const list = await call(node.apiUrl, "GET", base, a.token);
    assert.deepEqual(list.json.variables.map((v: { name: string; secret: boolean; value?: string }) => [v.name, v.secret, v.value]), [
      ["api_key", true, undefined],
      ["api_url", false, "https://api.example.com"],
      ["db_password", true, undefined],
    ]);
    assert.equal(await body(node, a, "config", q("api_url", "api_key", "db_password", "unset")), "api_url = https://api.example.com\napi_key = hunter2-secret\ndb_password: errno 2\nunset: errno 2\n");
    const logs = await call(node.apiUrl, "GET", `/v1/tenants/${a.name}/apps/config/logs?tail=100`, a.token);
    assert.doesNotMatch(logs.text, /hunter2|not-granted-secret/);
    assert.match(logs.text, /variable api_key set \(secret\)/);
    assert.equal((await call(node.apiUrl, "PUT", `${base}/Bad%20Name`, a.token, { value: "x" })).json.error.code, "invalid_config");
    assert.equal((await call(node.apiUrl, "DELETE", `${base}/nope`, a.token)).json.error.code, "variable_not_found");
    // Another tenant cannot reach this app's variables.
    assert.equal((await call(node.apiUrl, "GET", base, b.token)).status, 404);
  });

  test("log: lines go into the app's logs with their level, a flood is bounded and counted as denied", async () => {
    await up(node, a, "logger", "ext/log.wasm", ext({ grants: ["uniwasm:log"] }));
    const lines = async (): Promise<string[]> => {
      node.store.flush();
      const logs = await call(node.apiUrl, "GET", `/v1/tenants/${a.name}/apps/logger/logs?tail=10000`, a.token);
      return (logs.json.logs as { line: string }[]).map((l) => l.line);
    };
    assert.equal(await body(node, a, "logger", q("log", "2", "disk almost full")), "status 0\n");
    assert.ok((await lines()).includes("[warn] disk almost full"));
    assert.match(await body(node, a, "logger", q("flood", "3000")), /dropped \d{3,4} other 0/);
    const after = await lines();
    assert.ok(after.filter((l) => l.startsWith("[info] flood line")).length <= 1200);
    assert.equal(after.filter((l) => l.startsWith("[warn] log flood")).length, 1);
    const view = await call(node.apiUrl, "GET", `/v1/tenants/${a.name}/apps/logger`, a.token);
    assert.ok(view.json.deniedCalls["uniwasm:log.write"] >= 1800);
    assert.equal((await gw(node, a.name, "one", q("get", "k"))).status, 200, "the node keeps serving");
  });

  test("an app granted nothing gets ENOTCAPABLE from every extension call", async () => {
    await up(node, a, "bare", "ext/kv.wasm");
    assert.equal(await body(node, a, "bare", q("set", "k", "v", "get", "k")), "set k: 76\nget k: errno 76\n");
    const metrics = await call(node.apiUrl, "GET", "/metrics", node.admin);
    assert.match(metrics.text, /call="uniwasm:kv\.set"/);
  });

  describe("http", () => {
    let server: Server;
    let port = 0;
    before(async () => {
      server = createServer((req, res) => res.writeHead(200, { "x-test": req.method ?? "" }).end(`upstream ${req.url}`));
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      port = (server.address() as AddressInfo).port;
    });
    after(() => server.close());

    test("an app reaches a destination it lists; a wildcard never reaches loopback", async () => {
      await up(node, a, "caller", "ext/http.wasm", ext({ grants: ["uniwasm:http"], allowedOutboundHosts: [`http://127.0.0.1:${port}`] }));
      assert.match(await body(node, a, "caller", q("GET", `http://127.0.0.1:${port}/x`)), /^status 200\nx-test GET\nbody upstream \/x\n/);
      await up(node, a, "wild", "ext/http.wasm", ext({ grants: ["uniwasm:http"], allowedOutboundHosts: ["http://*:*"] }));
      assert.equal(await body(node, a, "wild", q("GET", `http://127.0.0.1:${port}/x`)), "errno 2\n");
      assert.equal(await body(node, a, "wild", q("GET", `http://2130706433:${port}/x`)), "errno 2\n");
    });

    test("on a node that opens no private network (the default), a tenant naming loopback or the metadata address literally is refused and counted", async () => {
      const closed = await testNode({ executors: 1 });
      try {
        const t = await tenant(closed, "sneaky");
        await up(closed, t, "probe", "ext/http.wasm", ext({ grants: ["uniwasm:http"], allowedOutboundHosts: [`http://127.0.0.1:${port}`, "http://169.254.169.254"] }));
        assert.equal(await body(closed, t, "probe", q("GET", `http://127.0.0.1:${port}/x`)), "errno 2\n");
        assert.equal(await body(closed, t, "probe", q("GET", "http://169.254.169.254/latest/meta-data/")), "errno 2\n");
        const view = await call(closed.apiUrl, "GET", `/v1/tenants/${t.name}/apps/probe`, t.token);
        assert.deepEqual(view.json.deniedCalls, { "uniwasm:http.send": 2 });
      } finally {
        await closed.close();
      }
    });

    test("a deploy with a malformed allow-list entry is refused with invalid_config", async () => {
      const r = await deploy(node, a, "badlist", "ext/http.wasm", ext({ grants: ["uniwasm:http"], allowedOutboundHosts: ["not a url"] }));
      assert.equal(r.status, 400);
      assert.equal(r.json.error.code, "invalid_config");
    });
  });

  describe("service calls", () => {
    before(async () => {
      const svc = (allowed: string[]) => ext({ grants: ["uniwasm:service"], allowedServices: allowed });
      await up(node, a, "front", "ext/service.wasm", svc(["back", "hello", "b1", "nope-missing", "missing"]));
      await up(node, a, "back", "ext/service.wasm", svc(["front"]));
      await up(node, a, "other", "ext/service.wasm", svc([]));
      await up(node, a, "hello", "reactor/hello.wasm", { abi: "reactor" });
      // A chain b1 -> b2 -> b3 -> b4 -> b5: one app deeper than allowed.
      for (let i = 1; i <= 5; i++) await up(node, a, `b${i}`, "ext/service.wasm", svc([`b${i + 1}`]));
      await up(node, b, "secret", "ext/service.wasm", svc([]));
    });

    test("an app calls a granted app of its tenant by name: a WAGI command and a warm reactor", async () => {
      assert.equal(await body(node, a, "front", "/", { method: "POST", body: "call back hi there" }), "status 200: echo from ? for front: hi there");
      assert.match(await body(node, a, "front", "/", { method: "POST", body: "call hello ping" }), /^status 200: hello from reactor \(served \d+\)\n$/);
    });

    test("a callee not granted is refused with EACCES and counted; a name of another tenant the same; a missing app ENOENT", async () => {
      assert.equal(await body(node, a, "front", "/", { method: "POST", body: "call other hi" }), "errno 2\n");
      assert.equal(await body(node, a, "front", "/", { method: "POST", body: "call bravo/secret hi" }), "errno 2\n");
      assert.equal(await body(node, a, "front", "/", { method: "POST", body: "call missing hi" }), "errno 44\n");
      const view = await call(node.apiUrl, "GET", `/v1/tenants/${a.name}/apps/front`, a.token);
      assert.equal(view.json.deniedCalls["uniwasm:service.call"], 2);
    });

    test("a cycle is refused with ELOOP, and so is a chain deeper than four apps", async () => {
      // front -> back -> front: back's call is refused.
      assert.equal(await body(node, a, "front", "/", { method: "POST", body: "call back call front hi" }), "status 200: errno 32\n");
      const deep = await body(node, a, "b1", "/", { method: "POST", body: "call b2 call b3 call b4 call b5 hi" });
      assert.equal(deep, "status 200: status 200: status 200: errno 32\n");
      assert.equal(await body(node, a, "b1", "/", { method: "POST", body: "call b2 call b3 call b4 hi" }), "status 200: status 200: status 200: echo from ? for b3: hi");
    });

    test("service calls keep working under concurrency, and the node keeps serving", async () => {
      const replies = await Promise.all(Array.from({ length: 6 }, (_, i) => gw(node, a.name, "front", "/", { method: "POST", body: `call back n${i}` })));
      for (const [i, r] of replies.entries()) assert.equal(r.text, `status 200: echo from ? for front: n${i}`);
      assert.equal((await gw(node, b.name, "secret", "/", { method: "POST", body: "plain" })).status, 200);
    });
  });
});
