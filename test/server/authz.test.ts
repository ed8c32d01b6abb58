import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { call, deploy, tenant, testNode, wasm, type Reply } from "./helpers.js";

type Node = Awaited<ReturnType<typeof testNode>>;
let node: Node;
let A: { name: string; token: string };
let B: { name: string; token: string };
let bDigest: string;
let bTokenId: string;
let bInstanceId: string;

before(async () => {
  node = await testNode({ executors: 1 });
  A = await tenant(node, "tenant-a");
  B = await tenant(node, "tenant-b");
  assert.equal((await deploy(node, A, "site-a", "wagi/handler.wasm")).status, 201);
  const d = await deploy(node, B, "site-b", "reactor/hello.wasm", { abi: "reactor", scale: { minInstances: 1, maxInstances: 2, idleTimeoutMs: 600000 } });
  assert.equal(d.status, 201, d.text);
  bDigest = d.json.image;
  bTokenId = (await call(node.apiUrl, "GET", `/v1/tenants/${B.name}/tokens`, B.token)).json.tokens[0].id;
  bInstanceId = (await call(node.apiUrl, "GET", `/v1/tenants/${B.name}/instances`, B.token)).json.instances[0].id;
  assert.equal((await call(node.apiUrl, "POST", `/v1/tenants/${B.name}/domains`, node.admin, { host: "shop.b.example" })).status, 201);
  assert.equal((await call(node.apiUrl, "POST", `/v1/tenants/${B.name}/domains`, B.token, { host: "pending.b.example" })).status, 201);
});

after(async () => {
  await node.close();
});

const api = (method: string, path: string, token: string | undefined, body?: unknown, headers?: Record<string, string>) => call(node.apiUrl, method, path, token, body, headers);

function expectError(r: Reply, status: number, code: string): void {
  assert.equal(r.status, status, `${r.status} ${r.text}`);
  assert.equal(r.json?.error?.code, code, r.text);
  assert.equal(typeof r.json.error.message, "string");
}

/** B's state, to check that nothing A tried changed it. */
async function snapshotOfB() {
  const get = async (p: string) => (await api("GET", `/v1/tenants/${B.name}${p}`, B.token)).json;
  const t = await get("");
  const apps = (await get("/apps")).apps.map((a: { name: string; revision: number; image: string }) => `${a.name}@${a.revision}:${a.image}`);
  const images = (await get("/images")).images.map((i: { digest: string }) => i.digest);
  const tokens = (await get("/tokens")).tokens.map((k: { id: string }) => k.id);
  const instances = (await get("/instances")).instances.map((i: { id: string }) => i.id);
  const domains = (await get("/domains")).domains.map((d: { host: string; status: string }) => `${d.host}:${d.status}`);
  return { quotas: t.quotas, weight: t.weight, apps, images, tokens, instances, domains };
}

/**
 * One case per route of the OpenAPI document: tenant A's token aimed at
 * tenant B's resources (or at admin-only routes) must be refused or see only A.
 */
