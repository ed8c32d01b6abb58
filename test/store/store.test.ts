import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveLimits } from "../../src/limits.js";
import { NodeStore, openDatabase, migrate, MIGRATIONS, RouteConflict, DomainTaken, CorruptBlob, sha256Digest, type AppConfig } from "../../src/store/index.js";

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "uniwasm-store-"));
}

const surface = { imports: [], exports: [], wasiCalls: [] };

function config(routes: AppConfig["routes"] = []): AppConfig {
  return {
    abi: "wagi",
    routes,
    env: {},
    args: [],
    limits: resolveLimits({ maxMemoryBytes: 16 * 1024 * 1024, timeoutMs: 1000, maxBodyBytes: 1024, stdoutBytes: 1024 }),
    scale: { minInstances: 0, maxInstances: 2, idleTimeoutMs: 1000 },
  };
}

function seed(store: NodeStore, tenantName: string, appName: string, routes: AppConfig["routes"] = []) {
  const tenant = store.tenants.create(tenantName);
  const digest = store.blobs.put(new TextEncoder().encode(`module of ${tenantName}`));
  store.images.upsert({ tenantId: tenant.id, digest, name: "img", size: 10, source: "upload", config: {}, info: surface, signedBy: null });
  const app = store.apps.upsert(tenant.id, appName, digest, config(routes));
  return { tenant, digest, app };
}

test("migrations run once, in order, and record the schema version", () => {
  const db = openDatabase(":memory:");
  assert.equal(db.pragma("user_version", { simple: true }), MIGRATIONS.at(-1)!.version);
  assert.equal(migrate(db), 0, "a second migrate applies nothing");
  const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name);
  for (const t of ["tenants", "tokens", "images", "apps", "routes", "logs", "usage"]) assert.ok(tables.includes(t), t);
  db.close();
});

test("a database from a newer uniwasm is refused with a message naming both versions", () => {
  const db = openDatabase(":memory:");
  db.pragma("user_version = 999");
  assert.throws(() => migrate(db), new RegExp(`schema version 999 is newer than this uniwasm understands \\(${MIGRATIONS.at(-1)!.version}\\)`));
  db.close();
});

test("migration 2 keeps images stored under version 1, with the kernel's default grants and no dirs", () => {
  const dir = tempDir();
  const db = openDatabase(join(dir, "node.db"), MIGRATIONS.slice(0, 1));
  db.prepare("INSERT INTO tenants (id, name, quotas, created_at) VALUES ('t1', 'acme', '{}', 0)").run();
  db.prepare("INSERT INTO images (tenant_id, digest, name, size, source, config, info, signed_by, created_at) VALUES ('t1', 'sha256:aa', 'old', 1, 'upload', '{}', ?, NULL, 0)").run(JSON.stringify(surface));
  db.close();
  const store = new NodeStore({ dataDir: dir });
  assert.equal(store.schemaVersion, MIGRATIONS.at(-1)!.version);
  const img = store.images.get("t1", "sha256:aa")!;
  assert.equal(img.name, "old");
  assert.equal(img.capabilities, null);
  assert.deepEqual(img.dirs, []);
  store.close();
  rmSync(dir, { recursive: true });
});

test("an image's capabilities and dirs round-trip, and a bundled file's blob counts as referenced until no image bundles it", () => {
  const dir = tempDir();
  const store = new NodeStore({ dataDir: dir });
  const tenant = store.tenants.create("acme");
  const module = store.blobs.put(new TextEncoder().encode("module"));
  const file = store.blobs.put(new TextEncoder().encode("file"));
  const dirs = [{ guest: "/static", readonly: true, files: { "a.txt": file } }];
  const img = store.images.upsert({ tenantId: tenant.id, digest: module, name: "img", size: 6, source: "upload", config: {}, info: surface, signedBy: null, capabilities: ["fs", "clocks"], dirs });
  assert.deepEqual(img.capabilities, ["fs", "clocks"]);
  assert.deepEqual(img.dirs, dirs);
  assert.ok(store.images.referenced(file));
  assert.ok(!store.images.referenced(file.slice(0, 20)), "a prefix of a file digest is not a reference");
  store.images.delete(tenant.id, module);
  assert.ok(!store.images.referenced(file));
  store.close();
  rmSync(dir, { recursive: true });
});

