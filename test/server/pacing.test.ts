/**
 * On a node, a real guest's output flood (the SaaS example's hostile guest,
 * 16 MiB relayed from an executor) is paced to its tenant's share of the
 * serving thread while another tenant is active, and not while it is alone;
 * the response is whole either way, and the waits show in
 * uniwasm_paced_seconds_total.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { call, deploy, gw, tenant, testNode } from "./helpers.js";

type Node = Awaited<ReturnType<typeof testNode>>;
let node: Node;

before(async () => {
  // Inline placement off: this guest (no grants) would otherwise run on the serving thread itself.
  node = await testNode({ executors: 2, inlineFuel: 0 });
});

after(async () => {
  await node.close();
});

const paced = async (tenantName: string, resource: string): Promise<number> => {
  const m = await call(node.apiUrl, "GET", "/metrics", node.admin);
  return Number(new RegExp(`^uniwasm_paced_seconds_total\\{tenant="${tenantName}",resource="${resource}"\\} (\\S+)$`, "m").exec(m.text)?.[1] ?? 0);
};
const settle = () => new Promise((r) => setTimeout(r, 1300)); // activity lasts a second; waits are reported once a second

/** One flood: the body as far as the 16 MiB limit let it go, all of it the guest's 'A's. */
async function flood(): Promise<void> {
  const r = await gw(node, "flood", "plugin", "/output", { method: "POST" });
  assert.equal(r.status, 200);
  assert.ok(r.text.length >= 15 * 1024 * 1024, `${r.text.length} bytes of the flood arrived`);
  assert.ok(/^A+$/.test(r.text), "every byte as the guest wrote it");
}

test("an output flood is paced to its tenant's share of the serving thread while another tenant is active, never while it is alone", async () => {
  const f = await tenant(node, "flood");
  const up = await call(node.apiUrl, "POST", "/v1/tenants/flood/images?name=plugin", f.token, readFileSync("examples/multi-tenant-saas/mallory/hostile.wasm"), { "content-type": "application/wasm" });
  assert.equal(up.status, 201, up.text);
  const d = await call(node.apiUrl, "PUT", "/v1/tenants/flood/apps/plugin", f.token, { image: up.json.digest, limits: { timeoutMs: 10_000, stdoutBytes: 16 * 1024 * 1024 } });
  assert.ok(d.status === 200 || d.status === 201, d.text);
  await settle();

  await flood();
  await settle();
  await settle(); // two reports' time: a wait would show by now
  assert.equal(await paced("flood", "serving_thread"), 0, "alone, nothing to wait for");

  // other weighs 100 to flood's 1: flood's part of the thread's bulk work is then 1/101 of half of it, so
  // relaying 16 MiB (~20 ms of the thread) would have to take seconds not to go past it, loaded machine or not.
  const created = await call(node.apiUrl, "POST", "/v1/tenants", node.admin, { name: "other", weight: 100 });
  assert.equal(created.status, 201, created.text);
  const o = { name: "other", token: created.json.token.secret as string };
  const h = await deploy(node, o, "hello", "wagi/hello.wasm");
  assert.ok(h.status === 200 || h.status === 201, h.text);
  // other keeps asking while the flood runs (a tenant counts as active for a second after its last request).
  let asking = true;
  let answered = 0;
  const others = (async () => {
    while (asking) if ((await gw(node, "other", "hello", "/")).status === 200) answered++;
  })();
  while (answered === 0) await new Promise((r) => setTimeout(r, 10));
  await flood();
  asking = false;
  await others;
  // Reported by the manager once a second.
  let waited = 0;
  for (let i = 0; i < 40 && waited === 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    waited = await paced("flood", "serving_thread");
  }
  assert.ok(waited > 0, "with another tenant active, the relay of 16 MiB went past its share and its guest waited");
  // The tenant sees it in its usage (and the dashboard's tenants table).
  const usage = await call(node.apiUrl, "GET", "/v1/tenants/flood/usage", f.token);
  assert.ok(usage.json.live.pacedMsLastMinute > 0, `pacedMsLastMinute ${usage.json.live.pacedMsLastMinute}`);
  // (other may wait a little on a loaded machine, where a sink call preempted midway runs past a small burst)
  const otherWaited = await paced("other", "serving_thread");
  assert.ok(otherWaited < waited / 10, `other waited ${otherWaited} s, flood ${waited} s: the flood is what was paced`);
});