const CASES: Record<string, () => Promise<void>> = {
  "GET /v1/whoami": async () => {
    const r = await api("GET", "/v1/whoami", A.token);
    assert.equal(r.json.tenant.name, A.name);
  },
  "GET /v1/node": async () => expectError(await api("GET", "/v1/node", A.token), 403, "forbidden"),
  "GET /v1/cluster": async () => expectError(await api("GET", "/v1/cluster", A.token), 403, "forbidden"),
  "GET /v1/tenants": async () => {
    const r = await api("GET", "/v1/tenants", A.token);
    assert.deepEqual(r.json.tenants.map((t: { name: string }) => t.name), [A.name]);
  },
  "POST /v1/tenants": async () => expectError(await api("POST", "/v1/tenants", A.token, { name: "sneaky" }), 403, "forbidden"),
  "GET /v1/tenants/{tenant}": async () => expectError(await api("GET", `/v1/tenants/${B.name}`, A.token), 404, "tenant_not_found"),
  "PATCH /v1/tenants/{tenant}": async () => {
    expectError(await api("PATCH", `/v1/tenants/${B.name}`, A.token, { quotas: { maxApps: 0 } }), 404, "tenant_not_found");
    expectError(await api("PATCH", `/v1/tenants/${A.name}`, A.token, { quotas: { maxApps: 999 } }), 403, "forbidden");
  },
  "DELETE /v1/tenants/{tenant}": async () => {
    expectError(await api("DELETE", `/v1/tenants/${B.name}`, A.token), 404, "tenant_not_found");
    expectError(await api("DELETE", `/v1/tenants/${A.name}`, A.token), 403, "forbidden");
  },
  "GET /v1/tenants/{tenant}/tokens": async () => expectError(await api("GET", `/v1/tenants/${B.name}/tokens`, A.token), 404, "tenant_not_found"),
  "POST /v1/tenants/{tenant}/tokens": async () => expectError(await api("POST", `/v1/tenants/${B.name}/tokens`, A.token, { name: "x" }), 404, "tenant_not_found"),
  "DELETE /v1/tenants/{tenant}/tokens/{token}": async () => {
    expectError(await api("DELETE", `/v1/tenants/${B.name}/tokens/${bTokenId}`, A.token), 404, "tenant_not_found");
    expectError(await api("DELETE", `/v1/tenants/${A.name}/tokens/${bTokenId}`, A.token), 404, "token_not_found");
  },
  "GET /v1/admin-tokens": async () => expectError(await api("GET", "/v1/admin-tokens", A.token), 403, "forbidden"),
  "POST /v1/admin-tokens": async () => expectError(await api("POST", "/v1/admin-tokens", A.token, { name: "x" }), 403, "forbidden"),
  "DELETE /v1/admin-tokens/{token}": async () => expectError(await api("DELETE", `/v1/admin-tokens/${bTokenId}`, A.token), 403, "forbidden"),
  "GET /v1/tenants/{tenant}/images": async () => expectError(await api("GET", `/v1/tenants/${B.name}/images`, A.token), 404, "tenant_not_found"),
  "POST /v1/tenants/{tenant}/images": async () =>
    expectError(await api("POST", `/v1/tenants/${B.name}/images?name=x`, A.token, wasm("wagi/hello.wasm"), { "content-type": "application/wasm" }), 404, "tenant_not_found"),
  "POST /v1/tenants/{tenant}/images/pull": async () => expectError(await api("POST", `/v1/tenants/${B.name}/images/pull`, A.token, { ref: "127.0.0.1:1/x:y" }), 404, "tenant_not_found"),
  "GET /v1/tenants/{tenant}/images/{digest}": async () => {
    expectError(await api("GET", `/v1/tenants/${B.name}/images/${bDigest}`, A.token), 404, "tenant_not_found");
    expectError(await api("GET", `/v1/tenants/${A.name}/images/${bDigest}`, A.token), 404, "image_not_found");
  },
  "DELETE /v1/tenants/{tenant}/images/{digest}": async () => {
    expectError(await api("DELETE", `/v1/tenants/${B.name}/images/${bDigest}`, A.token), 404, "tenant_not_found");
    expectError(await api("DELETE", `/v1/tenants/${A.name}/images/${bDigest}`, A.token), 404, "image_not_found");
  },
  "GET /v1/tenants/{tenant}/apps": async () => expectError(await api("GET", `/v1/tenants/${B.name}/apps`, A.token), 404, "tenant_not_found"),
  "PUT /v1/tenants/{tenant}/apps/{app}": async () => {
    expectError(await api("PUT", `/v1/tenants/${B.name}/apps/site-b`, A.token, { image: bDigest }), 404, "tenant_not_found");
    // A cannot deploy B's image under its own tenant either, even knowing the digest.
    expectError(await api("PUT", `/v1/tenants/${A.name}/apps/stolen`, A.token, { image: bDigest }), 404, "image_not_found");
    // ...nor route B's hosts: a path on B's app host, a name B has not used yet, B's custom domain, any host.
    const own = (await api("GET", `/v1/tenants/${A.name}/images`, A.token)).json.images[0].digest;
    for (const host of [`site-b.${B.name}.localhost`, `future.${B.name}.localhost`, `${B.name}.localhost`, "shop.b.example", "*"]) {
      expectError(await api("PUT", `/v1/tenants/${A.name}/apps/hijack`, A.token, { image: own, routes: [{ host, path: "/login" }] }), 403, "host_not_owned");
    }
  },
  "GET /v1/tenants/{tenant}/apps/{app}": async () => {
    expectError(await api("GET", `/v1/tenants/${B.name}/apps/site-b`, A.token), 404, "tenant_not_found");
    expectError(await api("GET", `/v1/tenants/${A.name}/apps/site-b`, A.token), 404, "app_not_found");
  },
  "DELETE /v1/tenants/{tenant}/apps/{app}": async () => {
    expectError(await api("DELETE", `/v1/tenants/${B.name}/apps/site-b`, A.token), 404, "tenant_not_found");
    expectError(await api("DELETE", `/v1/tenants/${A.name}/apps/site-b`, A.token), 404, "app_not_found");
  },
  "GET /v1/tenants/{tenant}/apps/{app}/variables": async () => {
    expectError(await api("GET", `/v1/tenants/${B.name}/apps/site-b/variables`, A.token), 404, "tenant_not_found");
  },
  "PUT /v1/tenants/{tenant}/apps/{app}/variables/{name}": async () => {
    expectError(await api("PUT", `/v1/tenants/${B.name}/apps/site-b/variables/api_key`, A.token, { value: "x", secret: true }), 404, "tenant_not_found");
  },
  "DELETE /v1/tenants/{tenant}/apps/{app}/variables/{name}": async () => {
    expectError(await api("DELETE", `/v1/tenants/${B.name}/apps/site-b/variables/api_key`, A.token), 404, "tenant_not_found");
  },
  "GET /v1/tenants/{tenant}/apps/{app}/logs": async () => {
    expectError(await api("GET", `/v1/tenants/${B.name}/apps/site-b/logs`, A.token), 404, "tenant_not_found");
    expectError(await api("GET", `/v1/tenants/${B.name}/apps/site-b/logs?follow=true`, A.token), 404, "tenant_not_found");
  },
  "GET /v1/tenants/{tenant}/instances": async () => {
    expectError(await api("GET", `/v1/tenants/${B.name}/instances`, A.token), 404, "tenant_not_found");
    const own = (await api("GET", `/v1/tenants/${A.name}/instances`, A.token)).json.instances as { id: string }[];
    assert.ok(!own.some((i) => i.id === bInstanceId));
  },
  "DELETE /v1/tenants/{tenant}/instances/{instance}": async () => {
    expectError(await api("DELETE", `/v1/tenants/${B.name}/instances/${bInstanceId}`, A.token), 404, "tenant_not_found");
    expectError(await api("DELETE", `/v1/tenants/${A.name}/instances/${bInstanceId}`, A.token), 404, "instance_not_found");
  },
  "GET /v1/tenants/{tenant}/domains": async () => expectError(await api("GET", `/v1/tenants/${B.name}/domains`, A.token), 404, "tenant_not_found"),
  "POST /v1/tenants/{tenant}/domains": async () => {
    expectError(await api("POST", `/v1/tenants/${B.name}/domains`, A.token, { host: "x.example" }), 404, "tenant_not_found");
    expectError(await api("POST", `/v1/tenants/${A.name}/domains`, A.token, { host: "shop.b.example" }), 409, "domain_taken");
    expectError(await api("POST", `/v1/tenants/${A.name}/domains`, A.token, { host: `future.${B.name}.localhost` }), 403, "host_not_owned");
  },
  "GET /v1/tenants/{tenant}/domains/{host}": async () => {
    expectError(await api("GET", `/v1/tenants/${B.name}/domains/shop.b.example`, A.token), 404, "tenant_not_found");
    expectError(await api("GET", `/v1/tenants/${A.name}/domains/shop.b.example`, A.token), 404, "domain_not_found");
  },
  "DELETE /v1/tenants/{tenant}/domains/{host}": async () => {
    expectError(await api("DELETE", `/v1/tenants/${B.name}/domains/shop.b.example`, A.token), 404, "tenant_not_found");
    expectError(await api("DELETE", `/v1/tenants/${A.name}/domains/shop.b.example`, A.token), 404, "domain_not_found");
  },
  "POST /v1/tenants/{tenant}/domains/{host}/verify": async () => {
    expectError(await api("POST", `/v1/tenants/${B.name}/domains/pending.b.example/verify`, A.token), 404, "tenant_not_found");
    expectError(await api("POST", `/v1/tenants/${A.name}/domains/pending.b.example/verify`, A.token), 404, "domain_not_found");
  },
  "GET /v1/tenants/{tenant}/usage": async () => expectError(await api("GET", `/v1/tenants/${B.name}/usage`, A.token), 404, "tenant_not_found"),
  "GET /v1/tenants/{tenant}/stats": async () => expectError(await api("GET", `/v1/tenants/${B.name}/stats`, A.token), 404, "tenant_not_found"),
  "GET /metrics": async () => expectError(await api("GET", "/metrics", A.token), 403, "forbidden"),
};

