/** A node reports each gateway request to `onRequest`: method, path, request id, status, and a trap's named frames (also in the app's log). */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { RequestFinished } from "../../src/server/gateway.js";
import { deploy, gw, tenant, testNode } from "./helpers.js";

test("onRequest sees every request with its method, path and id, and a trapping request with its backtrace", async () => {
  const seen: RequestFinished[] = [];
  const node = await testNode({ executors: 1, onRequest: (e) => seen.push(e) });
  try {
    const t = await tenant(node, "hooks");
    assert.equal((await deploy(node, t, "cgi", "wagi/handler.wasm")).status, 201);
    const ok = await gw(node, t.name, "cgi", "/hello?x=1");
    const bad = await gw(node, t.name, "cgi", "/crash", { method: "POST", body: "x" });
    assert.equal(ok.status, 200);
    assert.equal(bad.status, 502);
    assert.deepEqual(seen.map((e) => [e.method, e.path, e.status, e.requestId]), [
      ["GET", "/hello", 200, ok.headers["x-request-id"]],
      ["POST", "/crash", 502, bad.headers["x-request-id"]],
    ]);
    assert.equal(seen[0]!.failure, undefined);
    assert.match(seen[1]!.failure!.message, /^trap: /);
    assert.equal(seen[1]!.failure!.trap!.reason, "unreachable");
    const top = seen[1]!.failure!.trap!.frames[0]!;
    assert.doesNotMatch(top.name, /^func\[/, "named from the name section");
    assert.match(seen[1]!.failure!.trap!.backtrace, new RegExp(`0: ${top.name} \\(func\\[${top.funcIndex}\\] @ 0x[0-9a-f]+\\)`));
    // The app's log (what `uniwasm logs` and the dashboard read) has the trap and its backtrace, under the request's id.
    const app = node.store.apps.findByName(node.store.tenants.find(t.name)!.id, "cgi")!;
    const logged = node.store.logs.read(app.id).map((l) => l.line).filter((l) => l.includes(bad.headers["x-request-id"] as string));
    assert.equal(logged.length, 1, logged.join("\n---\n"));
    assert.match(logged[0]!, new RegExp(`^request \\S+: trap: [^\\n]+\\nwasm backtrace:\\n\\s*0: ${top.name} `));
  } finally {
    await node.close();
  }
});
