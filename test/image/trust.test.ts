import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ImageStore } from "../../src/image/store.js";
import { buildImage } from "../../src/image/build.js";
import { resolveImage } from "../../src/image/resolve.js";
import { generateKeyPair, loadPrivateKey, readSignatures, signImage } from "../../src/image/signing.js";
import { readTrustPolicy, trustKey, untrustKey } from "../../src/image/trust.js";
import { parseOciManifest } from "../../src/image/oci.js";
import { jsonBytes } from "../../src/image/oci.js";
import { ImageError } from "../../src/image/errors.js";
import type { Digest } from "../../src/image/digest.js";
import { cleanup, greetProject, tempDir } from "./helpers.js";

interface Setup {
  home: string;
  dir: string;
  keys: string;
  store: ImageStore;
  digest: Digest;
  keyId: string;
}

/** A signed greet image in a fresh store whose trust policy trusts the signing key. */
async function signedImage(): Promise<Setup> {
  const [home, dir, keys] = [await tempDir("home"), await greetProject(), await tempDir("keys")];
  const pair = generateKeyPair();
  await writeFile(join(keys, "alice.key"), pair.privateKey);
  await writeFile(join(keys, "alice.pub"), pair.publicKey);
  const store = new ImageStore(home);
  const r = await buildImage(store, { dir, signKey: join(keys, "alice.key") });
  assert.equal(r.signedBy, pair.keyId);
  await trustKey(home, join(keys, "alice.pub"));
  return { home, dir, keys, store, digest: r.digest, keyId: pair.keyId };
}

async function refused(s: Setup, ref = "greet:1.0.0"): Promise<ImageError> {
  try {
    await resolveImage(ref, { home: s.home });
  } catch (err) {
    assert.ok(err instanceof ImageError, String(err));
    return err;
  }
  assert.fail("the image was accepted");
}

async function tamper(store: ImageStore, d: Digest): Promise<void> {
  const path = store.blobPath(d);
  const bytes = await readFile(path);
  bytes[bytes.length - 1] ^= 1;
  await writeFile(path, bytes);
}

async function manifestOf(s: Setup) {
  return parseOciManifest(await s.store.getBlob(s.digest, "manifest"), "manifest");
}

test("a signed image by a trusted key runs, and reports who vouched for it", async () => {
  const s = await signedImage();
  try {
    const r = await resolveImage("greet", { home: s.home });
    assert.ok(r);
    assert.equal(r.trust.verified, true);
    assert.equal(r.trust.signedBy?.name, "alice");
    assert.equal(r.trust.signedBy?.id, s.keyId);
  } finally {
    await cleanup(s.home, s.dir, s.keys);
  }
});

test("an unsigned image is refused once a key is trusted, naming the digest and the keys", async () => {
  const s = await signedImage();
  try {
    await s.store.setSignatures(s.digest, undefined);
    const err = await refused(s);
    assert.equal(err.code, "signature_missing");
    assert.equal(err.status, 403);
    assert.match(err.message, new RegExp(`image ${s.digest} is not signed; the trust policy .*trust.json requires a signature by one of: alice \\(`));
  } finally {
    await cleanup(s.home, s.dir, s.keys);
  }
});

test("a tampered module blob is refused naming the layer and digest", async () => {
  const s = await signedImage();
  try {
    const m = await manifestOf(s);
    await tamper(s.store, m.layers[0]!.digest);
    const err = await refused(s);
    assert.equal(err.code, "blob_corrupt");
    assert.match(err.message, new RegExp(`image ${s.digest}: module layer \\(application/wasm\\) ${m.layers[0]!.digest}: content hashes to sha256:`));
  } finally {
    await cleanup(s.home, s.dir, s.keys);
  }
});

test("a tampered config is refused naming the config digest", async () => {
  const s = await signedImage();
  try {
    const m = await manifestOf(s);
    await tamper(s.store, m.config.digest);
    const err = await refused(s);
    assert.equal(err.code, "blob_corrupt");
    assert.match(err.message, new RegExp(`image ${s.digest}: config ${m.config.digest}: content hashes to`));
  } finally {
    await cleanup(s.home, s.dir, s.keys);
  }
});

