/**
 * Three `uniwasm serve --cluster` processes on one nats-server: deploy
 * through one node, answer through the others, scale, lose a node under
 * load, get it back, and lose NATS for a few seconds. Run in order: each test
 * builds on the cluster the previous ones left.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { startNats, SKIP_NO_NATS, type NatsHandle } from "./nats.js";
import { startClusterNode, http, waitUntil, type ClusterNode } from "./helpers.js";

const FIX = join(process.cwd(), "test", "fixtures");
let nats: NatsHandle;
let nodes: ClusterNode[] = [];
let admin = "";
let token = "";

before(async () => {
  if (SKIP_NO_NATS) return;
  nats = await startNats();
  const n1 = await startClusterNode(nats, "n1", { zone: "a" });
  const [n2, n3] = await Promise.all([startClusterNode(nats, "n2", { zone: "b" }), startClusterNode(nats, "n3", { zone: "b" })]);
  nodes = [n1, n2, n3];
  assert.ok(n1.bootstrap, "the first node creates the cluster's admin token");
  assert.equal(n2.bootstrap, undefined, "later nodes do not make another one");
  admin = n1.bootstrap!;
  const t = await http(n1.apiUrl, "POST", "/v1/tenants", { token: admin, body: { name: "acme" } });
  assert.equal(t.status, 201, t.text);
  token = t.json.token.secret;
});

after(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  await nats?.stop();
});

const byName = (name: string) => nodes.find((n) => n.name === name)!;

async function upload(node: ClusterNode, name: string, fixture: string): Promise<void> {
  const r = await http(node.apiUrl, "POST", `/v1/tenants/acme/images?name=${name}`, { token, body: readFileSync(join(FIX, fixture)), headers: { "content-type": "application/wasm" } });
  assert.equal(r.status, 201, r.text);
}

async function app(node: ClusterNode, name: string) {
  return (await http(node.apiUrl, "GET", `/v1/tenants/acme/apps/${name}`, { token })).json;
}

function readyNodes(view: { replicas: { node: string; state: string; revision: number }[]; revision: number }): string[] {
  return view.replicas.filter((r) => r.state === "ready" && r.revision === view.revision).map((r) => r.node).sort();
}

test("an app deployed through node 1 answers through the gateways of nodes 2 and 3", { skip: SKIP_NO_NATS }, async () => {
  const [n1, n2, n3] = nodes as [ClusterNode, ClusterNode, ClusterNode];
  await upload(n1, "cgi", "wagi/handler.wasm");
  const d = await http(n1.apiUrl, "PUT", "/v1/tenants/acme/apps/cgi", { token, body: { image: "cgi", limits: { timeoutMs: 1000 } } });
  assert.equal(d.status, 201, d.text);
  assert.equal(d.json.status, "running");
  assert.equal(d.json.replicas.length, 1);
  const seen = await app(n3, "cgi");
  assert.equal(seen.revision, 1, "node 3's API knows the app");

  for (const n of [n1, n2, n3]) {
    const r = await http(n.gatewayUrl, "POST", "/echo?x=1", { host: "cgi.acme.localhost", body: "payload", headers: { "x-test": "kept", authorization: "Bearer secret", "content-type": "text/plain" } });
    assert.equal(r.status, 200, `${n.name}: ${r.text}`);
    assert.match(r.text, /method=POST\npath=\/echo\n/);
    assert.match(r.text, /query=x=1\n/);
    assert.match(r.text, /header=kept\nauth=\n/, "the guest never sees Authorization, forwarded or not");
    assert.match(r.text, /body=payload\n/);
    assert.equal(r.headers["x-echo"], "yes");
    assert.match(String(r.headers["x-request-id"]), /^[0-9a-f]+$/);
  }
});

test("a forwarded response streams past one NATS message, an oversized forwarded body is 413, and the deadline holds", { skip: SKIP_NO_NATS }, async () => {
  const view = await app(nodes[0]!, "cgi");
  const host = view.replicas[0].node;
  const away = nodes.find((n) => n.name !== host)!;
  const big = await http(away.gatewayUrl, "GET", "/big?3072", { host: "cgi.acme.localhost" });
  assert.equal(big.status, 200);
  assert.equal(big.text.length, 3072 * 1024, "3 MiB arrived whole through a node without a replica");

  const redirect = await http(away.gatewayUrl, "GET", "/redirect", { host: "cgi.acme.localhost" });
  assert.equal(redirect.status, 302, "a body-less forwarded answer keeps its status");
  assert.equal(redirect.headers["location"], "/hello");
  assert.equal(redirect.text, "");
  const missing = await http(away.gatewayUrl, "GET", "/status", { host: "cgi.acme.localhost" });
  assert.equal(missing.status, 404);
  assert.equal(missing.text, "not here\n");

  const body = "x".repeat(1024 * 1024 - 8 * 1024);
  const over = await http(away.gatewayUrl, "POST", "/echo", { host: "cgi.acme.localhost", body });
  assert.equal(over.status, 413);
  assert.equal(over.json.error.code, "payload_too_large");
  assert.match(over.json.error.message, /forwarded between the cluster's nodes/);
  assert.doesNotMatch(over.text, /uniwasm\.app|\$JS|nats/i, "no NATS subject or server detail reaches the client");
  const local = await http(byName(host).gatewayUrl, "POST", "/echo", { host: "cgi.acme.localhost", body });
  assert.equal(local.status, 200, "the same body is fine where the app runs");

  const started = Date.now();
  const spin = await http(away.gatewayUrl, "GET", "/spin", { host: "cgi.acme.localhost" });
  assert.equal(spin.status, 504);
  assert.equal(spin.json.error.code, "guest_timeout");
  assert.ok(Date.now() - started < 4000, `a 1 s deadline ended the forwarded request in ${Date.now() - started} ms`);
});

test("scaled to two replicas, the app runs on two nodes, in both zones", { skip: SKIP_NO_NATS }, async () => {
  const r = await http(nodes[1]!.apiUrl, "PUT", "/v1/tenants/acme/apps/cgi", { token, body: { image: "cgi", limits: { timeoutMs: 1000 }, replicas: 2 } });
  assert.equal(r.status, 200, r.text);
  const ready = await waitUntil("two ready replicas", async () => readyNodes(await app(nodes[2]!, "cgi")).length === 2, 30_000);
  const view = await app(nodes[2]!, "cgi");
  const on = readyNodes(view);
  assert.equal(new Set(on).size, 2);
  assert.ok(on.includes("n1"), `zone a (only n1) holds one of the two replicas: ${on.join(",")}`);
  const cluster = (await http(nodes[0]!.apiUrl, "GET", "/v1/cluster", { token: admin })).json;
  assert.deepEqual([...cluster.placements.find((p: { app: string }) => p.app === view.id).nodes].sort(), on);
  assert.equal(cluster.members.filter((m: { live: boolean }) => m.live).length, 3);
  const forbidden = await http(nodes[0]!.apiUrl, "GET", "/v1/cluster", { token });
  assert.equal(forbidden.status, 403, "a tenant token does not see the cluster");
  void ready;
});

test("kill -9 of a node running a replica under load: requests keep being answered, the replica is re-placed, and the node rejoins", { skip: SKIP_NO_NATS }, async (t) => {
  const view = await app(nodes[0]!, "cgi");
  const [victimName] = readyNodes(view).filter((n) => n !== "n1"); // keep the node holding the admin token's output alive for clarity
  const victim = byName(victimName!);
  const survivor = readyNodes(view).find((n) => n !== victimName)!;
  const spare = nodes.find((n) => n.name !== victimName && n.name !== survivor)!;
  const entry = spare; // the load enters where no replica runs yet: every request is forwarded until the re-placement

  const results: { at: number; end: number; ok: boolean; status: number }[] = [];
  let loading = true;
  const loop = async () => {
    while (loading) {
      const at = Date.now();
      try {
        const r = await http(entry.gatewayUrl, "GET", "/hello", { host: "cgi.acme.localhost", timeoutMs: 20_000 });
        results.push({ at, end: Date.now(), ok: r.status === 200, status: r.status });
      } catch {
        results.push({ at, end: Date.now(), ok: false, status: 0 });
      }
    }
  };
  const loops = Array.from({ length: 6 }, loop);
  await new Promise((r) => setTimeout(r, 1500));
  const killedAt = Date.now();
  await victim.kill();
  // Re-placed: the spare node runs the replica the victim had.
  const replaced = await waitUntil("the lost replica runs elsewhere", async () => readyNodes(await app(nodes[0]!.name === victimName ? nodes[1]! : nodes[0]!, "cgi")).includes(spare.name), 30_000, 50);
  await new Promise((r) => setTimeout(r, 1500));
  loading = false;
  await Promise.all(loops);

  const after = results.filter((r) => r.at >= killedAt);
  const failed = results.filter((r) => !r.ok);
  const lastFailure = failed.length > 0 ? Math.max(...failed.map((r) => r.at)) - killedAt : 0;
  const failuresOver = failed.length > 0 ? Math.max(...failed.map((r) => r.end)) - killedAt : 0;
  t.diagnostic(`${results.length} requests, ${failed.length} failed (${((100 * failed.length) / results.length).toFixed(2)}%), statuses of failures: ${[...new Set(failed.map((f) => f.status))].join(",") || "none"}`);
  t.diagnostic(`last failed request started ${lastFailure} ms after the kill, the last failure was answered ${failuresOver} ms after it; replica answering on ${spare.name} ${replaced} ms after the kill`);
  assert.ok(after.length > 20, "load ran through the switch");
  assert.ok(failed.length / results.length < 0.1, `at most 10% failed: ${failed.length}/${results.length}`);
  assert.ok(after.slice(-10).every((r) => r.ok), "requests after the switch all succeed");

  // Nothing deployed is lost: the app, its revision and its routes are all there.
  const still = await app(byName(survivor), "cgi");
  assert.equal(still.revision, view.revision);

  // The node comes back with its name and data, catches up with what changed while it was away, and is live again.
  const created = await http(byName(survivor).apiUrl, "POST", "/v1/tenants", { token: admin, body: { name: "while-away" } });
  assert.equal(created.status, 201, created.text);
  const back = await startClusterNode(nats, victimName!, { zone: "b", dataDir: victim.dataDir });
  nodes = nodes.map((n) => (n.name === victimName ? back : n));
  const tenants = (await http(back.apiUrl, "GET", "/v1/tenants", { token: admin })).json.tenants.map((x: { name: string }) => x.name);
  assert.ok(tenants.includes("while-away"), "the returning node applied what it missed before serving");
  await waitUntil("the returning node is live", async () => {
    const c = (await http(back.apiUrl, "GET", "/v1/cluster", { token: admin })).json;
    return c.members.filter((m: { live: boolean }) => m.live).length === 3;
  });
  const r = await http(back.gatewayUrl, "GET", "/hello", { host: "cgi.acme.localhost" });
  assert.equal(r.status, 200, "and its gateway answers for the app again");
});

test("with nats-server stopped for a few seconds, nodes keep serving what they run, refuse changes, and catch up when it returns", { skip: SKIP_NO_NATS }, async (t) => {
  const view = await app(nodes[0]!, "cgi");
  const hosts = readyNodes(view);
  const placementBefore = hosts.join(",");
  const hosting = byName(hosts[0]!);
  const notHosting = nodes.find((n) => !hosts.includes(n.name))!;

  await nats.stop();
  const downAt = Date.now();
  let served = 0;
  while (Date.now() - downAt < 4000) {
    const r = await http(hosting.gatewayUrl, "GET", "/hello", { host: "cgi.acme.localhost" });
    assert.equal(r.status, 200, "a node serves the replica it runs while NATS is down");
    served++;
    await new Promise((res) => setTimeout(res, 100));
  }
  const forwarded = await http(notHosting.gatewayUrl, "GET", "/hello", { host: "cgi.acme.localhost" });
  assert.equal(forwarded.status, 503);
  assert.equal(forwarded.json.error.code, "app_unavailable");
  assert.doesNotMatch(forwarded.text, /uniwasm\.app|nats/i);
  const write = await http(hosting.apiUrl, "POST", "/v1/tenants", { token: admin, body: { name: "during-outage" } });
  assert.equal(write.status, 503);
  assert.equal(write.json.error.code, "cluster_unavailable");
  assert.doesNotMatch(write.text, /\$JS|UNIWASM_CONTROL|uniwasm\.control/, "no stream or subject name reaches the client");
  const read = await http(notHosting.apiUrl, "GET", "/v1/tenants/acme/apps/cgi", { token });
  assert.equal(read.status, 200, "reads come from the node's own copy");
  t.diagnostic(`${served} requests served by ${hosting.name} during a ${Date.now() - downAt} ms NATS outage`);

  await nats.restart();
  const caughtUp = await waitUntil(
    "a change through one node reaches another after NATS returns",
    async () => {
      const w = await http(nodes[2]!.apiUrl, "POST", "/v1/tenants", { token: admin, body: { name: "after-outage" } });
      if (w.status !== 201 && w.json?.error?.code !== "tenant_exists") return false;
      const r = await http(nodes[0]!.apiUrl, "GET", "/v1/tenants/after-outage", { token: admin });
      return r.status === 200;
    },
    30_000,
    250,
  );
  t.diagnostic(`writes replicated again ${caughtUp} ms after nats-server restarted`);
  await waitUntil("forwarding works again", async () => (await http(notHosting.gatewayUrl, "GET", "/hello", { host: "cgi.acme.localhost" })).status === 200, 15_000, 200);
  await new Promise((r) => setTimeout(r, 5000)); // past deadAfter: a scheduler that wrongly took the outage for deaths would have moved replicas by now
  assert.equal(readyNodes(await app(nodes[0]!, "cgi")).join(","), placementBefore, "nobody lost its replicas to the outage");
});

test("a tenant's requests/s quota holds across the cluster, within the stated tolerance", { skip: SKIP_NO_NATS }, async (t) => {
  const rate = 20;
  const q = await http(nodes[0]!.apiUrl, "POST", "/v1/tenants", { token: admin, body: { name: "metered", quotas: { requestsPerSecond: rate } } });
  assert.equal(q.status, 201, q.text);
  const mtoken = q.json.token.secret;
  const up = await http(nodes[0]!.apiUrl, "POST", `/v1/tenants/metered/images?name=r`, { token: mtoken, body: readFileSync(join(FIX, "reactor/hello.wasm")), headers: { "content-type": "application/wasm" } });
  assert.equal(up.status, 201, up.text);
  const d = await http(nodes[0]!.apiUrl, "PUT", "/v1/tenants/metered/apps/r", { token: mtoken, body: { image: "r", abi: "reactor", replicas: "all" } });
  assert.ok(d.status === 201, d.text);
  await waitUntil("a replica on every node", async () => readyNodes((await http(nodes[0]!.apiUrl, "GET", "/v1/tenants/metered/apps/r", { token: mtoken })).json).length === 3);
  await new Promise((r) => setTimeout(r, 1500)); // buckets full again after the warm-up requests

  const seconds = 5;
  const until = Date.now() + seconds * 1000;
  let ok = 0;
  let limited = 0;
  await Promise.all(
    nodes.flatMap((n) =>
      Array.from({ length: 3 }, async () => {
        while (Date.now() < until) {
          const r = await http(n.gatewayUrl, "GET", "/", { host: "r.metered.localhost" });
          if (r.status === 200) ok++;
          else if (r.status === 429) limited++;
        }
      }),
    ),
  );
  // Tolerance: the rate over the window, plus each node's initial burst, plus one gossip interval of the others' admissions.
  const bound = rate * seconds + 3 * rate + Math.ceil(rate * 0.2 * 2);
  t.diagnostic(`${ok} admitted, ${limited} refused (429) over ${seconds} s at ${rate}/s across 3 nodes; bound ${bound}, per-node buckets alone would admit up to ${3 * (rate * seconds + rate)}`);
  assert.ok(limited > 0, "the load was over the quota");
  assert.ok(ok <= bound, `admitted ${ok} > ${bound}`);
  assert.ok(ok >= rate * seconds * 0.7, `admitted ${ok}: the quota is not starved`);
});

test("extensions across the cluster: kv data, variables and service calls are the same whichever node runs the app", { skip: SKIP_NO_NATS }, async () => {
  const [n1, n2, n3] = nodes as [ClusterNode, ClusterNode, ClusterNode];
  const t = await http(n1.apiUrl, "POST", "/v1/tenants", { token: admin, body: { name: "ext", quotas: { kvMaxTotalBytes: 4000 } } });
  assert.equal(t.status, 201, t.text);
  const et = t.json.token.secret as string;
  const q = (...ops: string[]) => "/?" + ops.map(encodeURIComponent).join("&");
  const put = async (app: string, fixture: string, body: Record<string, unknown>) => {
    const up = await http(n1.apiUrl, "POST", `/v1/tenants/ext/images?name=${app}`, { token: et, body: readFileSync(join(FIX, fixture)), headers: { "content-type": "application/wasm" } });
    assert.equal(up.status, 201, up.text);
    const d = await http(n2.apiUrl, "PUT", `/v1/tenants/ext/apps/${app}`, { token: et, body: { image: app, ...body } });
    assert.ok(d.status === 201, `${app}: ${d.status} ${d.text}`);
    return d.json;
  };
  const via = async (n: ClusterNode, app: string, path: string, body?: string) => {
    const r = await http(n.gatewayUrl, body === undefined ? "GET" : "POST", path, { host: `${app}.ext.localhost`, ...(body !== undefined ? { body } : {}) });
    assert.equal(r.status, 200, `${n.name} ${app}${path}: ${r.status} ${r.text}`);
    return r.text;
  };

  // kv: one app on every node, one store: what one node writes, the others read; increments stay atomic.
  await put("kv", "ext/kv.wasm", { replicas: "all", extensions: { grants: ["uniwasm:kv"], keyValueStores: ["team"] } });
  await waitUntil("kv on every node", async () => readyNodes((await http(n1.apiUrl, "GET", "/v1/tenants/ext/apps/kv", { token: et })).json).length === 3);
  assert.equal(await via(n1, "kv", q("set", "greeting", "from-n1", "set", "a1", "x", "set", "a2", "y", "set", "b1", "z")), "set greeting: 0\nset a1: 0\nset a2: 0\nset b1: 0\n");
  assert.equal(await via(n2, "kv", q("get", "greeting", "list", "a")), "get greeting = from-n1\nlist a: a1 a2\n");
  await Promise.all([n1, n2, n3].flatMap((n) => Array.from({ length: 4 }, () => via(n, "kv", q("incr", "hits", "1", "incr", "hits", "1")))));
  assert.equal(await via(n3, "kv", q("get", "hits", "cas", "greeting", "from-n1", "from-n3", "cas", "greeting", "from-n1", "again")), "get hits = 24\ncas greeting: 0\ncas greeting: 11\n");
  assert.equal(await via(n1, "kv", q("get", "greeting")), "get greeting = from-n3\n");
  assert.match(await via(n2, "kv", q("fill", "100", "500")), /^fill: \d+ written, errno 19\n$/, "the tenant's kv quota holds across nodes (EDQUOT)");
  // The app's own store goes with the app: deployed again, it starts empty, and the tenant's bytes are free again.
  assert.equal((await http(n3.apiUrl, "DELETE", "/v1/tenants/ext/apps/kv", { token: et })).status, 204);
  await put("kv", "ext/kv.wasm", { extensions: { grants: ["uniwasm:kv"] } });
  assert.equal(await via(n1, "kv", q("get", "greeting")), "get greeting: errno 44\n");
  await waitUntil("the deleted app's kv bytes are free again", async () => (await via(n1, "kv", q("set", "probe", "x".repeat(500)))) === "set probe: 0\n", 10_000, 200);
  assert.match(await via(n2, "kv", q("fill", "3", "500")), /^fill: 3 written, errno 0\n$/);

  // variables: set through one node's API, read by the guest wherever it runs.
  await put("config", "ext/variables.wasm", { extensions: { grants: ["uniwasm:variables"], variables: ["api_url"] } });
  assert.equal((await http(n3.apiUrl, "PUT", "/v1/tenants/ext/apps/config/variables/api_url", { token: et, body: { value: "https://api.example.com" } })).status, 200);
  for (const n of [n1, n2, n3]) assert.equal(await via(n, "config", q("api_url")), "api_url = https://api.example.com\n");

  // service calls between apps on different nodes (each needs most of a node's budget), cycles still refused.
  const svc = (allowed: string[]) => ({ limits: { maxMemoryBytes: "700MiB" }, extensions: { grants: ["uniwasm:service"], allowedServices: allowed } });
  const front = await put("front", "ext/service.wasm", svc(["back"]));
  const back = await put("back", "ext/service.wasm", svc(["front"]));
  assert.notEqual(front.replicas[0].node, back.replicas[0].node, "front and back run on different nodes");
  assert.equal(await via(n1, "front", "/", "call back hi there"), "status 200: echo from ? for front: hi there");
  assert.equal(await via(n2, "front", "/", "call back call front hi"), "status 200: errno 32\n", "a cycle across nodes is refused (ELOOP)");
});

test("an app's logs are read and followed through any node, each line naming the node that wrote it", { skip: SKIP_NO_NATS }, async () => {
  const view = await app(nodes[0]!, "cgi");
  const hosts = readyNodes(view);
  const away = nodes.find((n) => !hosts.includes(n.name))!;
  // Follow through a node that does not run the app, then make a replica write a line.
  const url = new URL(away.apiUrl);
  const followed = new Promise<string>((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path: "/v1/tenants/acme/apps/cgi/logs?tail=0&follow=true", headers: { authorization: `Bearer ${token}` } }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => {
        text += c.toString();
        if (text.includes("a line for the log")) {
          req.destroy();
          resolve(text);
        }
      });
    });
    req.on("error", (e) => (e.message.includes("socket hang up") ? undefined : reject(e)));
    req.end();
  });
  await new Promise((r) => setTimeout(r, 300));
  const r = await http(byName(hosts[0]!).gatewayUrl, "POST", "/stderr", { host: "cgi.acme.localhost", body: "x" });
  assert.equal(r.status, 200);
  const stream = await Promise.race([followed, new Promise<string>((_, rej) => setTimeout(() => rej(new Error("no followed line within 10 s")), 10_000))]);
  assert.match(stream, new RegExp(`"node":"${hosts[0]}"`));
  const read = await waitUntil(
    "the line is read through the other node",
    async () => (await http(away.apiUrl, "GET", "/v1/tenants/acme/apps/cgi/logs?tail=50", { token })).json.logs.some((l: { line: string }) => l.line === "a line for the log"),
    10_000,
  );
  void read;
  const logs = (await http(away.apiUrl, "GET", "/v1/tenants/acme/apps/cgi/logs?tail=500", { token })).json.logs as { node: string; ts: number }[];
  assert.ok(logs.every((l) => typeof l.node === "string"), "every line names its node");
  assert.ok(new Set(logs.map((l) => l.node)).size >= 2, "lines from more than one node");
  assert.deepEqual(logs.map((l) => l.ts), [...logs.map((l) => l.ts)].sort((x, y) => x - y), "merged in time order");
});

test("a tenant's CPU time per minute is counted across the cluster: spent on one node, refused on another", { skip: SKIP_NO_NATS }, async () => {
  const [n1, n2] = nodes as [ClusterNode, ClusterNode];
  const q = await http(n1.apiUrl, "POST", "/v1/tenants", { token: admin, body: { name: "cpuq", quotas: { cpuMsPerMinute: 300 } } });
  assert.equal(q.status, 201, q.text);
  const ct = q.json.token.secret as string;
  const up = await http(n1.apiUrl, "POST", "/v1/tenants/cpuq/images?name=burn", { token: ct, body: readFileSync(join(FIX, "wagi/handler.wasm")), headers: { "content-type": "application/wasm" } });
  assert.equal(up.status, 201, up.text);
  const d = await http(n1.apiUrl, "PUT", "/v1/tenants/cpuq/apps/burn", { token: ct, body: { image: "burn", replicas: "all" } });
  assert.equal(d.status, 201, d.text);
  await waitUntil("a replica on every node", async () => readyNodes((await http(n1.apiUrl, "GET", "/v1/tenants/cpuq/apps/burn", { token: ct })).json).length === 3);
  let spent = 0;
  for (;;) {
    const r = await http(n1.gatewayUrl, "GET", "/cpu?20", { host: "burn.cpuq.localhost" });
    if (r.status === 429) {
      assert.equal(r.json.error.code, "tenant_cpu_exhausted");
      break;
    }
    assert.equal(r.status, 200, r.text);
    assert.ok(++spent < 200, "node 1 never ran out of the tenant's CPU time");
  }
  await new Promise((r) => setTimeout(r, 600)); // a few gossip rounds
  const elsewhere = await http(n2.gatewayUrl, "GET", "/cpu?20", { host: "burn.cpuq.localhost" });
  assert.equal(elsewhere.status, 429, "node 2 knows the minute's CPU time is spent");
  assert.equal(elsewhere.json.error.code, "tenant_cpu_exhausted");
});
