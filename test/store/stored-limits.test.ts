/** Limits through the store: the one vocabulary round-trips, and records from before it read back as they ran. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveLimits } from "../../src/limits.js";
import { NodeStore, type AppConfig } from "../../src/store/index.js";

const surface = { imports: [], exports: [], wasiCalls: [] };
const MiB = 1024 * 1024;

function storeWithTenant(): { store: NodeStore; tenantId: string; digest: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), "uniwasm-limits-"));
  const store = new NodeStore({ dataDir: dir });
  const tenantId = store.tenants.create("acme").id;
  const digest = store.blobs.put(new TextEncoder().encode("a module"));
  return { store, tenantId, digest, dir };
}

test("an app's limits round-trip through the store: every field, unlimited deadlines and unmetered fuel included", () => {
  const { store, tenantId, digest, dir } = storeWithTenant();
  const limits = resolveLimits({ maxMemoryBytes: 32 * MiB, fuel: null, timeoutMs: Infinity, stdoutBytes: 4096, stderrBytes: 0, openFiles: 9, maxBodyBytes: 10, memDirBytes: MiB, maxTableElements: 5000, stackSizeMb: 2 });
  const metered = resolveLimits({ fuel: 123_456_789 });
  const config: AppConfig = {
    abi: "service",
    routes: [],
    env: {},
    args: [],
    limits,
    scale: { minInstances: 1, maxInstances: 1, idleTimeoutMs: 1000 },
    settings: { limits: { timeoutMs: Infinity, stdoutBytes: 4096 } },
  };
  store.images.upsert({ tenantId, digest, name: "img", size: 8, source: "upload", config: { limits: { maxMemoryBytes: 32 * MiB, stderrBytes: 0, openFiles: 9 } }, info: surface, signedBy: null });
  const app = store.apps.upsert(tenantId, "svc", digest, config);
  const other = store.apps.upsert(tenantId, "metered", digest, { ...config, abi: "wagi", limits: metered, settings: {} });
  store.close();
  // Read back by a new store on the same database, as after a restart.
  const again = new NodeStore({ dataDir: dir });
  try {
    assert.deepEqual(again.apps.get(app.id)!.config.limits, limits);
    assert.equal(again.apps.get(app.id)!.config.limits.timeoutMs, Infinity);
    assert.deepEqual(again.apps.get(app.id)!.config.settings!.limits, { timeoutMs: Infinity, stdoutBytes: 4096 });
    assert.deepEqual(again.apps.get(other.id)!.config.limits, metered);
    assert.deepEqual(again.images.get(tenantId, digest)!.config.limits, { maxMemoryBytes: 32 * MiB, stderrBytes: 0, openFiles: 9 });
  } finally {
    again.close();
  }
});

test("an app stored before the one vocabulary (memoryMiB, maxResponseBytes, 0 for none) reads back with the limits it ran with", () => {
  const { store, tenantId, digest, dir } = storeWithTenant();
  const db = store.db;
  const old = (abi: string, limits: Record<string, number>, settings: Record<string, number>) =>
    JSON.stringify({ abi, routes: [], env: {}, args: [], limits, scale: { minInstances: 0, maxInstances: 1, idleTimeoutMs: 1000 }, settings: { limits: settings } });
  db.prepare("INSERT INTO images (tenant_id, digest, name, size, source, config, info, signed_by, created_at) VALUES (?, ?, 'old', 8, 'upload', ?, ?, NULL, 0)").run(
    tenantId,
    digest,
    JSON.stringify({ limits: { memoryMiB: 4, fuel: 5, timeoutMs: 100 } }),
    JSON.stringify(surface),
  );
  const insert = db.prepare("INSERT INTO apps (id, tenant_id, name, image_digest, config, revision, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 1, 0, 0)");
  insert.run("a_web", tenantId, "web", digest, old("wagi", { memoryMiB: 16, fuel: 0, timeoutMs: 5000, maxBodyBytes: 1024, maxResponseBytes: MiB }, { memoryMiB: 16, maxResponseBytes: MiB }));
  insert.run("a_svc", tenantId, "svc", digest, old("service", { memoryMiB: 8, fuel: 1000, timeoutMs: 0, maxBodyBytes: 1024, maxResponseBytes: MiB }, { timeoutMs: 0 }));
  store.close();
  const again = new NodeStore({ dataDir: dir });
  try {
    const web = again.apps.get("a_web")!.config;
    assert.deepEqual(web.limits, { ...resolveLimits(), maxMemoryBytes: 16 * MiB, fuel: null, timeoutMs: 5000, maxBodyBytes: 1024, stdoutBytes: MiB, stderrBytes: MiB });
    assert.deepEqual(web.settings!.limits, { maxMemoryBytes: 16 * MiB, stdoutBytes: MiB });
    const svc = again.apps.get("a_svc")!.config;
    // A service's output went to its log, 64 MiB per run, whatever maxResponseBytes said; 0 was "no deadline".
    assert.deepEqual(svc.limits, { ...resolveLimits(), maxMemoryBytes: 8 * MiB, fuel: 1000, timeoutMs: Infinity, maxBodyBytes: 1024, stdoutBytes: 64 * MiB, stderrBytes: MiB });
    assert.deepEqual(svc.settings!.limits, { timeoutMs: Infinity });
    assert.deepEqual(again.images.get(tenantId, digest)!.config.limits, { maxMemoryBytes: 4 * MiB, fuel: 5, timeoutMs: 100 });
  } finally {
    again.close();
  }
});
