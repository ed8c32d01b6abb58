import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ImageStore, buildImage, saveImagesToTar } from "../../src/image/index.js";
import { MIGRATIONS, openDatabase, sha256Digest } from "../../src/store/index.js";
import { call, deploy, dnsServer, gw, tempDataDir, tenant, testNode, wasm, FIXTURES } from "./helpers.js";

type Node = Awaited<ReturnType<typeof testNode>>;

/** A WAGI image of the handler fixture whose manifest routes `/login` on `host`. */
async function imageRoutingHost(host: string): Promise<Uint8Array> {
  const dir = tempDataDir();
  copyFileSync(join(FIXTURES, "wagi", "handler.wasm"), join(dir, "handler.wasm"));
  writeFileSync(
    join(dir, "uniwasm.toml"),
    ["manifest_version = 1", "[application]", 'name = "phish"', 'version = "1.0.0"', "[module]", 'source = "handler.wasm"', 'entry = "command"', "[[trigger.http]]", 'route = "/login"', `host = "${host}"`, ""].join("\n"),
  );
  const store = new ImageStore(join(dir, "store"));
  const built = await buildImage(store, { dir });
  return (await saveImagesToTar(store, [built.digest])).tar;
}

/** A gateway request with an arbitrary Host header. */
const byHost = (node: Node, host: string, path: string) => {
  const dot = host.indexOf(".");
  // gw() builds "<app>.<tenant>.localhost"; for other hosts pass the header itself.
  return gw(node, host.slice(dot + 1), host.slice(0, dot), path, { headers: { host } });
};

test("a tenant cannot answer for another tenant's hosts: its routes on acme's app host, a name acme has not used yet, or any host are refused, and acme's users still reach acme", async () => {
  const node = await testNode({ executors: 1 });
  try {
    const acme = await tenant(node, "acme");
    const evil = await tenant(node, "evil");
    assert.equal((await deploy(node, acme, "hello", "wagi/handler.wasm")).status, 201);
    for (const host of ["hello.acme.localhost", "future.acme.localhost", "acme.localhost", "*"]) {
      const r = await deploy(node, evil, "phish", "wagi/handler.wasm", { routes: [{ host, path: "/login" }] });
      assert.equal(r.status, 403, `${host}: ${r.text}`);
      assert.equal(r.json.error.code, "host_not_owned");
    }
    const denied = await deploy(node, evil, "phish", "wagi/handler.wasm", { routes: [{ host: "hello.acme.localhost", path: "/login" }] });
    assert.match(denied.json.error.message, /Tenant evil does not own host hello\.acme\.localhost: a tenant routes its own names \(evil\.localhost and \*\.evil\.localhost\)/);
    // acme's users reach acme's app, which answers /login itself.
    const login = await byHost(node, "hello.acme.localhost", "/login");
    assert.equal(login.text, "no handler for /login\n");
    // evil's own names are evil's; an admin may route any host for it.
    assert.equal((await deploy(node, evil, "own", "wagi/handler.wasm", { routes: [{ host: "www.evil.localhost", path: "/" }, { path: "/x" }] })).status, 201);
    const any = await deploy(node, evil, "catchall", "wagi/handler.wasm", { routes: [{ host: "*", path: "/anywhere" }] }, node.admin);
    assert.equal(any.status, 201, any.text);
  } finally {
    await node.close();
  }
});

test("a manifest's [[trigger.http]] host on another tenant's name is refused when the image is deployed", async () => {
  const node = await testNode({ executors: 1 });
  try {
    await tenant(node, "acme");
    const evil = await tenant(node, "evil");
    const up = await call(node.apiUrl, "POST", `/v1/tenants/evil/images`, evil.token, await imageRoutingHost("hello.acme.localhost"), { "content-type": "application/x-tar" });
    assert.equal(up.status, 201, up.text);
    const d = await call(node.apiUrl, "PUT", `/v1/tenants/evil/apps/phish`, evil.token, { image: "phish" });
    assert.equal(d.status, 403, d.text);
    assert.equal(d.json.error.code, "host_not_owned");
    assert.match(d.json.error.message, /hello\.acme\.localhost/);
  } finally {
    await node.close();
  }
});

