import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ImageStore, buildImage, saveImagesToTar, generateKeyPair, trustKey } from "../../src/image/index.js";
import { call, gw, tempDataDir, tenant, testNode, wasm, FIXTURES } from "./helpers.js";

/** Builds a reactor image with the image layer and returns it as an OCI layout tarball. */
async function imageTar(opts: { sign?: boolean } = {}): Promise<{ tar: Uint8Array; publicKeyFile?: string }> {
  const dir = tempDataDir();
  copyFileSync(join(FIXTURES, "reactor", "hello.wasm"), join(dir, "hello.wasm"));
  writeFileSync(
    join(dir, "uniwasm.toml"),
    ['manifest_version = 1', "", "[application]", 'name = "greeter"', 'version = "1.0.0"', "", "[module]", 'source = "hello.wasm"', 'entry = "reactor"', 'exports = ["uniwasm_http_handle"]', "", "[limits]", 'memory = "16MiB"', "", "[[trigger.http]]", 'route = "/greet"', 'abi = "reactor"', 'handler = "uniwasm_http_handle"', ""].join("\n"),
  );
  const store = new ImageStore(join(dir, "store"));
  let publicKeyFile: string | undefined;
  let signKey: string | undefined;
  if (opts.sign) {
    const keys = generateKeyPair();
    signKey = join(dir, "key.pem");
    publicKeyFile = join(dir, "key.pub");
    writeFileSync(signKey, keys.privateKey, { mode: 0o600 });
    writeFileSync(publicKeyFile, keys.publicKey);
  }
  const built = await buildImage(store, { dir, ...(signKey ? { signKey } : {}) });
  const { tar } = await saveImagesToTar(store, [built.digest]);
  return { tar, ...(publicKeyFile ? { publicKeyFile } : {}) };
}

test("an image built and saved by the image layer uploads as a tarball and deploys with its manifest's routes, ABI and limits", async () => {
  const node = await testNode({ executors: 1 });
  try {
    const t = await tenant(node, "img");
    const { tar } = await imageTar();
    const up = await call(node.apiUrl, "POST", `/v1/tenants/${t.name}/images`, t.token, tar, { "content-type": "application/x-tar" });
    assert.equal(up.status, 201, up.text);
    assert.equal(up.json.name, "greeter");
    assert.deepEqual(up.json.config.routes, [{ path: "/greet" }], "a trigger without a host is on the app's own host");
    const d = await call(node.apiUrl, "PUT", `/v1/tenants/${t.name}/apps/greeter`, t.token, { image: "greeter" });
    assert.equal(d.status, 201, d.text);
    assert.equal(d.json.config.abi, "reactor");
    assert.equal(d.json.config.limits.maxMemoryBytes, 16 * 1024 * 1024);
    assert.deepEqual(d.json.config.routes, [{ host: "greeter.img.localhost", path: "/" }, { host: "greeter.img.localhost", path: "/greet" }]);
    assert.match((await gw(node, "img", "greeter", "/greet")).text, /hello from reactor/);
    const bad = await call(node.apiUrl, "POST", `/v1/tenants/${t.name}/images`, t.token, new TextEncoder().encode("not a tar"), { "content-type": "application/x-tar" });
    assert.equal(bad.json.error.code, "invalid_image");
  } finally {
    await node.close();
  }
});

test("with --require-signed, unsigned images and raw modules are refused and an image signed by a trusted key is accepted", async () => {
  const dataDir = tempDataDir();
  const signed = await imageTar({ sign: true });
  mkdirSync(join(dataDir, "images"), { recursive: true });
  await trustKey(join(dataDir, "images"), signed.publicKeyFile!, "release");
  const node = await testNode({ dataDir, executors: 1, signaturePolicy: "require-trusted" });
  try {
    const t = await tenant(node, "strict");
    const raw = await call(node.apiUrl, "POST", `/v1/tenants/${t.name}/images?name=x`, t.token, wasm("wagi/hello.wasm"), { "content-type": "application/wasm" });
    assert.equal(raw.status, 403);
    assert.equal(raw.json.error.code, "signature_required");
    const unsigned = await call(node.apiUrl, "POST", `/v1/tenants/${t.name}/images`, t.token, (await imageTar()).tar, { "content-type": "application/x-tar" });
    assert.equal(unsigned.json.error.code, "signature_required");
    const ok = await call(node.apiUrl, "POST", `/v1/tenants/${t.name}/images`, t.token, signed.tar, { "content-type": "application/x-tar" });
    assert.equal(ok.status, 201, ok.text);
    assert.match(ok.json.signedBy, /^release /);
  } finally {
    await node.close();
  }
});

test("pulling from an unreachable registry answers pull_failed", async () => {
  const node = await testNode({ executors: 1 });
  try {
    const t = await tenant(node, "puller");
    const r = await call(node.apiUrl, "POST", `/v1/tenants/${t.name}/images/pull`, t.token, { ref: "127.0.0.1:9/nothing/here:1", insecure: true });
    assert.equal(r.status, 502, r.text);
    assert.equal(r.json.error.code, "pull_failed");
  } finally {
    await node.close();
  }
});