test("the database uses WAL journaling", () => {
  const dir = tempDir();
  const store = new NodeStore({ dataDir: dir });
  assert.equal(store.db.pragma("journal_mode", { simple: true }), "wal");
  store.close();
  rmSync(dir, { recursive: true });
});

test("reopening the data directory restores tenants, tokens, images, apps and routes", () => {
  const dir = tempDir();
  let store = new NodeStore({ dataDir: dir });
  const { tenant, digest, app } = seed(store, "acme", "hello", [{ host: "*", path: "/hello" }]);
  const { secret } = store.tokens.create("tenant", tenant.id, "ci");
  store.close();
  store = new NodeStore({ dataDir: dir });
  assert.equal(store.tenants.find("acme")?.id, tenant.id);
  assert.equal(store.tokens.verify(secret)?.tenantId, tenant.id);
  assert.equal(store.images.get(tenant.id, digest)?.name, "img");
  assert.deepEqual(store.apps.findByName(tenant.id, "hello")?.config, app.config);
  assert.deepEqual(store.apps.routes(), [{ host: "*", pathPrefix: "/hello", appId: app.id }]);
  assert.ok(store.blobs.get(digest));
  store.close();
  rmSync(dir, { recursive: true });
});

test("token secrets are not stored: the database file holds only their hash", () => {
  const dir = tempDir();
  const store = new NodeStore({ dataDir: dir });
  const { secret } = store.tokens.create("admin", null, "root");
  store.close();
  for (const f of readdirSync(dir).filter((f) => f.startsWith("node.db"))) {
    assert.ok(!readFileSync(join(dir, f)).includes(secret), `${f} contains the secret`);
  }
  rmSync(dir, { recursive: true });
});

test("an unknown token secret verifies to nothing", () => {
  const store = new NodeStore({ dataDir: tempDir() });
  store.tokens.create("admin", null, "root");
  assert.equal(store.tokens.verify("uw_not-a-real-token"), undefined);
  store.close();
});

test("a route owned by one app cannot be claimed by another tenant's app, and the loser keeps its old revision", () => {
  const store = new NodeStore({ dataDir: tempDir() });
  const a = seed(store, "a", "site", [{ host: "example.test", path: "/" }]);
  const b = seed(store, "b", "site", [{ host: "other.test", path: "/" }]);
  assert.throws(() => store.apps.upsert(b.tenant.id, "site", b.digest, config([{ host: "example.test", path: "/" }])), RouteConflict);
  assert.equal(store.apps.get(b.app.id)?.revision, 1);
  assert.deepEqual(store.apps.get(b.app.id)?.config.routes, [{ host: "other.test", path: "/" }]);
  assert.equal(store.apps.routes().find((r) => r.host === "example.test")?.appId, a.app.id);
  store.close();
});

test("updating an app bumps its revision and replaces its routes", () => {
  const store = new NodeStore({ dataDir: tempDir() });
  const { tenant, digest } = seed(store, "a", "site", [{ host: "*", path: "/old" }]);
  const next = store.apps.upsert(tenant.id, "site", digest, config([{ host: "*", path: "/new" }]));
  assert.equal(next.revision, 2);
  assert.deepEqual(store.apps.routes().map((r) => r.pathPrefix), ["/new"]);
  store.close();
});

