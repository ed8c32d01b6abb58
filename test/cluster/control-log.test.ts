import { test, before, after } from "node:test";
import { resolveLimits } from "../../src/limits.js";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { Objm } from "@nats-io/obj";
import { NodeStore, SqliteControlState, TenantExists, RevisionConflict, RouteConflict, sha256Digest, type AppConfig, type ControlChange } from "../../src/store/index.js";
import { JetStreamControlState, ForeignState, BLOB_BUCKET } from "../../src/cluster/control-log.js";
import { connectCluster, ClusterConfigError, parseServers } from "../../src/cluster/connection.js";
import { startNats, SKIP_NO_NATS, type NatsHandle } from "./nats.js";

const surface = { imports: [], exports: [], wasiCalls: [] };
const config = (path: string): AppConfig => ({
  abi: "wagi",
  routes: [{ host: "*", path }],
  env: {},
  args: [],
  limits: resolveLimits({ maxMemoryBytes: 16 * 1024 * 1024, timeoutMs: 1000, maxBodyBytes: 1024, stdoutBytes: 1024 }),
  scale: { minInstances: 0, maxInstances: 2, idleTimeoutMs: 1000 },
});

let nats: NatsHandle;
const open: { close(): unknown }[] = [];

before(async () => {
  if (!SKIP_NO_NATS) nats = await startNats();
});
after(async () => {
  for (const o of open.reverse()) await o.close();
  await nats?.stop();
});

async function member(dataDir = mkdtempSync(join(tmpdir(), "uniwasm-member-"))) {
  const nc = await connectCluster({ servers: [nats.url], credentials: { user: nats.user, password: nats.password }, name: "test" });
  const store = new NodeStore({ dataDir });
  const state = await JetStreamControlState.open(store, nc).catch(async (err: unknown) => {
    await nc.close();
    store.close();
    throw err;
  });
  const m = {
    dataDir,
    nc,
    store,
    state,
    close: async () => {
      await state.close();
      await nc.close();
      store.close();
    },
  };
  open.push(m);
  return m;
}

/** Resolves when `state` has applied a change matching `pred`. */
function changeOn(state: JetStreamControlState, pred: (c: ControlChange) => boolean): Promise<ControlChange> {
  return new Promise((resolve) => {
    const off = state.onChange((c) => {
      if (pred(c)) {
        off();
        resolve(c);
      }
    });
  });
}

test("a change made through one node's control state is applied on every node, blobs included", { skip: SKIP_NO_NATS }, async () => {
  const a = await member();
  const b = await member();
  const seenOnB = changeOn(b.state, (c) => c.command.op === "app.put");
  const t = await a.state.createTenant("acme", { requestsPerSecond: 7 });
  const { secret } = await a.state.createToken("tenant", t.id, "ci");
  const bytes = new TextEncoder().encode("(module) of acme");
  const digest = a.store.blobs.put(bytes);
  await a.state.shareBlobs([digest]);
  await a.state.putImage({ tenantId: t.id, digest, name: "img", size: bytes.length, source: "upload", config: {}, info: surface, signedBy: null });
  const app = await a.state.putApp(t.id, "site", digest, config("/site"), 0);
  const change = await seenOnB;
  assert.equal(change.remote, true);
  assert.equal(b.store.tenants.find("acme")?.quotas.requestsPerSecond, 7);
  assert.equal(b.store.tokens.verify(secret)?.tenantId, t.id, "a token made on node a authenticates on node b");
  assert.deepEqual(b.store.apps.get(app.id), app);
  assert.deepEqual(b.store.apps.routes(), a.store.apps.routes());
  assert.equal(b.store.blobs.has(digest), false);
  await b.state.ensureBlobs([digest]);
  assert.deepEqual(b.store.blobs.get(digest), bytes);
  assert.equal(b.state.appliedSeq, a.state.appliedSeq);
});

test("two nodes taking the same tenant name or the same new app at once: exactly one wins, both agree", { skip: SKIP_NO_NATS }, async () => {
  const a = await member();
  const b = await member();
  const names = await Promise.allSettled([a.state.createTenant("race"), b.state.createTenant("race")]);
  assert.deepEqual(names.map((r) => r.status).sort(), ["fulfilled", "rejected"]);
  assert.ok((names.find((r) => r.status === "rejected") as PromiseRejectedResult).reason instanceof TenantExists);

  const t = a.store.tenants.find("race")!;
  const digest = a.store.blobs.put(new TextEncoder().encode("m"));
  await a.state.putImage({ tenantId: t.id, digest, name: "img", size: 1, source: "upload", config: {}, info: surface, signedBy: null });
  await waitFor(() => b.store.images.get(t.id, digest) !== undefined);
  const deploys = await Promise.allSettled([a.state.putApp(t.id, "app", digest, config("/one"), 0), b.state.putApp(t.id, "app", digest, config("/two"), 0)]);
  assert.deepEqual(deploys.map((r) => r.status).sort(), ["fulfilled", "rejected"]);
  assert.ok((deploys.find((r) => r.status === "rejected") as PromiseRejectedResult).reason instanceof RevisionConflict);
  await waitFor(() => a.state.appliedSeq === b.state.appliedSeq);
  assert.deepEqual(a.store.apps.list(t.id), b.store.apps.list(t.id));
  assert.equal(a.store.apps.findByName(t.id, "app")?.revision, 1);
});

