import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ImageStore, buildImage, saveImagesToTar } from "../../src/image/index.js";
import { InProcessRunner } from "../../src/manager/index.js";
import { sha256Digest } from "../../src/store/index.js";
import { call, gw, tempDataDir, tenant, testNode, FIXTURES } from "./helpers.js";

const GREETING = "hello from a bundled file\n";

/**
 * Builds a WAGI image of test/fixtures/wagi/files.wasm on route /files with
 * `capabilities` (TOML lines) and returns its OCI layout tarball. The build
 * dir holds static/greeting.txt and scratch/log.txt for `files = ` dirs.
 */
async function filesImage(name: string, capabilities: string[]): Promise<Uint8Array> {
  const dir = tempDataDir();
  copyFileSync(join(FIXTURES, "wagi", "files.wasm"), join(dir, "files.wasm"));
  mkdirSync(join(dir, "static"));
  writeFileSync(join(dir, "static", "greeting.txt"), GREETING);
  mkdirSync(join(dir, "scratch"));
  writeFileSync(join(dir, "scratch", "log.txt"), "seed\n");
  writeFileSync(
    join(dir, "uniwasm.toml"),
    [
      "manifest_version = 1",
      "[application]",
      `name = "${name}"`,
      'version = "1.0.0"',
      "[module]",
      'source = "files.wasm"',
      'entry = "command"',
      ...capabilities,
      "[[trigger.http]]",
      'route = "/files"',
      'abi = "wagi"',
      "",
    ].join("\n"),
  );
  const store = new ImageStore(join(dir, "store"));
  const built = await buildImage(store, { dir });
  return (await saveImagesToTar(store, [built.digest])).tar;
}

const BUNDLED_DIRS = ["[[capabilities.dirs]]", 'guest = "/static"', 'files = "static"', "[[capabilities.dirs]]", 'guest = "/scratch"', 'files = "scratch"', 'mode = "rw"'];

/** A gateway request matched by the image's route (/files, on the app's own host: a trigger without a host is there). */
const viaRoute = (node: Awaited<ReturnType<typeof testNode>>, path: string) => gw(node, currentTenant, currentApp, path);
let currentTenant = "";
let currentApp = "";

const upload = (node: Awaited<ReturnType<typeof testNode>>, t: { name: string; token: string }, tar: Uint8Array) =>
  call(node.apiUrl, "POST", `/v1/tenants/${t.name}/images`, t.token, tar, { "content-type": "application/x-tar" });

for (const runner of ["executor-pool", "in-process"] as const) {
  test(`an image's bundled files reach its WAGI handler read-only, its rw dir is private per instance, and ungranted clocks answer ENOTCAPABLE (${runner} runner)`, async () => {
    const node = await testNode({ executors: 1, ...(runner === "in-process" ? { runner: new InProcessRunner() } : {}) });
    try {
      const t = await tenant(node, "files");
      const up = await upload(node, t, await filesImage("files", ["[capabilities]", "clocks = false", ...BUNDLED_DIRS]));
      assert.equal(up.status, 201, up.text);
      assert.deepEqual(up.json.dirs, [
        { guest: "/static", readonly: true, files: ["greeting.txt"] },
        { guest: "/scratch", readonly: false, files: ["log.txt"] },
      ]);
      assert.ok(up.json.capabilities.includes("fs"), up.text);
      assert.ok(!up.json.capabilities.includes("clocks"), up.text);
      [currentTenant, currentApp] = [t.name, "files"];
      const d = await call(node.apiUrl, "PUT", `/v1/tenants/${t.name}/apps/files`, t.token, { image: "files" });
      assert.equal(d.status, 201, d.text);

      const read = await viaRoute(node, "/files/read");
      assert.equal(read.status, 200, read.text);
      assert.equal(read.text, GREETING);
      assert.equal((await viaRoute(node, "/files/write-static")).text, "read-only\n");
      // Each run starts from the image's copy: the previous run's append is gone.
      assert.equal((await viaRoute(node, "/files/scratch")).text, "seed\nappended\n");
      assert.equal((await viaRoute(node, "/files/scratch")).text, "seed\nappended\n");
      assert.equal((await viaRoute(node, "/files/clock")).text, "clock_time_get errno=76\n", "76 is ENOTCAPABLE");
      const app = await call(node.apiUrl, "GET", `/v1/tenants/${t.name}/apps/files`, t.token);
      assert.equal(app.json.deniedCalls.clock_time_get, 1, app.text);
    } finally {
      await node.close();
    }
  });
}