test("deleting a tenant removes its tokens, images, apps, routes and logs", () => {
  const store = new NodeStore({ dataDir: tempDir() });
  const { tenant, app } = seed(store, "gone", "x", [{ host: "*", path: "/x" }]);
  store.tokens.create("tenant", tenant.id, "t");
  store.logs.append(app.id, "stdout", "hi");
  store.logs.flush();
  assert.ok(store.tenants.delete(tenant.id));
  for (const t of ["tokens", "images", "apps", "routes", "logs"]) {
    assert.equal((store.db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n, 0, t);
  }
  store.close();
});

test("logs keep only the newest maxLinesPerApp lines of each app", () => {
  const store = new NodeStore({ dataDir: tempDir(), logs: { maxLinesPerApp: 5 } });
  const { app } = seed(store, "a", "x");
  for (let i = 0; i < 12; i++) store.logs.append(app.id, "stdout", `line ${i}`);
  store.logs.flush();
  assert.deepEqual(store.logs.read(app.id).map((l) => l.line), ["line 7", "line 8", "line 9", "line 10", "line 11"]);
  assert.deepEqual(store.logs.read(app.id, { tail: 2 }).map((l) => l.line), ["line 10", "line 11"]);
  store.close();
});

test("log followers receive flushed lines with their sequence numbers", () => {
  const store = new NodeStore({ dataDir: tempDir() });
  const { app } = seed(store, "a", "x");
  const seen: string[] = [];
  const off = store.logs.subscribe((entries) => seen.push(...entries.map((e) => `${e.seq}:${e.line}`)));
  store.logs.append(app.id, "event", "deployed");
  store.logs.flush();
  off();
  store.logs.append(app.id, "event", "after");
  store.logs.flush();
  assert.equal(seen.length, 1);
  assert.match(seen[0]!, /^\d+:deployed$/);
  store.close();
});

test("usage accumulates per tenant and day across flushes", () => {
  const store = new NodeStore({ dataDir: tempDir() });
  const { tenant } = seed(store, "a", "x");
  store.usage.add(tenant.id, { requests: 2, cpuMs: 1.5 });
  store.usage.flush();
  store.usage.add(tenant.id, { requests: 3, errors: 1 });
  const [day] = store.usage.list(tenant.id);
  assert.equal(day?.requests, 5);
  assert.equal(day?.errors, 1);
  assert.equal(day?.cpuMs, 1.5);
  store.close();
});

test("a blob edited on disk is refused on read", () => {
  const dir = tempDir();
  const store = new NodeStore({ dataDir: dir });
  const digest = store.blobs.put(new Uint8Array([1, 2, 3]));
  assert.equal(digest, sha256Digest(new Uint8Array([1, 2, 3])));
  writeFileSync(join(dir, "blobs", "sha256", digest.slice(7)), "evil");
  assert.throws(() => store.blobs.get(digest), /corrupt on disk/);
  store.close();
});

test("a host has at most one verified owner; pending claims of several tenants coexist, and a tenant's delete cascades to its claims", () => {
  const dir = tempDir();
  const store = new NodeStore({ dataDir: dir });
  const a = store.tenants.create("a");
  const b = store.tenants.create("b");
  const claim = (tenantId: string, verifiedAt: number | null) => ({ host: "shop.example", tenantId, method: "dns" as const, token: "tok", createdAt: 1, verifiedAt });
  store.domains.put(claim(a.id, null));
  store.domains.put(claim(b.id, null));
  assert.equal(store.domains.owner("shop.example"), undefined);
  store.domains.put(claim(a.id, 5));
  assert.equal(store.domains.owner("shop.example")!.tenantId, a.id);
  assert.throws(() => store.domains.put(claim(b.id, 6)), (e: unknown) => e instanceof DomainTaken && e.host === "shop.example");
  assert.equal(store.domains.get("shop.example", b.id)!.verifiedAt, null, "the refused claim is unchanged");
  store.tenants.delete(a.id);
  assert.equal(store.domains.owner("shop.example"), undefined);
  store.domains.put(claim(b.id, 7));
  assert.equal(store.domains.owner("shop.example")!.tenantId, b.id);
  store.close();
  rmSync(dir, { recursive: true });
});

test("a blob that fails verification is moved to quarantine and reported until the same bytes are stored again", () => {
  const dir = tempDir();
  const store = new NodeStore({ dataDir: dir });
  const bytes = new TextEncoder().encode("module bytes");
  const digest = store.blobs.put(bytes);
  const path = join(dir, "blobs", "sha256", digest.slice(7));
  writeFileSync(path, "tampered");
  assert.throws(() => store.blobs.get(digest), (e: unknown) => e instanceof CorruptBlob && e.digest === digest && e.quarantinedTo === join(dir, "blobs", "quarantine", digest.slice(7)));
  assert.equal(store.blobs.has(digest), false, "never served under its digest again");
  assert.equal(store.blobs.get(digest), undefined);
  assert.deepEqual(store.blobs.quarantined().map((q) => q.digest), [digest]);
  assert.equal(readFileSync(store.blobs.quarantined()[0]!.path, "utf8"), "tampered", "kept for inspection");
  store.blobs.put(bytes);
  assert.deepEqual(store.blobs.quarantined(), [], "storing the bytes again heals it");
  assert.deepEqual(store.blobs.get(digest), bytes);
  store.close();
  rmSync(dir, { recursive: true });
});