test("a custom domain is owned once its DNS TXT record proves control: then it routes, no other tenant can take it, and removing it takes its routes out", async () => {
  const txt = new Map<string, string[]>();
  const dns = await dnsServer(txt);
  const node = await testNode({ executors: 1, dnsServers: [dns.address] });
  try {
    const acme = await tenant(node, "acme");
    const evil = await tenant(node, "evil");
    const claim = await call(node.apiUrl, "POST", "/v1/tenants/acme/domains", acme.token, { host: "Shop.Acme.Test" });
    assert.equal(claim.status, 201, claim.text);
    assert.equal(claim.json.host, "shop.acme.test");
    assert.equal(claim.json.status, "pending");
    assert.equal(claim.json.challenge.name, "_uniwasm-challenge.shop.acme.test");
    assert.match(claim.json.challenge.value, /^uniwasm-verify=[A-Za-z0-9_-]{22}$/);
    // Pending is not owned; a squatter's pending claim blocks nobody.
    assert.equal((await call(node.apiUrl, "POST", "/v1/tenants/evil/domains", evil.token, { host: "shop.acme.test" })).status, 201);
    const early = await deploy(node, acme, "shop", "wagi/handler.wasm", { routes: [{ host: "shop.acme.test", path: "/" }] });
    assert.equal(early.json.error.code, "host_not_owned");

    const unproved = await call(node.apiUrl, "POST", "/v1/tenants/acme/domains/shop.acme.test/verify", acme.token);
    assert.equal(unproved.status, 403);
    assert.equal(unproved.json.error.code, "domain_not_verified");
    assert.ok(unproved.json.error.message.includes(`publish TXT _uniwasm-challenge.shop.acme.test "${claim.json.challenge.value}" (found no TXT record)`), unproved.json.error.message);
    txt.set("_uniwasm-challenge.shop.acme.test", ["uniwasm-verify=wrong"]);
    assert.match((await call(node.apiUrl, "POST", "/v1/tenants/acme/domains/shop.acme.test/verify", acme.token)).json.error.message, /found "uniwasm-verify=wrong"/);
    txt.set("_uniwasm-challenge.shop.acme.test", ["unrelated", claim.json.challenge.value]);
    const verified = await call(node.apiUrl, "POST", "/v1/tenants/acme/domains/shop.acme.test/verify", acme.token);
    assert.equal(verified.status, 200, verified.text);
    assert.equal(verified.json.status, "verified");

    const d = await deploy(node, acme, "shop", "wagi/handler.wasm", { routes: [{ host: "shop.acme.test", path: "/" }] });
    assert.equal(d.status, 201, d.text);
    assert.equal((await byHost(node, "shop.acme.test", "/")).text, "hello from wagi\n");
    // evil's pending claim cannot be verified into ownership, nor can evil route the host.
    const evilClaim = (await call(node.apiUrl, "GET", "/v1/tenants/evil/domains/shop.acme.test", evil.token)).json;
    txt.set("_uniwasm-challenge.shop.acme.test", [evilClaim.challenge.value]);
    assert.equal((await call(node.apiUrl, "POST", "/v1/tenants/evil/domains/shop.acme.test/verify", evil.token)).json.error.code, "domain_taken");
    assert.equal((await deploy(node, evil, "phish", "wagi/handler.wasm", { routes: [{ host: "shop.acme.test", path: "/login" }] })).json.error.code, "host_not_owned");

    assert.equal((await call(node.apiUrl, "DELETE", "/v1/tenants/acme/domains/shop.acme.test", acme.token)).status, 204);
    assert.equal((await byHost(node, "shop.acme.test", "/")).status, 404);
    const app = await call(node.apiUrl, "GET", "/v1/tenants/acme/apps/shop", acme.token);
    assert.deepEqual(app.json.config.routes, [{ host: "shop.acme.localhost", path: "/" }]);
    assert.equal(app.json.revision, 2);
    node.store.flush();
    const logs = (await call(node.apiUrl, "GET", "/v1/tenants/acme/apps/shop/logs", acme.token)).json.logs.map((l: { line: string }) => l.line);
    assert.ok(logs.some((l: string) => /routes shop\.acme\.test\/ removed: domain shop\.acme\.test was removed from tenant acme \(revision 2\)/.test(l)), logs.join("\n"));
    assert.equal((await gw(node, "acme", "shop", "/")).text, "hello from wagi\n", "the app keeps its own host");
  } finally {
    await node.close();
    await dns.close();
  }
});