test("an image that grants clocks gets them on the node", async () => {
  const node = await testNode({ executors: 1 });
  try {
    const t = await tenant(node, "clocks");
    const up = await upload(node, t, await filesImage("clocked", ["[capabilities]", "clocks = true"]));
    assert.equal(up.status, 201, up.text);
    assert.ok(up.json.capabilities.includes("clocks"), up.text);
    [currentTenant, currentApp] = [t.name, "clocked"];
    assert.equal((await call(node.apiUrl, "PUT", `/v1/tenants/${t.name}/apps/clocked`, t.token, { image: "clocked" })).status, 201);
    assert.equal((await viaRoute(node, "/files/clock")).text, "clock_time_get errno=0\n");
    // No dirs granted: the bundled path does not exist for this app.
    assert.match((await viaRoute(node, "/files/read")).text, /^open \/static\/greeting.txt failed/);
  } finally {
    await node.close();
  }
});

test("an image's files and grants survive a node restart (stored content-addressed with the image)", async () => {
  const dataDir = tempDataDir();
  let node = await testNode({ dataDir, executors: 1 });
  let t: { name: string; token: string };
  try {
    t = await tenant(node, "durable");
    assert.equal((await upload(node, t, await filesImage("durable", BUNDLED_DIRS))).status, 201);
    [currentTenant, currentApp] = [t.name, "durable"];
    assert.equal((await call(node.apiUrl, "PUT", `/v1/tenants/${t.name}/apps/durable`, t.token, { image: "durable" })).status, 201);
  } finally {
    await node.close();
  }
  assert.ok(existsSync(join(dataDir, "blobs", "sha256", sha256Digest(new TextEncoder().encode(GREETING)).slice(7))), "the file is a blob");
  node = await testNode({ dataDir, executors: 1 });
  try {
    assert.equal((await viaRoute(node, "/files/read")).text, GREETING);
    assert.equal((await viaRoute(node, "/files/clock")).text, "clock_time_get errno=76\n");
  } finally {
    await node.close();
  }
});

test("deleting or replacing an image drops its file blobs unless another image still bundles the same bytes", async () => {
  const dataDir = tempDataDir();
  const node = await testNode({ dataDir, executors: 1 });
  try {
    const tar = await filesImage("shared", BUNDLED_DIRS);
    const a = await tenant(node, "gc-a");
    const b = await tenant(node, "gc-b");
    const upA = await upload(node, a, tar);
    assert.equal(upA.status, 201, upA.text);
    assert.equal((await upload(node, b, tar)).status, 201);
    const blob = join(dataDir, "blobs", "sha256", sha256Digest(new TextEncoder().encode(GREETING)).slice(7));
    assert.ok(existsSync(blob));
    assert.equal((await call(node.apiUrl, "DELETE", `/v1/tenants/${a.name}/images/${upA.json.digest}`, a.token)).status, 204);
    assert.ok(existsSync(blob), "tenant gc-b's image still bundles the file");
    // Re-uploading the same module with no dirs replaces tenant gc-b's record: the file it bundled goes.
    const bare = await upload(node, b, await filesImage("shared", []));
    assert.equal(bare.json.digest, upA.json.digest);
    assert.deepEqual(bare.json.dirs, []);
    assert.ok(!existsSync(blob), "no image bundles the file any more");
  } finally {
    await node.close();
  }
});

test("an image that maps a host directory or listens on a socket is refused with capability_refused", async () => {
  const node = await testNode({ executors: 1 });
  try {
    const t = await tenant(node, "greedy");
    const host = await upload(node, t, await filesImage("hostdir", ["[[capabilities.dirs]]", 'guest = "/etc-of-node"', 'host = "/etc"']));
    assert.equal(host.status, 403, host.text);
    assert.equal(host.json.error.code, "capability_refused");
    assert.match(host.json.error.message, /capabilities\.dirs\[0\] maps \/etc-of-node to the host directory \/etc/);
    const listen = await upload(node, t, await filesImage("listener", ["[capabilities]", 'listen = ["127.0.0.1:8080"]']));
    assert.equal(listen.status, 403, listen.text);
    assert.equal(listen.json.error.code, "capability_refused");
    assert.match(listen.json.error.message, /capabilities\.listen \(127\.0\.0\.1:8080\)/);
    const images = await call(node.apiUrl, "GET", `/v1/tenants/${t.name}/images`, t.token);
    assert.deepEqual(images.json.images, [], "nothing was stored");
  } finally {
    await node.close();
  }
});
