/**
 * The built-in extensions from their C guests (test/fixtures/ext/*.c, through
 * guest/c/*.h), in an executor, with the providers the node and the command
 * line use (manager/extension-providers.ts) over real parts: SQLite, HTTP
 * servers on 127.0.0.1 started here. Each both ways: granted works,
 * ungranted is refused.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { ExecutorPool, type RunOptions } from "../../src/sandbox/executor-pool.js";
import { KvStore } from "../../src/store/kv.js";
import { httpProvider, kvProvider, variablesProvider } from "../../src/manager/extension-providers.js";
import { OutboundHttp } from "../../src/manager/outbound-http.js";
import { LOG_LIMITS } from "../../src/kernel/ext/log.js";
import { REPO, text } from "../sandbox/helpers.js";

const guest = (name: string): Uint8Array => readFileSync(`${REPO}test/fixtures/ext/${name}.wasm`);
const QUOTAS = { maxKeyBytes: 64, maxValueBytes: 4096, maxTotalBytes: 20_000 };

const pool = new ExecutorPool({ size: 2 });
after(() => pool.close());

async function run(name: string, args: string[], extensions: RunOptions["extensions"]): Promise<{ out: string; result: Awaited<ReturnType<ExecutorPool["run"]>> }> {
  const result = await pool.run(guest(name), { args: [name, ...args], stdout: "buffer", stderr: "buffer", ...(extensions ? { extensions } : {}) });
  assert.equal(result.reason, "exit", result.message);
  return { out: text(result.stdout), result };
}

describe("uniwasm:log", () => {
  const lines: string[] = [];
  const log = { log: (level: string, line: string) => lines.push(`${level} ${line}`) };
  const ext = { grants: ["uniwasm:log"], providers: { "uniwasm:log": log } };

  test("a granted line arrives at its level, control characters escaped so it stays one line", async () => {
    lines.length = 0;
    const { out } = await run("log", ["log", "3", "disk\nfull \x1b[31m"], ext);
    assert.equal(out, "status 0\n");
    assert.deepEqual(lines, ["error disk\\nfull \\x1b[31m"]);
  });

  test("a line over the size cap is cut and marked", async () => {
    lines.length = 0;
    await run("log", ["log", "1", "x".repeat(LOG_LIMITS.lineBytes + 100)], ext);
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /^info x{4096} …\[100 bytes cut\]$/);
  });

  test("a flooding guest is bounded: lines past the budget are dropped with EDQUOT, counted as denied, and one warning is logged", async () => {
    lines.length = 0;
    const { out, result } = await run("log", ["flood", "5000"], ext);
    const dropped = Number(/dropped (\d+)/.exec(out)![1]);
    assert.ok(dropped >= 5000 - LOG_LIMITS.burstLines - 200, `dropped ${dropped}`);
    assert.ok(lines.length <= LOG_LIMITS.burstLines + 200, `${lines.length} lines kept`);
    assert.equal(lines.filter((l) => l.startsWith("warn log flood")).length, 1);
    assert.equal(result.denied["uniwasm:log.write"], dropped);
  });

  test("hostile arguments get EFAULT and EINVAL, never a host error", async () => {
    const { out } = await run("log", ["hostile"], ext);
    assert.equal(out, "oob 21\nhuge 21\nlevel 28\nnegative-level 28\n");
  });

  test("ungranted, the call returns ENOTCAPABLE and is counted; nothing is logged", async () => {
    lines.length = 0;
    const { out, result } = await run("log", ["log", "1", "hi"], { grants: [], providers: { "uniwasm:log": log } });
    assert.equal(out, "status 76\n");
    assert.deepEqual(lines, []);
    assert.deepEqual(result.denied, { "uniwasm:log.write": 1 });
  });
});

describe("uniwasm:kv", () => {
  const kv = KvStore.open(":memory:");
  after(() => kv.close());
  const scope = (app: string, shared: string[] = []) => ({ tenantId: "t1", appId: null, own: `app:${app}`, shared });
  const ext = (app: string, shared: string[] = [], grants = ["uniwasm:kv"]) => ({ grants, providers: { "uniwasm:kv": kvProvider(kv, scope(app, shared), () => QUOTAS) } });

  test("get, set, delete, list by prefix (paged), increment and compare-and-set", async () => {
    const { out } = await run("kv", ["set", "a", "1", "set", "ab", "2", "set", "b", "3", "get", "a", "get", "nope", "list", "a", "incr", "n", "5", "incr", "n", "-7", "cas", "a", "1", "x", "cas", "a", "1", "y", "cas", "c", "-", "new", "cas", "c", "-", "again", "del", "b", "get", "b", "list", ""], ext("one"));
    assert.equal(
      out,
      [
        "set a: 0", "set ab: 0", "set b: 0", "get a = 1", "get nope: errno 44", "list a: a ab", "incr n = 5", "incr n = -2",
        "cas a: 0", "cas a: 11", "cas c: 0", "cas c: 11", "del b: 0", "get b: errno 44", "list : a ab c n",
      ].join("\n") + "\n",
    );
  });

  test("a value larger than the guest's buffer is ENOBUFS with its size, then read whole", async () => {
    const { out } = await run("kv", ["set", "big", "y".repeat(1000), "get", "big"], ext("grow"));
    assert.match(out, /get big = y{40} \(1000 bytes, grown\)/);
  });

  test("each app has its own store: another app never sees it", async () => {
    await run("kv", ["set", "secret", "mine"], ext("alice"));
    const { out } = await run("kv", ["get", "secret", "list", ""], ext("bob"));
    assert.equal(out, "get secret: errno 44\nlist :\n");
  });

  test("a shared store is reachable by every app granted its name, and refused (EACCES, denied) to others", async () => {
    assert.equal((await run("kv", ["open", "team", "set", "k", "v"], ext("alice", ["team"]))).out, "open team: 0\nset k: 0\n");
    assert.equal((await run("kv", ["open", "team", "get", "k"], ext("bob", ["team"]))).out, "open team: 0\nget k = v\n");
    const refused = await run("kv", ["open", "team", "get", "k"], ext("carol"));
    assert.equal(refused.out, "open team: 2\nget k: errno 44\n", "carol's store 0 is her own");
    assert.deepEqual(refused.result.denied, { "uniwasm:kv.open": 1 });
  });

  test("quotas: key and value sizes and the tenant's total, each with its errno", async () => {
    const q = await run("kv", ["set", "k".repeat(65), "v", "set", "v", "x".repeat(4097), "fill", "100", "1000"], ext("quota"));
    assert.match(q.out, /^set k{65}: 37\nset v: 22\nfill: (\d+) written, errno 19\n$/);
    const written = Number(/fill: (\d+)/.exec(q.out)![1]);
    assert.ok(written >= 10 && written < 20, `${written} values of 1000 bytes within 20 000 bytes of quota`);
    assert.ok(kv.usage("t1") <= QUOTAS.maxTotalBytes);
  });

  test("a value or key over the provider's limits is refused where the guest runs: it never crosses to the provider's thread", async () => {
    const provider = kvProvider(kv, scope("preflight"), () => QUOTAS);
    let sets = 0;
    const counted = { ...provider, set: (...a: Parameters<typeof provider.set>) => (sets++, provider.set(...a)) };
    const { out } = await run("kv", ["set", "v", "x".repeat(QUOTAS.maxValueBytes + 1), "set", "k".repeat(QUOTAS.maxKeyBytes + 1), "v", "set", "v", "fits"], { grants: ["uniwasm:kv"], providers: { "uniwasm:kv": counted } });
    assert.equal(out, `set v: 22
set ${"k".repeat(QUOTAS.maxKeyBytes + 1)}: 37
set v: 0
`);
    assert.equal(sets, 1, "only the value within the limits reached the provider");
  });

  test("hostile pointers and lengths into every function get EFAULT (or the documented errno), never a host error", async () => {
    const { out } = await run("kv", ["hostile"], ext("hostile"));
    assert.equal(
      out,
      "get-oob-key 21\nget-huge-key 37\nget-oob-len-out 21\nset-oob-value 21\nset-huge-value 22\nset-empty-key 28\ndel-oob 21\nlist-oob-buf 21\nincr-oob-out 21\ncas-oob-old 21\nopen-oob 21\nbad-store 8\n",
    );
  });

  test("a read-only grant links get and list, and stubs set (ENOTCAPABLE, denied)", async () => {
    await run("kv", ["set", "r", "1"], ext("ro"));
    const { out, result } = await run("kv", ["get", "r", "set", "r", "2"], ext("ro", [], ["uniwasm:kv/read"]));
    assert.equal(out, "get r = 1\nset r: 76\n");
    assert.deepEqual(result.denied, { "uniwasm:kv.set": 1 });
  });

  test("ungranted, every call returns ENOTCAPABLE and nothing is stored", async () => {
    const { out } = await run("kv", ["set", "u", "1", "get", "u"], { grants: [], providers: {} });
    assert.equal(out, "set u: 76\nget u: errno 76\n");
    assert.equal(kv.get("t1", "app:kv", new TextEncoder().encode("u")), null);
  });
});

describe("uniwasm:variables", () => {
  const values = new Map([["api_url", "https://api.example.com"], ["api_key", "s3cret"]]);
  const ext = (granted: string[], grants = ["uniwasm:variables"]) => ({ grants, providers: { "uniwasm:variables": variablesProvider(granted, (n) => values.get(n) ?? null) } });

  test("a granted name is read (growing the buffer), an unset one is ENOENT, an ungranted one EACCES and denied", async () => {
    const { out, result } = await run("variables", ["api_url", "api_key", "unset_one", "other"], ext(["api_url", "api_key", "unset_one"]));
    assert.equal(out, "api_url = https://api.example.com\napi_key = s3cret\nunset_one: errno 44\nother: errno 2\n");
    assert.deepEqual(result.denied, { "uniwasm:variables.get": 1 });
  });

  test("hostile pointers get EFAULT, bad names EINVAL or ENAMETOOLONG", async () => {
    const { out } = await run("variables", ["hostile"], ext(["api_url"]));
    assert.equal(out, "oob-name 21\nhuge-name 37\noob-buf 21\noob-len-out 21\nbad-name 28\n");
  });

  test("ungranted extension: ENOTCAPABLE", async () => {
    const { out } = await run("variables", ["api_url"], ext(["api_url"], []));
    assert.equal(out, "api_url: errno 76\n");
  });
});

describe("uniwasm:http", () => {
  let server: Server;
  let port = 0;
  let other: Server;
  let otherPort = 0;
  let hits = 0;
  before(async () => {
    server = createServer((req, res) => {
      hits++;
      if (req.url === "/redirect-out") return res.writeHead(302, { location: `http://127.0.0.1:${otherPort}/` }).end();
      if (req.url === "/redirect-localhost") return res.writeHead(302, { location: `http://localhost:${port}/hello` }).end();
      if (req.url === "/redirect-in") return res.writeHead(307, { location: "/hello" }).end();
      if (req.url === "/loop") return res.writeHead(302, { location: "/loop" }).end();
      if (req.url === "/big") return res.end("z".repeat(5 * 1024 * 1024));
      if (req.url === "/slow") return void setTimeout(() => res.end("late"), 3000);
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => res.writeHead(200, { "x-test": `${req.method} ${req.headers["x-guest"]}` }).end(`hello ${req.url} ${body}`));
    });
    other = createServer((_req, res) => {
      hits++;
      res.end("other server");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    await new Promise<void>((r) => other.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
    otherPort = (other.address() as AddressInfo).port;
  });
  after(() => {
    server.close();
    other.close();
  });
  // "evil.test" resolves to loopback here, as a DNS name an attacker controls would.
  const client = new OutboundHttp({ limits: { timeoutMs: 1500, maxResponseBytes: 1024 * 1024 }, resolve: async (h) => (h === "evil.test" ? [{ address: "127.0.0.1", family: 4 }] : [{ address: "203.0.113.7", family: 4 }]) });
  const ext = (allowed: string[], grants = ["uniwasm:http"]) => ({ grants, providers: { "uniwasm:http": httpProvider(client, allowed) } });
  const explicit = () => [`http://127.0.0.1:${port}`];

  test("a listed destination is reached: status, headers, body and the request body", async () => {
    const { out } = await run("http", ["POST", `http://127.0.0.1:${port}/hello`, "ping"], ext(explicit()));
    assert.equal(out, `status 200\nx-test POST c\nbody hello /hello ping\nbytes 17\nclose 0\n`);
  });

  test("a destination not listed is refused with EACCES and counted as denied, before any connection", async () => {
    hits = 0;
    const { out, result } = await run("http", ["GET", `http://127.0.0.1:${otherPort}/`], ext(explicit()));
    assert.equal(out, "errno 2\n");
    assert.deepEqual(result.denied, { "uniwasm:http.send": 1 });
    assert.equal(hits, 0);
  });

  test("SSRF: loopback by wildcard, decimal, octal and hex IPv4 spellings, [::1] and a DNS name resolving to 127.0.0.1 are all refused", async () => {
    hits = 0;
    const wildcard = ["http://*:*"];
    for (const url of [`http://127.0.0.1:${port}/`, `http://2130706433:${port}/`, `http://0177.0.0.1:${port}/`, `http://0x7f.1:${port}/`, `http://[::1]:${port}/`, `http://evil.test:${port}/`, `http://localhost:${port}/`]) {
      const { out } = await run("http", ["GET", url], ext(wildcard));
      assert.equal(out, "errno 2\n", url);
    }
    // Named explicitly, the DNS name still cannot reach loopback: only the literal address can be allowed.
    assert.equal((await run("http", ["GET", `http://evil.test:${port}/`], ext([`http://evil.test:${port}`]))).out, "errno 2\n");
    assert.equal(hits, 0);
  });

  test("a client with closed private networks (a node's default) refuses even a literal loopback entry; an opened network is reached", async () => {
    hits = 0;
    const closed = new OutboundHttp({ privateNetworks: [], resolve: async () => [{ address: "127.0.0.1", family: 4 }] });
    const list = [`http://127.0.0.1:${port}`, "http://169.254.169.254", "http://localhost:*"];
    await assert.rejects(closed.request(list, { method: "GET", url: `http://127.0.0.1:${port}/`, headers: [], body: new Uint8Array() }), /127\.0\.0\.1, a loopback, private or link-local address in a network this node does not open to apps .*--outbound-private/);
    await assert.rejects(closed.request(list, { method: "GET", url: "http://169.254.169.254/latest/meta-data/", headers: [], body: new Uint8Array() }), /169\.254\.169\.254.*does not open/);
    await assert.rejects(closed.request(list, { method: "GET", url: `http://localhost:${port}/`, headers: [], body: new Uint8Array() }), /localhost resolves to 127\.0\.0\.1.*does not open/);
    assert.equal(hits, 0, "no request left");
    const opened = new OutboundHttp({ privateNetworks: ["127.0.0.0/8"] });
    const ok = await opened.request(list, { method: "GET", url: `http://127.0.0.1:${port}/hello`, headers: [], body: new Uint8Array() });
    assert.equal(ok.status, 200);
    await assert.rejects(opened.request(list, { method: "GET", url: "http://169.254.169.254/", headers: [], body: new Uint8Array() }), /does not open/, "only the opened network");
    assert.throws(() => new OutboundHttp({ privateNetworks: ["10.0.0.0/33"] }), /"10\.0\.0\.0\/33" is not an IP address or CIDR network/);
  });

  test("redirects are followed and re-checked: within the list they work, out of it (or to loopback by name) they are refused", async () => {
    assert.match((await run("http", ["GET", `http://127.0.0.1:${port}/redirect-in`], ext(explicit()))).out, /^status 200\n.*body hello \/hello/s);
    hits = 0;
    assert.equal((await run("http", ["GET", `http://127.0.0.1:${port}/redirect-out`], ext(explicit()))).out, "errno 2\n");
    assert.equal((await run("http", ["GET", `http://127.0.0.1:${port}/redirect-localhost`], ext([...explicit(), "http://*:*"]))).out, "errno 2\n");
    assert.equal(hits, 2, "only the redirecting requests reached a server");
    assert.equal((await run("http", ["GET", `http://127.0.0.1:${port}/loop`], ext(explicit()))).out, "errno 32\n");
  });

  test("a response over the byte cap is EFBIG; a slow server is ETIMEDOUT", async () => {
    assert.equal((await run("http", ["GET", `http://127.0.0.1:${port}/big`], ext(explicit()))).out, "errno 22\n");
    assert.equal((await run("http", ["GET", `http://127.0.0.1:${port}/slow`], ext(explicit()))).out, "errno 73\n");
  });

  test("hostile arguments get EFAULT, EFBIG or EINVAL; bad handles EBADF", async () => {
    const { out } = await run("http", ["hostile", `http://127.0.0.1:${port}/`], ext(explicit()));
    assert.equal(out, "oob-url 21\nhuge-body 22\noob-body 21\nbad-method 28\nbad-header 28\noob-status 21\nbad-handle-read 8\nbad-handle-close 8\n");
  });

  test("ungranted: ENOTCAPABLE, and no request leaves", async () => {
    hits = 0;
    assert.equal((await run("http", ["GET", `http://127.0.0.1:${port}/`], ext(explicit(), []))).out, "errno 76\n");
    assert.equal(hits, 0);
  });
});
