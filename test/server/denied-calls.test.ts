/**
 * Refused host calls are visible where an operator looks: the app view's
 * deniedCalls (the dashboard), `uniwasm ps` (DENIED), the metrics, and the
 * app's log — once per call, however often the guest retries.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { join } from "node:path";
import { call, deploy, gw, tempDataDir, tenant, testNode } from "./helpers.js";

const BIN = join(process.cwd(), "bin", "uniwasm.js");

test("a denied host call is counted per app, summed in ps's DENIED column, and logged once per call however often it is retried", async () => {
  const node = await testNode({ executors: 1 });
  try {
    const t = await tenant(node, "acme");
    // kv.wasm imports uniwasm:kv; deployed without the grant, every call answers ENOTCAPABLE.
    assert.equal((await deploy(node, t, "bare", "ext/kv.wasm")).status, 201);
    assert.equal((await deploy(node, t, "granted", "ext/kv.wasm", { extensions: { grants: ["uniwasm:kv"] } })).status, 201);
    for (let i = 0; i < 3; i++) assert.equal((await gw(node, t.name, "bare", "/?set&k&v&get&k")).text, "set k: 76\nget k: errno 76\n");
    assert.equal((await gw(node, t.name, "granted", "/?set&k&v")).text, "set k: 0\n");

    const view = await call(node.apiUrl, "GET", `/v1/tenants/${t.name}/apps/bare`, t.token);
    assert.deepEqual(view.json.deniedCalls, { "uniwasm:kv.set": 3, "uniwasm:kv.get": 3 });
    node.store.flush();
    const logs = await call(node.apiUrl, "GET", `/v1/tenants/${t.name}/apps/bare/logs?tail=100`, t.token);
    const denied = (logs.json.logs as { line: string }[]).map((l) => l.line).filter((l) => l.startsWith("denied host call"));
    assert.deepEqual(denied.sort(), [
      "denied host call uniwasm:kv.get: not granted to this app (further refusals counted in deniedCalls)",
      "denied host call uniwasm:kv.set: not granted to this app (further refusals counted in deniedCalls)",
    ]);

    // Asynchronously: the node answering it runs in this process.
    const ps = await promisify(execFile)(process.execPath, [BIN, "ps", "--node", node.apiUrl, "--token", t.token], { encoding: "utf8", env: { ...process.env, UNIWASM_CONFIG: join(tempDataDir(), "config.json") } });
    assert.match(ps.stdout, /^APP\s+TENANT\s+ABI\s+STATUS\s+REV\s+INSTANCES\s+PLACEMENT\s+TIER\s+DENIED\s+IMAGE/m);
    // PLACEMENT: the app with no grants runs on the serving thread; the one granted kv on executors.
    assert.match(ps.stdout, /^bare\s+acme\s+wagi\s+running\s+1\s+0\s+inline\s+isolate\s+6\s/m);
    assert.match(ps.stdout, /^granted\s+acme\s+wagi\s+running\s+1\s+0\s+executor\s+isolate\s+0\s/m);
  } finally {
    await node.close();
  }
});
