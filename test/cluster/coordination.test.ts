import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { connectCluster } from "../../src/cluster/connection.js";
import { openBucket } from "../../src/cluster/kv.js";
import { Election } from "../../src/cluster/election.js";
import { Membership, DuplicateNode, type MemberInfo } from "../../src/cluster/membership.js";
import { startNats, SKIP_NO_NATS, SKIP_NO_NATS_TLS, type NatsHandle } from "./nats.js";

let nats: NatsHandle;
let nc: NatsConnection;

before(async () => {
  if (SKIP_NO_NATS) return;
  nats = await startNats();
  nc = await connectCluster({ servers: [nats.url], credentials: { nkeySeed: nats.nkeySeed }, name: "coordination-test" });
});
after(async () => {
  await nc?.close();
  await nats?.stop();
});

async function waitFor(cond: () => boolean, ms: number): Promise<number> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - start;
}

test("one scheduler at a time: the lease passes on when its holder dies (expiry) or resigns (at once)", { skip: SKIP_NO_NATS }, async () => {
  const kv = await openBucket(nc, "test-leader", { replicas: 1, ttlMs: 1000 });
  const a = new Election(kv, { name: "a", instance: "1" }, { intervalMs: 100 });
  const b = new Election(kv, { name: "b", instance: "2" }, { intervalMs: 100 });
  a.start();
  await waitFor(() => a.isLeader, 2000);
  b.start();
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(b.isLeader, false, "b waits while a renews");
  a.stop(); // dies: no resign, the key expires
  const took = await waitFor(() => b.isLeader, 5000);
  assert.ok(took >= 300, `b took over only after the lease ran out (${took} ms)`);
  assert.deepEqual(await b.holder(), { name: "b", instance: "2" });
  const c = new Election(kv, { name: "c", instance: "3" }, { intervalMs: 100 });
  c.start();
  await b.resign();
  await waitFor(() => c.isLeader, 1000);
  await c.resign();
});

test("a node name held by a live node is refused; a dead holder's name can be taken", { skip: SKIP_NO_NATS }, async () => {
  const kv = await openBucket(nc, "test-nodes", { replicas: 1, ttlMs: 60_000 });
  const info = (instance: string): MemberInfo => ({ name: "n", zone: "z", instance, memoryMiB: 1, reservedMiB: 0, apiUrl: "", gatewayUrl: "", version: "t", startedAt: 0, at: Date.now() });
  const first = new Membership(kv, () => info("first"), { heartbeatMs: 100, deadAfterMs: 400 });
  await first.join();
  const second = new Membership(kv, () => info("second"), { heartbeatMs: 100, deadAfterMs: 400 });
  await assert.rejects(second.join(), (e: unknown) => e instanceof DuplicateNode && /in use by a running node/.test((e as Error).message));
  second.stop();
  first.stop(); // dies
  await new Promise((r) => setTimeout(r, 600));
  const third = new Membership(kv, () => info("third"), { heartbeatMs: 100, deadAfterMs: 400 });
  await third.join();
  await waitFor(() => third.live().some((m) => m.instance === "third"), 2000);
  await third.leave();
});

test("serve refuses to join a cluster without credentials, and cluster flags without --cluster, with exit code 2", () => {
  const bin = join(process.cwd(), "bin", "uniwasm.js");
  const env = { ...process.env, UNIWASM_NATS_USER: "", UNIWASM_NATS_PASSWORD: "", UNIWASM_NATS_NKEY_SEED: "" };
  const noCreds = spawnSync(process.execPath, [bin, "serve", "--data", join(process.cwd(), "dist", "no-such-node"), "--cluster", "nats://127.0.0.1:4222"], { encoding: "utf8", env });
  assert.equal(noCreds.status, 2, noCreds.stderr);
  assert.match(noCreds.stderr, /refusing to join the cluster without NATS credentials/);
  const stray = spawnSync(process.execPath, [bin, "serve", "--node-name", "n1"], { encoding: "utf8", env });
  assert.equal(stray.status, 2);
  assert.match(stray.stderr, /--node-name needs --cluster/);
  const inUrl = spawnSync(process.execPath, [bin, "serve", "--cluster", "nats://u:p@127.0.0.1:4222"], { encoding: "utf8", env });
  assert.equal(inUrl.status, 2);
  assert.match(inUrl.stderr, /credentials in the URL/);
});

test("with TLS on the servers, a node connects with their CA, and is refused without it", { skip: SKIP_NO_NATS_TLS }, async () => {
  const secure = await startNats({ tls: true });
  try {
    const creds = { user: secure.user, password: secure.password };
    const nc = await connectCluster({ servers: [secure.url], credentials: creds, tls: { caFile: secure.caFile! }, name: "tls-test" });
    assert.equal(nc.info?.tls_required, true, "the connection is TLS");
    await nc.close();
    await assert.rejects(connectCluster({ servers: [secure.url], credentials: creds, name: "tls-test", timeoutMs: 3000 }), /cannot reach the cluster's NATS servers|certificate|self.signed|TLS/i);
    await assert.rejects(connectCluster({ servers: [secure.url], credentials: creds, tls: { caFile: join(secure.dir, "nope.pem") }, name: "tls-test" }), /cannot read the NATS TLS CA/);
  } finally {
    await secure.stop();
  }
});
