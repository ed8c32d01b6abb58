import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ImageStore } from "../../src/image/store.js";
import { buildImage } from "../../src/image/build.js";
import { pushImage, pullImage, signatureTag } from "../../src/image/transfer.js";
import { generateKeyPair } from "../../src/image/signing.js";
import { trustKey } from "../../src/image/trust.js";
import { parseChallenge, RegistryClient } from "../../src/image/registry.js";
import { ImageError } from "../../src/image/errors.js";
import { jsonBytes, MEDIA_TYPES, parseOciManifest } from "../../src/image/oci.js";
import { cleanup, greetProject, tempDir } from "./helpers.js";
import { freePort, REGISTRY_SKIP, startRegistry, type RegistryServer } from "./registry-server.js";

let registry: RegistryServer | undefined;

before(async () => {
  if (!REGISTRY_SKIP) registry = await startRegistry();
});
after(async () => {
  await registry?.stop();
});

test("Bearer and Basic challenges are parsed", () => {
  assert.deepEqual(parseChallenge('Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull"'), {
    scheme: "bearer",
    params: { realm: "https://auth.example.com/token", service: "registry.example.com", scope: "repository:a/b:pull" },
  });
  assert.deepEqual(parseChallenge('Basic realm="Registry Realm"'), { scheme: "basic", params: { realm: "Registry Realm" } });
});

test("push then pull into a fresh store gives the same digest, blobs skipped on a second push", { skip: REGISTRY_SKIP }, async () => {
  const [dir, homeA, homeB] = [await greetProject(), await tempDir("home"), await tempDir("home")];
  try {
    const a = new ImageStore(homeA);
    const { digest } = await buildImage(a, { dir });
    const ref = `${registry!.address}/demo/greet:1.0.0`;
    const pushed = await pushImage(a, "greet:1.0.0", ref);
    assert.equal(pushed.digest, digest);
    assert.equal(pushed.uploaded, 4); // config, module, toml, files
    assert.equal(pushed.skipped, 0);
    assert.equal(pushed.reference, `${registry!.address}/demo/greet:1.0.0@${digest}`);
    const again = await pushImage(a, "greet:1.0.0", ref);
    assert.deepEqual([again.uploaded, again.skipped], [0, 4]);

    const b = new ImageStore(homeB);
    const pulled = await pullImage(b, ref);
    assert.equal(pulled.digest, digest);
    assert.deepEqual(pulled.tags, [`${registry!.address}/demo/greet:1.0.0`]);
    assert.equal(await b.resolve(ref), digest);
    // By digest as well.
    const homeC = await tempDir("home");
    try {
      const byDigest = await pullImage(new ImageStore(homeC), `${registry!.address}/demo/greet@${digest}`);
      assert.equal(byDigest.digest, digest);
      assert.deepEqual(byDigest.tags, []);
    } finally {
      await cleanup(homeC);
    }
  } finally {
    await cleanup(dir, homeA, homeB);
  }
});

test("large blobs are uploaded in chunks", { skip: REGISTRY_SKIP }, async () => {
  const [dir, homeA, homeB] = [await greetProject(), await tempDir("home"), await tempDir("home")];
  try {
    const a = new ImageStore(homeA);
    const { digest } = await buildImage(a, { dir });
    const ref = `${registry!.address}/chunked/greet:1`;
    // greet.wasm is ~29 KiB: with 4 KiB chunks it takes several PATCHes.
    const pushed = await pushImage(a, "greet:1.0.0", ref, { chunkSize: 4096 });
    assert.equal(pushed.uploaded, 4);
    assert.equal((await pullImage(new ImageStore(homeB), ref)).digest, digest);
  } finally {
    await cleanup(dir, homeA, homeB);
  }
});