test("an admin assigns a custom domain to a tenant, owned at once; nobody claims names under the node's domain", async () => {
  const node = await testNode({ executors: 1 });
  try {
    const acme = await tenant(node, "acme");
    const a = await call(node.apiUrl, "POST", "/v1/tenants/acme/domains", node.admin, { host: "api.acme.test" });
    assert.equal(a.status, 201, a.text);
    assert.deepEqual([a.json.status, a.json.method, a.json.challenge], ["verified", "admin", undefined]);
    assert.equal((await deploy(node, acme, "api", "wagi/handler.wasm", { routes: [{ host: "api.acme.test", path: "/v1" }] })).status, 201);
    for (const host of ["x.acme.localhost", "x.other.localhost", "localhost"]) {
      const r = await call(node.apiUrl, "POST", "/v1/tenants/acme/domains", acme.token, { host });
      assert.equal(r.json.error.code, host === "localhost" ? "bad_request" : "host_not_owned", `${host}: ${r.text}`);
    }
    assert.equal((await call(node.apiUrl, "POST", "/v1/tenants/acme/domains", acme.token, { host: "not a host" })).json.error.code, "bad_request");
  } finally {
    await node.close();
  }
});

test("upgrading a node's database to schema 4 removes the routes a tenant did not own (another tenant's names, any host), says so in the app's log, and the owner can then deploy", async () => {
  const dataDir = tempDataDir();
  const db = openDatabase(join(dataDir, "node.db"), MIGRATIONS.filter((m) => m.version <= 3));
  const module = wasm("wagi/handler.wasm");
  const digest = sha256Digest(module);
  const surface = JSON.stringify({ imports: [], exports: [], wasiCalls: [] });
  const config = (routes: { host: string; path: string }[]) =>
    JSON.stringify({ abi: "wagi", routes, env: {}, args: [], limits: { memoryMiB: 16, fuel: 0, timeoutMs: 5000, maxBodyBytes: 1024, maxResponseBytes: 1 << 20 }, scale: { minInstances: 0, maxInstances: 2, idleTimeoutMs: 1000 } });
  const evilRoutes = [
    { host: "phish.evil.localhost", path: "/" },
    { host: "hello.acme.localhost", path: "/login" },
    { host: "future.acme.localhost", path: "/" },
    { host: "*", path: "/catch" },
  ];
  db.exec(`INSERT INTO tenants (id, name, quotas, created_at) VALUES ('t_acme', 'acme', '{}', 0), ('t_evil', 'evil', '{}', 0)`);
  for (const t of ["t_acme", "t_evil"]) {
    db.prepare("INSERT INTO images (tenant_id, digest, name, size, source, config, info, signed_by, created_at) VALUES (?, ?, 'h', ?, 'upload', '{}', ?, NULL, 0)").run(t, digest, module.length, surface);
  }
  const insertApp = db.prepare("INSERT INTO apps (id, tenant_id, name, image_digest, config, revision, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 1, 0, 0)");
  insertApp.run("a_hello", "t_acme", "hello", digest, config([{ host: "hello.acme.localhost", path: "/" }]));
  insertApp.run("a_phish", "t_evil", "phish", digest, config(evilRoutes));
  const route = db.prepare("INSERT INTO routes (host, path_prefix, app_id) VALUES (?, ?, ?)");
  route.run("hello.acme.localhost", "/", "a_hello");
  for (const r of evilRoutes) route.run(r.host, r.path, "a_phish");
  db.close();
  const { writeFileSync: write, mkdirSync } = await import("node:fs");
  mkdirSync(join(dataDir, "blobs", "sha256"), { recursive: true });
  write(join(dataDir, "blobs", "sha256", digest.slice(7)), module);

  const node = await testNode({ dataDir, executors: 1 });
  try {
    assert.deepEqual(
      node.store.apps.routes().map((r) => `${r.host}${r.pathPrefix}`).sort(),
      ["hello.acme.localhost/", "phish.evil.localhost/"],
    );
    assert.deepEqual(node.store.apps.get("a_phish")!.config.routes, [{ host: "phish.evil.localhost", path: "/" }]);
    const events = node.store.logs.read("a_phish", { tail: 10 }).map((l) => l.line);
    assert.ok(events.includes("route hello.acme.localhost/login removed by the upgrade to schema 4: a tenant routes only its own names and domains it owns"), events.join("\n"));
    assert.ok(events.includes("route */catch removed by the upgrade to schema 4: a tenant routes only its own names and domains it owns, and only an admin routes any host"));
    assert.equal((await byHost(node, "hello.acme.localhost", "/login")).text, "no handler for /login\n", "acme's app answers its own host again");
    assert.equal((await byHost(node, "phish.evil.localhost", "/")).text, "hello from wagi\n", "evil keeps its own name");
    const acmeToken = (await call(node.apiUrl, "POST", "/v1/tenants/acme/tokens", node.admin, { name: "t" })).json.secret;
    const future = await call(node.apiUrl, "PUT", "/v1/tenants/acme/apps/future", acmeToken, { image: digest });
    assert.equal(future.status, 201, future.text);
  } finally {
    await node.close();
  }
});
