import { test } from "node:test";
import { resolveLimits } from "../../src/limits.js";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  NodeStore,
  SqliteControlState,
  applyCommand,
  RevisionConflict,
  RouteConflict,
  TenantExists,
  type AppConfig,
  type ControlChange,
  type ControlCommand,
} from "../../src/store/index.js";

const surface = { imports: [], exports: [], wasiCalls: [] };

function newStore(): NodeStore {
  return new NodeStore({ dataDir: mkdtempSync(join(tmpdir(), "uniwasm-state-")) });
}

function config(routes: AppConfig["routes"]): AppConfig {
  return {
    abi: "wagi",
    routes,
    env: {},
    args: [],
    limits: resolveLimits({ maxMemoryBytes: 16 * 1024 * 1024, timeoutMs: 1000, maxBodyBytes: 1024, stdoutBytes: 1024 }),
    scale: { minInstances: 0, maxInstances: 2, idleTimeoutMs: 1000 },
  };
}

/** Every replicated table, as rows (what two nodes applying one log must agree on). */
function replicated(store: NodeStore): unknown {
  const q = (sql: string) => store.db.prepare(sql).all();
  return {
    tenants: q("SELECT * FROM tenants ORDER BY id"),
    tokens: q("SELECT id, tenant_id, scope, name, hash, prefix, created_at FROM tokens ORDER BY id"),
    images: q("SELECT * FROM images ORDER BY tenant_id, digest"),
    apps: q("SELECT * FROM apps ORDER BY id"),
    routes: q("SELECT * FROM routes ORDER BY host, path_prefix"),
  };
}

test("the same commands applied to two stores give the same rows, failed commands included", async () => {
  const a = newStore();
  const b = newStore();
  const log: ControlCommand[] = [];
  const state = new (class extends SqliteControlState {
    protected override async commit(cmd: ControlCommand) {
      log.push(structuredClone(cmd));
      return super.commit(cmd);
    }
  })(a);
  const t = await state.createTenant("acme", { requestsPerSecond: 5 });
  await state.createToken("tenant", t.id, "ci");
  await assert.rejects(state.createTenant("acme"), TenantExists);
  const digest = a.blobs.put(new TextEncoder().encode("module"));
  await state.putImage({ tenantId: t.id, digest, name: "img", size: 6, source: "upload", config: {}, info: surface, signedBy: null });
  const app = await state.putApp(t.id, "site", digest, config([{ host: "*", path: "/a" }]), 0);
  await state.putApp(t.id, "site", digest, config([{ host: "*", path: "/b" }]), 1);
  await assert.rejects(state.putApp(t.id, "site", digest, config([{ host: "*", path: "/c" }]), 1), RevisionConflict);
  await assert.rejects(state.putApp(t.id, "other", digest, config([{ host: "*", path: "/b" }]), 0), RouteConflict);
  await state.updateTenant(t.id, { weight: 3 });
  assert.ok(log.length >= 8);

  for (const cmd of log) {
    try {
      applyCommand(b, cmd);
    } catch {
      // refused the same way as on a; the row check below is what matters
    }
  }
  assert.deepEqual(replicated(b), replicated(a));
  assert.equal(b.apps.get(app.id)?.revision, 2);
  assert.deepEqual(b.apps.routes(), [{ host: "*", pathPrefix: "/b", appId: app.id }]);
  a.close();
  b.close();
});

test("a write based on a stale revision is refused and changes nothing", async () => {
  const store = newStore();
  const state = new SqliteControlState(store);
  const t = await state.createTenant("acme");
  const digest = store.blobs.put(new TextEncoder().encode("m"));
  await state.putImage({ tenantId: t.id, digest, name: "img", size: 1, source: "upload", config: {}, info: surface, signedBy: null });
  await state.putApp(t.id, "site", digest, config([{ host: "*", path: "/v1" }]), 0);
  const err = await state.putApp(t.id, "site", digest, config([{ host: "*", path: "/v2" }]), 0).catch((e: unknown) => e);
  assert.ok(err instanceof RevisionConflict);
  assert.match((err as Error).message, /created by someone else meanwhile \(revision 1\)/);
  assert.deepEqual(store.apps.routes().map((r) => r.pathPrefix), ["/v1"]);
  store.close();
});

test("the bootstrap admin token is created once, however many times it is asked for", async () => {
  const store = newStore();
  const state = new SqliteControlState(store);
  const first = await state.createBootstrapToken();
  assert.ok(first?.secret.startsWith("uw_"));
  assert.equal(await state.createBootstrapToken(), undefined);
  assert.equal(store.tokens.countAdmin(), 1);
  assert.equal(store.tokens.verify(first!.secret)?.scope, "admin");
  store.close();
});

test("change listeners see each applied change with its record, and not refused ones", async () => {
  const store = newStore();
  const state = new SqliteControlState(store);
  const seen: ControlChange[] = [];
  const off = state.onChange((c) => seen.push(c));
  const t = await state.createTenant("acme");
  await assert.rejects(state.createTenant("acme"), TenantExists);
  await state.deleteTenant(t.id);
  off();
  await state.createTenant("after");
  assert.deepEqual(
    seen.map((c) => [c.command.op, c.remote, c.deleted ?? null]),
    [
      ["tenant.create", false, null],
      ["tenant.delete", false, true],
    ],
  );
  assert.equal((seen[0]!.record as { name: string }).name, "acme");
  store.close();
});
