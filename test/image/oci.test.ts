import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { imageLayers, jsonBytes, MEDIA_TYPES, parseOciManifest, parseWasmConfig } from "../../src/image/oci.js";
import { parseReference, tagName, isPlainHttpRegistry } from "../../src/image/reference.js";
import { sha256 } from "../../src/image/digest.js";
import { ImageStore } from "../../src/image/store.js";
import { ImageError } from "../../src/image/errors.js";
import { cleanup, tempDir } from "./helpers.js";

const d = (s: string) => sha256(s);
const good = {
  schemaVersion: 2,
  mediaType: MEDIA_TYPES.ociManifest,
  config: { mediaType: MEDIA_TYPES.wasmConfig, digest: d("c"), size: 1 },
  layers: [
    { mediaType: MEDIA_TYPES.wasm, digest: d("m"), size: 1 },
    { mediaType: MEDIA_TYPES.uniwasmManifest, digest: d("t"), size: 1 },
  ],
};

function malformed(v: unknown): string {
  try {
    const m = parseOciManifest(jsonBytes(v), "manifest X");
    imageLayers(m, "image X");
  } catch (err) {
    assert.ok(err instanceof ImageError);
    assert.equal(err.code, "image_malformed");
    return err.message;
  }
  assert.fail("accepted");
}

test("hostile or foreign OCI manifests are refused with the reason", () => {
  assert.match(malformed({ ...good, schemaVersion: 1 }), /schemaVersion is 1, expected 2/);
  assert.match(malformed({ ...good, mediaType: MEDIA_TYPES.ociIndex }), /is an OCI image index/);
  assert.match(malformed({ ...good, layers: Array.from({ length: 65 }, () => good.layers[0]) }), /has 65 layers; at most 64/);
  assert.match(malformed({ ...good, config: { ...good.config, digest: "md5:abc" } }), /config descriptor: digest "md5:abc" is not a sha256 digest/);
  assert.match(malformed({ ...good, config: { ...good.config, size: -1 } }), /size is not a non-negative integer/);
  assert.match(malformed({ ...good, config: { ...good.config, mediaType: "application/vnd.oci.image.config.v1+json" } }), /not a wasm image/);
  assert.match(malformed({ ...good, layers: [good.layers[1]] }), /has 0 application\/wasm layers; a uniwasm image has exactly one/);
  assert.match(malformed({ ...good, layers: [good.layers[0]] }), /was it built by uniwasm\?/);
  assert.match(malformed({ ...good, layers: [...good.layers, { mediaType: "application/x-evil", digest: d("e"), size: 1 }] }), /unknown mediaType "application\/x-evil"/);
  assert.match(malformed({ ...good, layers: [...good.layers, { mediaType: MEDIA_TYPES.uniwasmFiles, digest: d("f"), size: 1 }] }), /has no dev.uniwasm.files.guest annotation/);
  assert.throws(() => parseOciManifest(new TextEncoder().encode("{nope"), "manifest X"), /manifest X is not valid JSON/);
  assert.throws(() => parseOciManifest(new Uint8Array(5 * 1024 * 1024), "manifest X"), /at most 4194304 allowed/);
});

test("the wasm config must list the manifest's layers in order", () => {
  const m = parseOciManifest(jsonBytes(good), "m");
  const cfg = (o: object) => jsonBytes({ created: "1970-01-01T00:00:00Z", architecture: "wasm", os: "wasip1", layerDigests: m.layers.map((l) => l.digest), ...o });
  assert.equal(parseWasmConfig(cfg({}), m, "config").os, "wasip1");
  assert.throws(() => parseWasmConfig(cfg({ os: "wasip2" }), m, "config"), /os is "wasip2", expected "wasip1"/);
  assert.throws(() => parseWasmConfig(cfg({ layerDigests: [...m.layers.map((l) => l.digest)].reverse() }), m, "config"), /does not list the manifest's layers in order/);
});

test("references parse like Docker's: registry, repository, tag and digest", () => {
  assert.deepEqual(parseReference("greet"), { repository: "greet" });
  assert.deepEqual(parseReference("greet:1.0"), { repository: "greet", tag: "1.0" });
  assert.deepEqual(parseReference("127.0.0.1:5000/team/greet:v1"), { registry: "127.0.0.1:5000", repository: "team/greet", tag: "v1" });
  assert.deepEqual(parseReference(`localhost/greet@${d("x")}`), { registry: "localhost", repository: "greet", digest: d("x") });
  assert.equal(tagName(parseReference("greet")), "greet:latest");
  assert.throws(() => parseReference("Greet"), /repository components must be lowercase/);
  assert.throws(() => parseReference("greet:-bad"), /tag "-bad" must be/);
  assert.throws(() => parseReference("greet@sha256:xyz"), /is not a sha256 digest/);
  assert.equal(isPlainHttpRegistry("127.0.0.1:5000"), true);
  assert.equal(isPlainHttpRegistry("localhost:5000"), true);
  assert.equal(isPlainHttpRegistry("registry.example.com"), false);
});

test("a corrupt store index is reported, not guessed at", async () => {
  const home = await tempDir("home");
  try {
    await mkdir(home, { recursive: true });
    await writeFile(join(home, "index.json"), "{not json");
    await assert.rejects(new ImageStore(home).resolve("x"), (e: ImageError) => e.code === "store_corrupt" && e.message.includes("index.json is not valid JSON"));
    await writeFile(join(home, "index.json"), '{"version": 9}');
    await assert.rejects(new ImageStore(home).resolve("x"), (e: ImageError) => e.code === "store_corrupt" && /not a version 1 store index/.test(e.message));
  } finally {
    await cleanup(home);
  }
});