test("a tampered OCI manifest is refused naming the image digest", async () => {
  const s = await signedImage();
  try {
    await tamper(s.store, s.digest);
    const err = await refused(s);
    assert.equal(err.code, "blob_corrupt");
    assert.match(err.message, new RegExp(`^image manifest ${s.digest}: content hashes to`));
  } finally {
    await cleanup(s.home, s.dir, s.keys);
  }
});

test("a tampered uniwasm.toml layer and a tampered files layer are each refused by name", async () => {
  const s = await signedImage();
  try {
    const m = await manifestOf(s);
    await tamper(s.store, m.layers[1]!.digest);
    let err = await refused(s);
    assert.match(err.message, new RegExp(`uniwasm.toml layer ${m.layers[1]!.digest}: content hashes to`));
    await tamper(s.store, m.layers[1]!.digest); // flip back
    await tamper(s.store, m.layers[2]!.digest);
    err = await refused(s);
    assert.equal(err.code, "blob_corrupt");
    assert.match(err.message, new RegExp(`files layer for /static ${m.layers[2]!.digest}: content hashes to`));
  } finally {
    await cleanup(s.home, s.dir, s.keys);
  }
});

test("a module swapped with a consistently rewritten manifest is a different, unsigned image", async () => {
  const s = await signedImage();
  try {
    const m = await manifestOf(s);
    const evil = new Uint8Array(await s.store.getBlob(m.layers[0]!.digest, "module"));
    evil[evil.length - 1] ^= 1;
    const evilDigest = await s.store.putBlob(evil);
    m.layers[0] = { ...m.layers[0]!, digest: evilDigest };
    const config = jsonBytes({ created: "1970-01-01T00:00:00Z", architecture: "wasm", os: "wasip1", layerDigests: m.layers.map((l) => l.digest) });
    m.config = { ...m.config, digest: await s.store.putBlob(config), size: config.length };
    const forged = await s.store.putBlob(jsonBytes(m));
    await s.store.addImage(forged, ["greet:1.0.0"]);
    const err = await refused(s);
    assert.equal(err.code, "signature_missing");
    assert.match(err.message, new RegExp(`image ${forged} is not signed`));
  } finally {
    await cleanup(s.home, s.dir, s.keys);
  }
});

test("a tampered signature envelope is refused naming the signature and the key", async () => {
  const s = await signedImage();
  try {
    const [sig] = await readSignatures(s.store, s.digest);
    // Re-encode with a flipped signature byte but keep it well-formed JSON, and rewrite the signature manifest to match.
    const env = { ...sig!.envelope };
    const raw = Buffer.from(env.signature, "base64");
    raw[0] ^= 1;
    env.signature = raw.toString("base64");
    await rewriteSignature(s, env);
    const err = await refused(s);
    assert.equal(err.code, "signature_invalid");
    assert.match(err.message, new RegExp(`image ${s.digest} is refused: signature sha256:[0-9a-f]{64} by trusted key alice \\([0-9a-f]{16}\\): the Ed25519 signature does not verify`));
  } finally {
    await cleanup(s.home, s.dir, s.keys);
  }
});

test("a signature blob changed on disk is refused as corrupt", async () => {
  const s = await signedImage();
  try {
    const [sig] = await readSignatures(s.store, s.digest);
    await tamper(s.store, sig!.descriptor.digest);
    const err = await refused(s);
    assert.equal(err.code, "blob_corrupt");
    assert.match(err.message, new RegExp(`signature ${sig!.descriptor.digest} of image ${s.digest}`));
  } finally {
    await cleanup(s.home, s.dir, s.keys);
  }
});

test("a valid signature of another image is refused: it signs a different digest", async () => {
  const s = await signedImage();
  try {
    const [sig] = await readSignatures(s.store, s.digest);
    const key = await loadPrivateKey(join(s.keys, "alice.key"));
    const { makeEnvelope } = await import("../../src/image/signing.js");
    const other = `sha256:${"ab".repeat(32)}` as Digest;
    const env = makeEnvelope(other, key);
    assert.notDeepEqual(env, sig!.envelope);
    await rewriteSignature(s, env);
    const err = await refused(s);
    assert.equal(err.code, "signature_invalid");
    assert.match(err.message, new RegExp(`it signs image ${other}, not ${s.digest}`));
  } finally {
    await cleanup(s.home, s.dir, s.keys);
  }
});

