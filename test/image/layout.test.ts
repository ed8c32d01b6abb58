import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, writeFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { ImageStore } from "../../src/image/store.js";
import { buildImage } from "../../src/image/build.js";
import { loadImages, saveImages, saveImagesToTar } from "../../src/image/layout.js";
import { generateKeyPair } from "../../src/image/signing.js";
import { trustKey } from "../../src/image/trust.js";
import { readTar, writeTar } from "../../src/image/tar.js";
import { ImageError } from "../../src/image/errors.js";
import { cleanup, greetProject, tempDir } from "./helpers.js";

test("save to a tarball is deterministic and load restores digest, tags and signatures", async () => {
  const [dir, homeA, homeB, out, keys] = [await greetProject(), await tempDir("home"), await tempDir("home"), await tempDir("out"), await tempDir("keys")];
  try {
    const pair = generateKeyPair();
    await writeFile(join(keys, "k.key"), pair.privateKey);
    await writeFile(join(keys, "k.pub"), pair.publicKey);
    const a = new ImageStore(homeA);
    const { digest } = await buildImage(a, { dir, signKey: join(keys, "k.key") });
    const s1 = await saveImages(a, ["greet:1.0.0"], join(out, "a.tar"));
    await saveImages(a, ["greet"], join(out, "b.tar"));
    assert.equal(s1.format, "tar");
    assert.deepEqual(await readFile(join(out, "a.tar")), await readFile(join(out, "b.tar")));
    const index = JSON.parse(new TextDecoder().decode(readTar(await readFile(join(out, "a.tar")), { maxEntries: 100, maxTotalBytes: 1 << 26 }, "t").find((e) => e.path === "index.json")!.data!));
    assert.deepEqual(index.manifests.map((m: { annotations?: Record<string, string> }) => m.annotations?.["org.opencontainers.image.ref.name"]), ["1.0.0", "latest", `sha256-${digest.slice(7)}.sig`]);

    const b = new ImageStore(homeB);
    await trustKey(homeB, join(keys, "k.pub"));
    const loaded = await loadImages(b, join(out, "a.tar"));
    assert.equal(loaded.images.length, 1);
    assert.equal(loaded.images[0]!.digest, digest);
    assert.deepEqual(loaded.images[0]!.tags, ["greet:1.0.0", "greet:latest"]);
    assert.equal(loaded.images[0]!.trust.verified, true);
    assert.equal(await b.resolve("greet:latest"), digest);
  } finally {
    await cleanup(dir, homeA, homeB, out, keys);
  }
});

test("save to a directory writes an OCI image layout that loads back", async () => {
  const [dir, homeA, homeB, out] = [await greetProject(), await tempDir("home"), await tempDir("home"), await tempDir("out")];
  try {
    const a = new ImageStore(homeA);
    const { digest } = await buildImage(a, { dir });
    const layout = join(out, "layout");
    const r = await saveImages(a, [digest.slice(7, 19)], layout);
    assert.equal(r.format, "dir");
    assert.deepEqual((await readdir(layout)).sort(), ["blobs", "index.json", "oci-layout"]);
    assert.equal(await readFile(join(layout, "oci-layout"), "utf8"), '{"imageLayoutVersion":"1.0.0"}');
    assert.equal((await readdir(join(layout, "blobs", "sha256"))).length, 5);
    // Other tools write only ref.name (a bare tag): the image's own name completes it.
    const index = JSON.parse(await readFile(join(layout, "index.json"), "utf8"));
    for (const m of index.manifests) delete m.annotations["io.containerd.image.name"];
    await writeFile(join(layout, "index.json"), JSON.stringify(index));
    const loaded = await loadImages(new ImageStore(homeB), layout);
    assert.equal(loaded.images[0]!.digest, digest);
    assert.deepEqual(loaded.images[0]!.tags, ["greet:1.0.0", "greet:latest"]);
  } finally {
    await cleanup(dir, homeA, homeB, out);
  }
});

test("load refuses a layout with a tampered blob and stores nothing", async () => {
  const [dir, homeA, homeB, out] = [await greetProject(), await tempDir("home"), await tempDir("home"), await tempDir("out")];
  try {
    const a = new ImageStore(homeA);
    await buildImage(a, { dir });
    const layout = join(out, "layout");
    await saveImages(a, ["greet"], layout);
    const blobs = join(layout, "blobs", "sha256");
    // Tamper with the largest blob: the module.
    const names = await readdir(blobs);
    const sizes = await Promise.all(names.map(async (n) => (await readFile(join(blobs, n))).length));
    const biggest = names[sizes.indexOf(Math.max(...sizes))]!;
    const bytes = await readFile(join(blobs, biggest));
    bytes[10] ^= 0xff;
    await writeFile(join(blobs, biggest), bytes);
    const b = new ImageStore(homeB);
    await assert.rejects(loadImages(b, layout), (e: ImageError) => e.code === "blob_corrupt" && e.message.includes(`module layer (application/wasm) sha256:${biggest}: content hashes to`));
    assert.deepEqual(Object.keys((await b.readIndex()).images), []);
  } finally {
    await cleanup(dir, homeA, homeB, out);
  }
});