test("signatures travel with the image under the cosign tag, and pull enforces the trust policy", { skip: REGISTRY_SKIP }, async () => {
  const [dir, homeA, homeB, homeC, keys] = [await greetProject(), await tempDir("home"), await tempDir("home"), await tempDir("home"), await tempDir("keys")];
  try {
    const pair = generateKeyPair();
    await writeFile(join(keys, "ci.key"), pair.privateKey);
    await writeFile(join(keys, "ci.pub"), pair.publicKey);
    const a = new ImageStore(homeA);
    const { digest } = await buildImage(a, { dir, signKey: join(keys, "ci.key") });
    const ref = `${registry!.address}/signed/greet:1.0.0`;
    const pushed = await pushImage(a, "greet:1.0.0", ref);
    assert.ok(pushed.signatures);
    const client = new RegistryClient(registry!.address);
    const sig = await client.getManifest("signed/greet", signatureTag(digest));
    assert.equal(sig?.digest, pushed.signatures);

    await trustKey(homeB, join(keys, "ci.pub"));
    const pulled = await pullImage(new ImageStore(homeB), ref);
    assert.equal(pulled.trust.verified, true);
    assert.equal(pulled.trust.signedBy?.name, "ci");
    assert.equal(pulled.signatures, 1);

    // An unsigned image under a policy is refused, and nothing is stored.
    await buildImage(a, { dir, tags: ["plain:1"] });
    await writeFile(join(dir, "static", "greeting.txt"), "different\n");
    const unsigned = await buildImage(a, { dir, tags: ["plain:2"] });
    await pushImage(a, "plain:2", `${registry!.address}/plain/greet:2`);
    const c = new ImageStore(homeC);
    await trustKey(homeC, join(keys, "ci.pub"));
    await assert.rejects(pullImage(c, `${registry!.address}/plain/greet:2`), (e: ImageError) => e.code === "signature_missing" && e.message.includes(`image ${unsigned.digest} is not signed`));
    assert.equal(await c.resolve(`${registry!.address}/plain/greet:2`), undefined);
    assert.deepEqual(Object.keys((await c.readIndex()).images), []);
  } finally {
    await cleanup(dir, homeA, homeB, homeC, keys);
  }
});

test("a manifest whose blob the registry serves altered is refused on pull", { skip: REGISTRY_SKIP }, async () => {
  const [dir, homeA, homeB] = [await greetProject(), await tempDir("home"), await tempDir("home")];
  try {
    const a = new ImageStore(homeA);
    const { digest } = await buildImage(a, { dir });
    const m = parseOciManifest(await a.getBlob(digest, "m"), "m");
    // A forged manifest that claims a wrong size for the module: the registry stores it, pull must refuse it.
    m.layers[0] = { ...m.layers[0]!, size: m.layers[0]!.size + 1 };
    const client = new RegistryClient(registry!.address);
    await pushImage(a, "greet:1.0.0", `${registry!.address}/forged/greet:ok`);
    await client.pushManifest("forged/greet", "bad", jsonBytes(m), MEDIA_TYPES.ociManifest);
    await assert.rejects(
      pullImage(new ImageStore(homeB), `${registry!.address}/forged/greet:bad`),
      (e: ImageError) => e.code === "blob_corrupt" && /module layer .* has \d+ bytes but its descriptor says/.test(e.message),
    );
  } finally {
    await cleanup(dir, homeA, homeB);
  }
});

test("pulling a missing tag and pushing without a registry give precise errors", { skip: REGISTRY_SKIP }, async () => {
  const [dir, home] = [await greetProject(), await tempDir("home")];
  try {
    const s = new ImageStore(home);
    await buildImage(s, { dir });
    await assert.rejects(pullImage(s, `${registry!.address}/nothing/here:1`), (e: ImageError) => e.code === "image_not_found" && e.message === `${registry!.address} has no nothing/here:1`);
    await assert.rejects(pushImage(s, "greet:1.0.0", undefined), (e: ImageError) => e.code === "ref_invalid" && /names no registry; use REGISTRY\/REPOSITORY\[:TAG\], e.g. 127.0.0.1:5000\/greet:1.0.0/.test(e.message));
    await assert.rejects(pullImage(s, `127.0.0.1:${await freePort()}/x:1`), (e: ImageError) => e.code === "registry_error" && /ECONNREFUSED/.test(e.message));
  } finally {
    await cleanup(dir, home);
  }
});