async function documentedRoutes(): Promise<string[]> {
  const doc = (await api("GET", "/openapi.json", undefined)).json as { paths: Record<string, Record<string, unknown>> };
  return Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`));
}

test("every route in the OpenAPI document has an authorization case", async () => {
  const routes = await documentedRoutes();
  assert.ok(routes.length >= 25, `only ${routes.length} routes documented`);
  const missing = routes.filter((r) => !(r in CASES));
  assert.deepEqual(missing, [], `routes without an authorization case: ${missing.join(", ")}`);
});

test("tenant A's token cannot see or change anything of tenant B, on every route", async () => {
  const before = await snapshotOfB();
  for (const [route, check] of Object.entries(CASES)) {
    try {
      await check();
    } catch (err) {
      throw new Error(`${route}: ${(err as Error).message}`);
    }
  }
  assert.deepEqual(await snapshotOfB(), before, "tenant B's state changed");
  // B's token still works, and B's app still serves.
  assert.equal((await api("GET", "/v1/whoami", B.token)).json.tenant.name, B.name);
});

test("every documented route refuses a request without a token, or with an unknown one, with 401 unauthorized", async () => {
  for (const route of await documentedRoutes()) {
    const [method, template] = route.split(" ") as [string, string];
    const path = template.replace(/\{tenant\}/g, B.name).replace(/\{[a-z]+\}/g, "x");
    const body = method === "GET" || method === "DELETE" ? undefined : {};
    expectError(await api(method, path, undefined, body), 401, "unauthorized");
    expectError(await api(method, path, "uw_forged", body), 401, "unauthorized");
  }
});

test("an admin token reaches every tenant", async () => {
  assert.equal((await api("GET", `/v1/tenants/${B.name}/apps/site-b`, node.admin)).json.name, "site-b");
  assert.equal((await api("GET", `/v1/tenants`, node.admin)).json.tenants.length, 2);
});