test("a signature manifest pointing at another image is refused", async () => {
  const s = await signedImage();
  try {
    const sigDigest = (await s.store.signaturesOf(s.digest))!;
    const m = parseOciManifest(await s.store.getBlob(sigDigest, "sig"), "sig");
    m.subject = { ...m.subject!, digest: `sha256:${"cd".repeat(32)}` as Digest };
    await s.store.setSignatures(s.digest, await s.store.putBlob(jsonBytes(m)));
    const err = await refused(s);
    assert.equal(err.code, "signature_invalid");
    assert.match(err.message, /it refers to sha256:cdcd.*, not sha256:/);
  } finally {
    await cleanup(s.home, s.dir, s.keys);
  }
});

test("an image signed only by an untrusted key is refused, naming both keys", async () => {
  const s = await signedImage();
  try {
    const mallory = generateKeyPair();
    await writeFile(join(s.keys, "mallory.key"), mallory.privateKey);
    await s.store.setSignatures(s.digest, undefined);
    await signImage(s.store, s.digest, await loadPrivateKey(join(s.keys, "mallory.key")));
    const err = await refused(s);
    assert.equal(err.code, "signature_untrusted");
    assert.match(err.message, new RegExp(`signed only by keys the trust policy .* does not list \\(${mallory.keyId.slice(7, 23)}\\); trusted: alice`));
    // A second signature by the trusted key makes it acceptable again.
    await signImage(s.store, s.digest, await loadPrivateKey(join(s.keys, "alice.key")));
    assert.equal((await readSignatures(s.store, s.digest)).length, 2);
    assert.equal((await resolveImage("greet", { home: s.home }))?.trust.signedBy?.name, "alice");
  } finally {
    await cleanup(s.home, s.dir, s.keys);
  }
});

test("with no trusted keys, signatures are optional but tampering is still refused", async () => {
  const s = await signedImage();
  try {
    await untrustKey(s.home, "alice");
    assert.deepEqual((await readTrustPolicy(s.home)).keys, []);
    await s.store.setSignatures(s.digest, undefined);
    const r = await resolveImage("greet", { home: s.home });
    assert.equal(r?.trust.verified, false);
    await tamper(s.store, (await manifestOf(s)).layers[0]!.digest);
    assert.equal((await refused(s)).code, "blob_corrupt");
  } finally {
    await cleanup(s.home, s.dir, s.keys);
  }
});

test("trust add refuses a private key and a non-Ed25519 key", async () => {
  const s = await signedImage();
  try {
    await assert.rejects(trustKey(s.home, join(s.keys, "alice.key")), (e: ImageError) => e.code === "key_invalid" && /holds a private key/.test(e.message));
    const { generateKeyPairSync } = await import("node:crypto");
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ type: "spki", format: "pem" });
    await writeFile(join(s.keys, "rsa.pub"), rsa);
    await assert.rejects(trustKey(s.home, join(s.keys, "rsa.pub")), (e: ImageError) => e.code === "key_invalid" && /is a rsa key; uniwasm verifies Ed25519/.test(e.message));
    await assert.rejects(loadPrivateKey(join(s.keys, "missing.key")), (e: ImageError) => e.code === "key_invalid" && /ENOENT/.test(e.message));
  } finally {
    await cleanup(s.home, s.dir, s.keys);
  }
});

/** Replaces the image's only signature with `env`, keeping the signature manifest well-formed. */
async function rewriteSignature(s: Setup, env: { keyId: string; payload: string; signature: string }): Promise<void> {
  const { descriptor, MEDIA_TYPES } = await import("../../src/image/oci.js");
  const { signatureManifest } = await import("../../src/image/signing.js");
  const bytes = jsonBytes(env);
  await s.store.putBlob(bytes);
  const image = await s.store.getBlob(s.digest, "manifest");
  const sm = signatureManifest({ mediaType: MEDIA_TYPES.ociManifest, digest: s.digest, size: image.length }, [descriptor(MEDIA_TYPES.signature, bytes)]);
  await s.store.putBlob(sm.config);
  await s.store.setSignatures(s.digest, await s.store.putBlob(sm.bytes));
}