test("a refused change (route taken) is reported to the writer and never reaches the log", { skip: SKIP_NO_NATS }, async () => {
  const a = await member();
  const t = await a.state.createTenant("routes");
  const digest = a.store.blobs.put(new TextEncoder().encode("r"));
  await a.state.putImage({ tenantId: t.id, digest, name: "img", size: 1, source: "upload", config: {}, info: surface, signedBy: null });
  await a.state.putApp(t.id, "first", digest, config("/taken"), 0);
  const before = a.state.appliedSeq;
  await assert.rejects(a.state.putApp(t.id, "second", digest, config("/taken"), 0), RouteConflict);
  assert.equal(a.state.appliedSeq, before);
});

test("a node that was away catches up from the log when it comes back", { skip: SKIP_NO_NATS }, async () => {
  const a = await member();
  const b = await member();
  const dir = b.dataDir;
  await b.close();
  open.splice(open.indexOf(b), 1);
  await a.state.createTenant("while-away");
  const back = await member(dir);
  assert.ok(back.store.tenants.find("while-away"), "applied before open() returned");
  assert.equal(back.state.appliedSeq, a.state.appliedSeq);
});

test("a data directory with state of its own is refused instead of mixing two histories", { skip: SKIP_NO_NATS }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "uniwasm-alone-"));
  const alone = new NodeStore({ dataDir: dir });
  await new SqliteControlState(alone).createTenant("local-only");
  alone.close();
  await assert.rejects(member(dir), (err: unknown) => err instanceof ForeignState && /fresh --data directory/.test((err as Error).message));
});

test("a blob whose bytes in the object store do not match its digest is refused on fetch", { skip: SKIP_NO_NATS }, async () => {
  const a = await member();
  const good = new TextEncoder().encode("the real module");
  const digest = sha256Digest(good);
  const os = await new Objm(a.nc as NatsConnection).open(BLOB_BUCKET);
  await os.putBlob({ name: digest }, new TextEncoder().encode("something else"));
  await assert.rejects(a.state.ensureBlobs([digest]), /is corrupt \(its bytes hash to sha256:/);
  assert.equal(a.store.blobs.has(digest), false);
});

test("a node without credentials is refused before it connects; wrong credentials are refused by the servers", { skip: SKIP_NO_NATS }, async () => {
  await assert.rejects(connectCluster({ servers: [nats.url], credentials: {}, name: "x" }), (e: unknown) => e instanceof ClusterConfigError && /without NATS credentials/.test((e as Error).message));
  await assert.rejects(connectCluster({ servers: [nats.url], credentials: { user: "uniwasm", password: "wrong" }, name: "x" }), (e: unknown) => e instanceof ClusterConfigError && /refused this node's credentials/.test((e as Error).message));
  const nc = await connectCluster({ servers: [nats.url], credentials: { nkeySeed: nats.nkeySeed }, name: "x" });
  await nc.close();
  assert.throws(() => parseServers("nats://u:p@127.0.0.1:4222"), /credentials in the URL/);
  assert.throws(() => parseServers("http://127.0.0.1:4222"), /must start with nats:\/\/ or tls:\/\//);
});

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

test("the blob sweep deletes blobs no image records once they are old enough, and keeps the rest", { skip: SKIP_NO_NATS }, async () => {
  const a = await member();
  const t = await a.state.createTenant("sweep");
  const kept = a.store.blobs.put(new TextEncoder().encode("recorded module"));
  const orphan = a.store.blobs.put(new TextEncoder().encode("an upload whose image was deleted"));
  await a.state.shareBlobs([kept, orphan]);
  await a.state.putImage({ tenantId: t.id, digest: kept, name: "img", size: 1, source: "upload", config: {}, info: surface, signedBy: null });
  assert.deepEqual(await a.state.sweepBlobs(60_000), [], "young blobs stay (an upload may be in progress)");
  const gone = await a.state.sweepBlobs(0);
  assert.ok(gone.includes(orphan) && !gone.includes(kept), `swept ${gone.join(", ")}`);
  const b = await member();
  await b.state.ensureBlobs([kept]);
  await assert.rejects(b.state.ensureBlobs([orphan]), /not in the cluster's object store/);
});

// Last in this file: every member that reads the stream from here on stops at the unknown command.
test("a command this node does not know (a newer writer) stops it applying the log instead of skipping it", { skip: SKIP_NO_NATS }, async () => {
  const a = await member();
  const b = await member();
  const seq = a.state.appliedSeq;
  const { jetstream } = await import("@nats-io/jetstream");
  await jetstream(a.nc).publish("uniwasm.control", JSON.stringify({ cid: "c_future", origin: "p_newer", cmd: { op: "quota.reserve", tenant: "x" } }));
  await waitFor(() => b.state.appliedSeq === seq, 2000);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(b.state.appliedSeq, seq, "the unknown command was not applied, nor skipped");
  const err = await b.state.createTenant("after-unknown").catch((e: unknown) => e as Error);
  assert.ok(err instanceof Error);
  assert.match(err.message, /stopped applying the cluster's control log/);
  assert.match(((err as Error).cause as Error).message, /unknown control command "quota\.reserve".*older than the one that wrote it/);
});