test("load refuses an unsigned layout under a trust policy, and a non-layout", async () => {
  const [dir, homeA, homeB, out, keys] = [await greetProject(), await tempDir("home"), await tempDir("home"), await tempDir("out"), await tempDir("keys")];
  try {
    const a = new ImageStore(homeA);
    const { digest } = await buildImage(a, { dir });
    await saveImages(a, ["greet"], join(out, "x.tar"));
    await writeFile(join(keys, "k.pub"), generateKeyPair().publicKey);
    await trustKey(homeB, join(keys, "k.pub"));
    await assert.rejects(loadImages(new ImageStore(homeB), join(out, "x.tar")), (e: ImageError) => e.code === "signature_missing" && e.message.includes(`image ${digest} is not signed`));
    await assert.rejects(loadImages(new ImageStore(homeB), dir), (e: ImageError) => e.code === "layout_invalid" && /no oci-layout file/.test(e.message));
  } finally {
    await cleanup(dir, homeA, homeB, out, keys);
  }
});

test("the tar reader refuses path escapes, links and truncation", () => {
  const good = writeTar([{ path: "a/b.txt", type: "file", data: new TextEncoder().encode("hi") }]);
  assert.deepEqual(readTar(good, { maxEntries: 10, maxTotalBytes: 100 }, "t").map((e) => e.path), ["a/b.txt"]);
  const evil = new Uint8Array(good);
  // Rename the entry to ../b.txt and fix the checksum.
  evil.set(new TextEncoder().encode("../b.txt\0"), 0);
  fixChecksum(evil);
  assert.throws(() => readTar(evil, { maxEntries: 10, maxTotalBytes: 100 }, "t"), (e: ImageError) => /"\.\.\/b\.txt": empty, `\.` or `\.\.` segments are not allowed/.test(e.message));
  const link = new Uint8Array(good);
  link[156] = 0x32; // symlink
  fixChecksum(link);
  assert.throws(() => readTar(link, { maxEntries: 10, maxTotalBytes: 100 }, "t"), /only regular files and directories are allowed/);
  assert.throws(() => readTar(good.subarray(0, 600), { maxEntries: 10, maxTotalBytes: 100 }, "t"), /runs past the end|truncated/);
  assert.throws(() => readTar(good, { maxEntries: 10, maxTotalBytes: 1 }, "t"), /more than 1 bytes of content/);
  const badSum = new Uint8Array(good);
  badSum[0] = 0x7a;
  assert.throws(() => readTar(badSum, { maxEntries: 10, maxTotalBytes: 100 }, "t"), /bad header checksum/);
});

test("long paths are split into the ustar prefix and read back whole", () => {
  const path = `${"d".repeat(90)}/${"e".repeat(90)}/f.txt`;
  const t = writeTar([{ path, type: "file", data: new Uint8Array([1, 2, 3]) }]);
  assert.equal(readTar(t, { maxEntries: 10, maxTotalBytes: 100 }, "t")[0]!.path, path);
});

function fixChecksum(h: Uint8Array): void {
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += h[i]!;
  h.set(new TextEncoder().encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
}

test("a layout tarball in memory round-trips (the node's upload and export)", async () => {
  const [dir, homeA, homeB] = [await greetProject(), await tempDir("home"), await tempDir("home")];
  try {
    const a = new ImageStore(homeA);
    const { digest } = await buildImage(a, { dir });
    const { tar, images } = await saveImagesToTar(a, ["greet"]);
    assert.deepEqual(images, [{ digest, tags: ["greet:1.0.0", "greet:latest"] }]);
    const loaded = await loadImages(new ImageStore(homeB), tar);
    assert.equal(loaded.images[0]!.digest, digest);
    await assert.rejects(loadImages(new ImageStore(homeB), tar.subarray(0, 1000)), (e: ImageError) => e.code === "layout_invalid" && /uploaded layout: /.test(e.message));
  } finally {
    await cleanup(dir, homeA, homeB);
  }
});
