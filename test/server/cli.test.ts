import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { request } from "node:http";
import { join } from "node:path";
import { statSync } from "node:fs";
import { FIXTURES, tempDataDir } from "./helpers.js";

const BIN = join(process.cwd(), "bin", "uniwasm.js");

function cli(env: NodeJS.ProcessEnv, ...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, encoding: "utf8" });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function get(url: string, host: string): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    // agent: false: a fresh connection per request, so a slow step cannot outlive the server's keep-alive and reuse a closed socket.
    request({ host: u.hostname, port: u.port, path: u.pathname + u.search, headers: { host }, agent: false }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode!, body }));
    })
      .on("error", reject)
      .end();
  });
}

test("a new user starts a node, creates a tenant, deploys from the CLI and curls the app; SIGTERM drains and exits", async (t) => {
  const dir = tempDataDir();
  const env = { UNIWASM_CONFIG: join(dir, "config.json"), UNIWASM_NODE: "", UNIWASM_TOKEN: "" };
  delete (env as Record<string, string | undefined>)["UNIWASM_NODE"];
  delete (env as Record<string, string | undefined>)["UNIWASM_TOKEN"];
  const serve = spawn(process.execPath, [BIN, "serve", "--data", join(dir, "node"), "--port", "0", "--gateway-port", "0", "--executors", "1", "--log-level", "warn"], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  // Runs even when the test times out waiting on the node (a finally below would not): no orphaned serve.
  t.after(() => {
    if (serve.exitCode === null && serve.signalCode === null) serve.kill("SIGKILL");
  });
  try {
    let out = "";
    await new Promise<void>((resolve, reject) => {
      serve.stdout.on("data", (c) => {
        out += c;
        if (out.includes("Point the CLI")) resolve();
      });
      serve.on("exit", (code) => reject(new Error(`serve exited with ${code}: ${out}`)));
    });
    const api = /API\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(out)![1]!;
    const gateway = /gateway\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(out)![1]!;
    assert.match(out, /dashboard\s+http:\/\/127\.0\.0\.1:\d+\/dashboard\//);
    const tokenFile = /kept in (\S+) \(mode 0600\)/.exec(out)![1]!;
    assert.equal(statSync(tokenFile).mode & 0o777, 0o600);

    const cfg = cli(env, "node-config", "--node", api, "--token-file", tokenFile);
    assert.equal(cfg.code, 0, cfg.err);
    assert.match(cfg.out, /token ok: admin/);
    assert.equal(statSync(env.UNIWASM_CONFIG).mode & 0o777, 0o600);

    const created = cli(env, "tenants", "create", "acme");
    assert.equal(created.code, 0, created.err);
    const tenantToken = /token \(shown once\): (\S+)/.exec(created.out)![1]!;

    const tenantEnv = { ...env, UNIWASM_TOKEN: tenantToken };
    const dep = cli(tenantEnv, "deploy", join(FIXTURES, "wagi", "handler.wasm"), "--name", "hello", "--env", "GREETING=hi", "--route", "/hello-app");
    assert.equal(dep.code, 0, dep.err);
    assert.match(dep.out, /deployed acme\/hello revision 1 \(wagi/);

    const byHost = await get(`${gateway}/hello`, "hello.acme.localhost");
    assert.deepEqual(byHost, { status: 200, body: "hello from wagi\n" });
    const byPath = await get(`${gateway}/hello-app/echo?q=1`, "hello.acme.localhost"); // a --route without a host is on the app's own host
    assert.match(byPath.body, /greeting=hi/);

    // A redeploy that gives only the name keeps the env set before; --env adds, --unset-env removes.
    const again = cli(tenantEnv, "deploy", join(FIXTURES, "wagi", "handler.wasm"), "--name", "hello");
    assert.equal(again.code, 0, again.err);
    assert.match(again.out, /revision 2/);
    assert.match((await get(`${gateway}/hello-app/echo`, "hello.acme.localhost")).body, /^greeting=hi$/m);
    const more = cli(tenantEnv, "deploy", "--image", "hello", "--name", "hello", "--env", "OTHER=1");
    assert.equal(more.code, 0, more.err);
    assert.match(more.err, /keeping env GREETING from the app's earlier deploy \(--unset-env NAME removes one\)/);
    const unset = cli(tenantEnv, "deploy", "--image", "hello", "--name", "hello", "--unset-env", "GREETING", "--json");
    assert.equal(unset.code, 0, unset.err);
    assert.deepEqual(JSON.parse(unset.out).config.env, { OTHER: "1" });
    assert.match(cli(tenantEnv, "deploy", "--image", "hello", "--name", "hello", "--unset-env", "NOPE").err, /--unset-env NOPE: the app has no env NOPE set by a deploy \(set: OTHER\)/);
    // Limit flags take the one size/duration grammar (binary: 16MB is 16 MiB), parsed by the node.
    const sized = cli(tenantEnv, "deploy", "--image", "hello", "--name", "hello", "--memory", "16MB", "--timeout", "2s", "--fuel", "none", "--stdout", "64K", "--json");
    assert.equal(sized.code, 0, sized.err);
    const l = JSON.parse(sized.out).config.limits;
    assert.deepEqual([l.maxMemoryBytes, l.timeoutMs, l.fuel, l.stdoutBytes], [16 * 1024 * 1024, 2000, null, 65536]);
    assert.match(cli(tenantEnv, "deploy", "--image", "hello", "--name", "hello", "--memory", "lots").err, /limits\.maxMemoryBytes is not a size: "lots"/);

    const ps = cli(tenantEnv, "ps");
    assert.match(ps.out, /^hello\s+acme\s+wagi\s+running\s+5/m);
    const logs = cli(tenantEnv, "logs", "hello");
    assert.match(logs.out, /event\s+deployed revision 1/);
    assert.match(cli(tenantEnv, "tokens").out, /default\s+tenant/);
    const denied = cli(tenantEnv, "tenants", "create", "other");
    assert.equal(denied.code, 1);
    assert.match(denied.err, /^uniwasm: forbidden: /);
    assert.equal(cli(tenantEnv, "rm", "hello").code, 0);
    assert.equal((await get(`${gateway}/hello`, "hello.acme.localhost")).status, 404);
    const missing = cli(tenantEnv, "logs", "hello");
    assert.equal(missing.code, 1);
    assert.match(missing.err, /app_not_found/);
  } finally {
    const exited = new Promise<number | null>((resolve) => serve.on("exit", (code) => resolve(code)));
    serve.kill("SIGTERM");
    assert.equal(await exited, 0);
  }
});

test("node commands without a token explain how to get one", () => {
  const dir = tempDataDir();
  const env: NodeJS.ProcessEnv = { ...process.env, UNIWASM_CONFIG: join(dir, "none.json") };
  delete env["UNIWASM_TOKEN"];
  const r = spawnSync(process.execPath, [BIN, "ps"], { env, encoding: "utf8" });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /no API token: pass --token, set UNIWASM_TOKEN, or run `uniwasm node-config/);
});

test("serve refuses a malformed --outbound-private entry at start, naming it (exit 2), before opening anything", () => {
  const dir = tempDataDir();
  const r = spawnSync(process.execPath, [BIN, "serve", "--data", join(dir, "node"), "--port", "0", "--gateway-port", "0", "--outbound-private", "10.0.0.0/8,nope"], { encoding: "utf8" });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--outbound-private: "nope" is not an IP address or CIDR network/);
});
