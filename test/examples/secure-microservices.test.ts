/**
 * Scenario 1, secure microservices (examples/secure-microservices): four
 * services of a shop that call each other only along granted edges and keep
 * their state in KV, on a real node from images built from their
 * uniwasm.toml; then the cart is replaced by a hostile build that is refused
 * everywhere, and the refusals are visible through the API (the dashboard's
 * source), the metrics, the app's log and `uniwasm ps`.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { call, tenant, testNode } from "../server/helpers.js";
import { cli, hostRequest, ship } from "./helpers.js";

type Node = Awaited<ReturnType<typeof testNode>>;

describe("examples/secure-microservices", () => {
  let node: Node;
  let shop: { name: string; token: string };
  let rival: { name: string; token: string };
  const at = (path: string, body?: string) => hostRequest(node, "shop.localhost", path, body === undefined ? {} : { body });
  const ok = async (path: string, body?: string): Promise<string> => {
    const r = await at(path, body);
    assert.equal(r.status, 200, `${path}: ${r.status} ${r.text}`);
    return r.text;
  };
  const vault = async () => (await hostRequest(node, "vault.rival.localhost", "/")).text;

  before(async () => {
    node = await testNode({ executors: 2 });
    shop = await tenant(node, "shop");
    rival = await tenant(node, "rival");
    for (const svc of ["catalogue", "cart", "pricing", "checkout"]) await ship(node, shop, `secure-microservices/${svc}`, svc);
    await ship(node, rival, "secure-microservices/vault", "vault");
    const secret = await call(node.apiUrl, "PUT", "/v1/tenants/shop/apps/checkout/variables/payment_key", shop.token, { value: "sk_test_secret", secret: true });
    assert.equal(secret.status, 200, secret.text);
    assert.equal((await hostRequest(node, "vault.rival.localhost", "/", { body: "put master-key rival-0001" })).status, 200);
  });
  after(() => node.close());

  test("the images carry their grants: each service is granted exactly its edges, stores and variables", async () => {
    const apps = (await call(node.apiUrl, "GET", "/v1/tenants/shop/apps", shop.token)).json.apps as { name: string; config: { extensions: Record<string, string[]> } }[];
    const grants = Object.fromEntries(apps.map((a) => [a.name, a.config.extensions]));
    assert.deepEqual(grants["cart"]!.allowedServices, ["catalogue"]);
    assert.deepEqual(grants["pricing"]!.allowedServices, ["catalogue"]);
    assert.deepEqual(grants["checkout"]!.allowedServices, ["cart", "pricing"]);
    assert.deepEqual(grants["catalogue"]!.allowedServices, []);
    assert.deepEqual(grants["checkout"]!.keyValueStores, ["inventory"]);
    assert.deepEqual(grants["catalogue"]!.keyValueStores, ["inventory"]);
    assert.deepEqual(grants["cart"]!.keyValueStores, []);
    assert.deepEqual(grants["checkout"]!.variables, ["payment_key"]);
  });

  test("a customer shops along the granted edges: cart checks the catalogue, checkout uses cart, pricing and the shared inventory", async () => {
    assert.match(await ok("/catalogue"), /^tea +4\.50 +stock +20 +Green tea/m);
    assert.equal(await ok("/cart/alice", "add tea 3"), "tea 3\n");
    assert.equal(await ok("/cart/alice", "add mug 1"), "mug 1\ntea 3\n");
    assert.equal((await at("/cart/alice", "add unicorn 1")).status, 404, "the catalogue does not know it");
    const order = await ok("/checkout/alice", "");
    // mug 12.00 + 3 tea at 4.50 with 10% off = 24.15; the payment reference is a digest, never the secret.
    assert.match(order, /^order 1 for alice\nmug 1 1200 1200\ntea 3 450 1215\ntotal 2415\nquote 1\npayment PAY-[0-9a-f]{16}\n$/);
    assert.doesNotMatch(order, /sk_test_secret/);
    assert.equal(await ok("/cart/alice"), "", "checkout emptied the cart");
    assert.match(await ok("/catalogue"), /^tea +4\.50 +stock +17 /m);
    assert.match(await ok("/catalogue"), /^mug +12\.00 +stock +5 /m);
    assert.equal(await ok("/checkout"), "order:0001: alice paid 24.15\n");
  });

  test("an order beyond the stock is refused with 409 and every line's stock is given back", async () => {
    await ok("/cart/bob", "add cake 1");
    await ok("/cart/bob", "add pot 3");
    const r = await at("/checkout/bob", "");
    assert.equal(r.status, 409, r.text);
    assert.equal(r.text, "out of stock: pot\n");
    assert.match(await ok("/catalogue"), /^pot +35\.00 +stock +2 /m);
    assert.match(await ok("/catalogue"), /^cake +3\.00 +stock +12 /m);
  });

  test("the hostile cart, deployed in the cart's place with its grants, is refused at every door but the granted edge", async () => {
    const denyBefore = (await call(node.apiUrl, "GET", "/v1/tenants/shop/apps/cart", shop.token)).json.deniedCalls;
    assert.deepEqual(denyBefore, {});
    await ship(node, shop, "secure-microservices/cart-hostile", "cart");
    const report = await ok("/cart/mallory", "add tea 1");
    const lines = report.trim().split("\n");
    assert.equal(lines.at(-1), "26 attempts: 25 refused, 1 allowed", report);
    const allowed = lines.filter((l) => / allowed( |$)/.test(l) && !l.startsWith("26 attempts"));
    assert.deepEqual(allowed, ["service call catalogue                       allowed (status 200: tea|Green tea, 100 g|450|17)"]);
    for (const [what, errno] of [
      ["service call checkout", "EACCES"],
      ["service call vault", "EACCES"],
      ["service call rival/vault", "EACCES"],
      ['kv open store "inventory"', "EACCES"],
      ['kv open store "vault"', "EACCES"],
      ["http GET http://169.254.169.254/latest/meta-data/", "ENOTCAPABLE"],
      ["variable payment_key", "ENOTCAPABLE"],
      ["open /etc/passwd", "ENOTCAPABLE"],
      ["open ../../../etc/passwd", "ENOTCAPABLE"],
      ["clock_time_get", "ENOTCAPABLE"],
      ["random_get", "ENOTCAPABLE"],
    ]) {
      const line = lines.find((l) => l.startsWith(what + " "));
      assert.ok(line && line.endsWith(`refused: ${errno}`), `${what}: ${line}`);
    }

    // The API (what the dashboard's apps table shows): every refusal counted, by call.
    const view = (await call(node.apiUrl, "GET", "/v1/tenants/shop/apps/cart", shop.token)).json;
    assert.deepEqual(view.deniedCalls, {
      "uniwasm:service.call": 7,
      "uniwasm:kv.open": 6,
      "uniwasm:http.send": 3,
      "uniwasm:variables.get": 1,
      path_open: 1,
      clock_time_get: 1,
      random_get: 1,
      sock_accept: 1,
    });
    const metrics = await call(node.apiUrl, "GET", "/metrics", node.admin);
    assert.match(metrics.text, /uniwasm_denied_host_calls_total\{tenant="shop",app="cart",call="uniwasm:kv\.open"\} 6/);

    // The app's log: each refused callee by name, and the first refusal of every call.
    node.store.flush();
    const log = ((await call(node.apiUrl, "GET", "/v1/tenants/shop/apps/cart/logs?tail=200", shop.token)).json.logs as { line: string }[]).map((l) => l.line);
    for (const callee of ["checkout", "pricing", "vault"]) assert.ok(log.includes(`service call to ${callee} refused: not in allowed_services`), callee);
    assert.ok(log.includes('service call to "rival/vault" refused: not an app name of this tenant'));
    for (const c of Object.keys(view.deniedCalls)) assert.ok(log.some((l) => l.startsWith(`denied host call ${c}:`)), c);

    // uniwasm ps: the DENIED column.
    const ps = await cli(["ps", "--node", node.apiUrl, "--token", shop.token]);
    assert.equal(ps.code, 0, ps.err);
    assert.match(ps.out, /^cart\s+shop\s+wagi\s+running\s+\d+\s+\d+\s+(?:executor|inline)\s+(?:isolate|process|gvisor)\s+21\s/m);
    assert.match(ps.out, /^checkout\s+shop\s+wagi\s+running\s+1\s+\d+\s+(?:executor|inline)\s+(?:isolate|process|gvisor)\s+0\s/m);
  });

  test("after the attack nothing else moved: stock, orders, the payment secret and the other tenant's vault", async () => {
    assert.match(await ok("/catalogue"), /^tea +4\.50 +stock +17 /m);
    assert.equal(await ok("/checkout"), "order:0001: alice paid 24.15\n");
    assert.match(await vault(), /^vault: 2 entries, digest [0-9a-f]{16}\n$/);
    const digest = await vault();
    assert.equal(await vault(), digest);
    const rivalView = (await call(node.apiUrl, "GET", "/v1/tenants/rival/apps/vault", rival.token)).json;
    assert.deepEqual(rivalView.deniedCalls, {});
    for (const app of ["catalogue", "pricing", "checkout"]) {
      assert.deepEqual((await call(node.apiUrl, "GET", `/v1/tenants/shop/apps/${app}`, shop.token)).json.deniedCalls, {}, app);
    }
  });

  test("rolling the cart back to the real build restores the shop", async () => {
    await ship(node, shop, "secure-microservices/cart", "cart");
    assert.equal(await ok("/cart/carol", "add cake 2"), "cake 2\n");
    assert.match(await ok("/checkout/carol", ""), /^order 2 for carol\ncake 2 300 600\ntotal 600\n/);
  });
});
