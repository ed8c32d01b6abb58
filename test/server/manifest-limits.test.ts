/**
 * A manifest's [limits] reach the instances a node runs, every one of them:
 * stdout, stderr and open_files as well as memory, fuel and timeout (they were
 * dropped on the way before the one limits vocabulary, issue 11).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ImageStore, buildImage, saveImagesToTar } from "../../src/image/index.js";
import { InProcessRunner } from "../../src/manager/index.js";
import { call, gw, tempDataDir, tenant, testNode, FIXTURES } from "./helpers.js";

/** A WAGI image of a test/fixtures/wagi module on "/", with `lines` added to its manifest. */
async function imageTar(name: string, module: "handler" | "files", lines: string[]): Promise<Uint8Array> {
  const dir = tempDataDir();
  copyFileSync(join(FIXTURES, "wagi", `${module}.wasm`), join(dir, "m.wasm"));
  mkdirSync(join(dir, "static"));
  writeFileSync(join(dir, "static", "greeting.txt"), "hello from a bundled file\n");
  const toml = ["manifest_version = 1", "[application]", `name = "${name}"`, "[module]", 'source = "m.wasm"', ...lines, "[[trigger.http]]", 'route = "/"', 'abi = "wagi"', ""];
  writeFileSync(join(dir, "uniwasm.toml"), toml.join("\n"));
  const store = new ImageStore(join(dir, "store"));
  const built = await buildImage(store, { dir });
  return (await saveImagesToTar(store, [built.digest])).tar;
}

const STATIC_DIR = ["[[capabilities.dirs]]", 'guest = "/static"', 'files = "static"'];

for (const runner of ["executor-pool", "in-process"] as const) {
  let node: Awaited<ReturnType<typeof testNode>>;
  let t: { name: string; token: string };
  const T = `lim${runner === "in-process" ? "i" : "e"}`;

  /** Uploads the image and deploys it as app `name`; returns the deployed config. */
  async function deployImage(name: string, module: "handler" | "files", lines: string[]) {
    const up = await call(node.apiUrl, "POST", `/v1/tenants/${t.name}/images`, t.token, await imageTar(name, module, lines), { "content-type": "application/x-tar" });
    assert.equal(up.status, 201, up.text);
    const d = await call(node.apiUrl, "PUT", `/v1/tenants/${t.name}/apps/${name}`, t.token, { image: name });
    assert.equal(d.status, 201, d.text);
    return d.json.config;
  }
  const limitHits = async (app: string, reason: string): Promise<number> => {
    const m = (await call(node.apiUrl, "GET", "/metrics", node.admin)).text;
    const hit = new RegExp(`^uniwasm_limit_hits_total\\{tenant="${T}",app="${app}",reason="${reason}"\\} (\\d+)$`, "m").exec(m);
    return hit ? Number(hit[1]) : 0;
  };
  const events = async (app: string): Promise<string[]> =>
    (await call(node.apiUrl, "GET", `/v1/tenants/${t.name}/apps/${app}/logs`, t.token)).json.logs.filter((l: { stream: string }) => l.stream === "event").map((l: { line: string }) => l.line);

  test(`(${runner} runner) setup`, async () => {
    node = await testNode({ executors: 1, ...(runner === "in-process" ? { runner: new InProcessRunner() } : {}) });
    t = await tenant(node, T);
  });

  test(`a manifest's stdout limit ends a request that writes more with output_limit through the node; under it the request is served (${runner} runner)`, async () => {
    const config = await deployImage("loud", "handler", ["[limits]", 'stdout = "4KiB"', 'stderr = "8"']);
    assert.equal(config.limits.stdoutBytes, 4096, "the manifest's stdout limit is the app's");
    assert.equal(config.limits.stderrBytes, 8, "the manifest's stderr limit is the app's");
    const ok = await gw(node, t.name, "loud", "/big?2");
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.text.length, 2 * 1024);
    const over = await gw(node, t.name, "loud", "/big?8");
    assert.equal(over.status, 502, `8 KiB past a 4 KiB stdout limit: ${over.status}`);
    assert.equal(await limitHits("loud", "output_limit"), 1);
    assert.ok((await events("loud")).some((l) => /instance stopped: output_limit/.test(l)));
  });

  test(`a manifest's stderr limit ends a request that logs more with output_limit (${runner} runner)`, async () => {
    const r = await gw(node, t.name, "loud", "/stderr");
    assert.equal(r.status, 502, "19 bytes of stderr past an 8-byte limit");
    assert.equal(await limitHits("loud", "output_limit"), 2);
  });

  test(`a manifest's open_files limit ends a request that opens one file too many with fd_limit; one more descriptor and it is served (${runner} runner)`, async () => {
    // stdio + the /static preopen are 4 descriptors: with open_files = 4, opening greeting.txt is the 5th.
    const tight = await deployImage("tight", "files", [...STATIC_DIR, "[limits]", "open_files = 4"]);
    assert.equal(tight.limits.openFiles, 4);
    const r = await gw(node, t.name, "tight", "/read");
    assert.equal(r.status, 502, r.text);
    assert.equal(await limitHits("tight", "fd_limit"), 1);
    await deployImage("roomy", "files", [...STATIC_DIR, "[limits]", "open_files = 5"]);
    const ok = await gw(node, t.name, "roomy", "/read");
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.text, "hello from a bundled file\n");
  });

  test(`a deploy's limits replace the manifest's one by one, in the same grammar (${runner} runner)`, async () => {
    const d = await call(node.apiUrl, "PUT", `/v1/tenants/${t.name}/apps/loud`, t.token, { image: "loud", limits: { stdoutBytes: "16KiB" } });
    assert.equal(d.status, 200, d.text);
    assert.equal(d.json.config.limits.stdoutBytes, 16 * 1024);
    assert.equal(d.json.config.limits.stderrBytes, 8, "the manifest's stderr limit stays");
    assert.equal((await gw(node, t.name, "loud", "/big?8")).status, 200);
  });

  test(`(${runner} runner) teardown`, async () => {
    await node.close();
  });
}
