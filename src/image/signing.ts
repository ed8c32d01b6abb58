/**
 * Ed25519 image signatures, stored the way cosign stores them: beside the
 * image, as an OCI artifact that points back at it.
 *
 * A signature envelope (media type application/vnd.uniwasm.signature.v1+json)
 * is `{keyId, payload, signature}`: `payload` (base64) is the JSON
 * `{"type":"uniwasm.image.signature/v1","image":"sha256:..."}` and
 * `signature` (base64) is Ed25519 over exactly those payload bytes. Signing the
 * manifest digest signs everything: the manifest lists every blob by digest.
 * `keyId` is the sha256 of the public key's SPKI DER encoding.
 *
 * An image's signatures are the layers of one signature manifest
 * (artifactType = the envelope type, `subject` = the image). In a registry it
 * is tagged `sha256-<hex>.sig` (cosign's scheme, which every registry can
 * store); locally the store index maps the image to it.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { ImageError } from "./errors.js";
import { isDigest, sha256, type Digest } from "./digest.js";
import { descriptor, jsonBytes, MEDIA_TYPES, OCI_BOUNDS, parseOciManifest, type Descriptor, type OciManifest } from "./oci.js";
import type { ImageStore } from "./store.js";

export const SIGNATURE_PAYLOAD_TYPE = "uniwasm.image.signature/v1";

export interface SignatureEnvelope {
  keyId: string;
  payload: string;
  signature: string;
}

export interface KeyPairPem {
  privateKey: string;
  publicKey: string;
  keyId: string;
}

export function generateKeyPair(): KeyPairPem {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return {
    privateKey: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    publicKey: publicKey.export({ format: "pem", type: "spki" }).toString(),
    keyId: keyIdOf(publicKey),
  };
}

/** `sha256:` of the SPKI DER: the same key always has the same id. */
export function keyIdOf(key: KeyObject): string {
  const pub = key.type === "private" ? createPublicKey(key) : key;
  return sha256(pub.export({ format: "der", type: "spki" }));
}

export function shortKeyId(id: string): string {
  return id.replace(/^sha256:/, "").slice(0, 16);
}

export async function loadPrivateKey(path: string): Promise<KeyObject> {
  const pem = await readKeyFile(path);
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new ImageError("key_invalid", `${path} is not a PEM private key: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== "ed25519") throw new ImageError("key_invalid", `${path} is a ${key.asymmetricKeyType} key; uniwasm signs with Ed25519 (uniwasm key generate)`);
  return key;
}

export function parsePublicKey(pem: string, what: string): KeyObject {
  // createPublicKey would quietly derive the public half from a private key.
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) throw new ImageError("key_invalid", `${what} holds a private key; trust only the public half (the .pub file)`);
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new ImageError("key_invalid", `${what} is not a PEM public key: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== "ed25519") throw new ImageError("key_invalid", `${what} is a ${key.asymmetricKeyType} key; uniwasm verifies Ed25519`);
  return key;
}

async function readKeyFile(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    throw new ImageError("key_invalid", `cannot read key ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The exact bytes that are signed for `image`. */
export function signaturePayload(image: Digest): Uint8Array {
  return jsonBytes({ type: SIGNATURE_PAYLOAD_TYPE, image });
}

export function makeEnvelope(image: Digest, key: KeyObject): SignatureEnvelope {
  const payload = signaturePayload(image);
  return {
    keyId: keyIdOf(key),
    payload: Buffer.from(payload).toString("base64"),
    signature: sign(null, payload, key).toString("base64"),
  };
}

/** Builds the signature manifest for `image` from envelope descriptors (sorted, so it is deterministic). */
export function signatureManifest(image: Descriptor, envelopes: Descriptor[]): { manifest: OciManifest; bytes: Uint8Array; config: Uint8Array } {
  const config = new TextEncoder().encode("{}");
  const layers = [...envelopes].sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
  const manifest: OciManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    artifactType: MEDIA_TYPES.signature,
    config: descriptor(MEDIA_TYPES.ociEmpty, config),
    layers,
    subject: image,
  };
  return { manifest, bytes: jsonBytes(manifest), config };
}

/**
 * Signs `image` with `key` and records the signature in the store (replacing
 * an earlier signature by the same key). Returns the key id.
 */
export async function signImage(store: ImageStore, image: Digest, key: KeyObject): Promise<string> {
  const imageBytes = await store.getBlob(image, "image manifest");
  const env = makeEnvelope(image, key);
  const envBytes = jsonBytes(env);
  await store.putBlob(envBytes);
  let layers: Descriptor[] = [];
  const existing = await store.signaturesOf(image);
  if (existing) {
    const sigs = await readSignatures(store, image);
    layers = sigs.filter((s) => s.envelope.keyId !== env.keyId).map((s) => s.descriptor);
  }
  layers.push(descriptor(MEDIA_TYPES.signature, envBytes));
  const { bytes, config } = signatureManifest({ mediaType: MEDIA_TYPES.ociManifest, digest: image, size: imageBytes.length }, layers);
  await store.putBlob(config);
  const sigDigest = await store.putBlob(bytes);
  await store.setSignatures(image, sigDigest);
  return env.keyId;
}

export interface StoredSignature {
  descriptor: Descriptor;
  envelope: SignatureEnvelope;
}

/** Parses a signature manifest's bytes and checks it refers to `image`. */
export function parseSignatureManifest(bytes: Uint8Array, sigDigest: Digest, image: Digest): OciManifest {
  const what = `signature manifest ${sigDigest} of image ${image}`;
  const m = parseOciManifest(bytes, what);
  if (m.artifactType !== MEDIA_TYPES.signature) throw new ImageError("signature_invalid", `${what}: artifactType is ${JSON.stringify(m.artifactType)}, expected ${MEDIA_TYPES.signature}`);
  if (m.subject?.digest !== image) throw new ImageError("signature_invalid", `${what}: it refers to ${m.subject?.digest ?? "no image"}, not ${image}`);
  if (m.layers.length > OCI_BOUNDS.signatures) throw new ImageError("signature_invalid", `${what}: ${m.layers.length} signatures; at most ${OCI_BOUNDS.signatures}`);
  const bad = m.layers.find((l) => l.mediaType !== MEDIA_TYPES.signature);
  if (bad) throw new ImageError("signature_invalid", `${what}: layer ${bad.digest} has mediaType ${bad.mediaType}, expected ${MEDIA_TYPES.signature}`);
  return m;
}

export function parseEnvelope(bytes: Uint8Array, what: string): SignatureEnvelope {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new ImageError("signature_invalid", `${what} is not valid JSON`);
  }
  const o = v as Record<string, unknown>;
  if (typeof o !== "object" || o === null || typeof o.keyId !== "string" || typeof o.payload !== "string" || typeof o.signature !== "string" || !isDigest(o.keyId)) {
    throw new ImageError("signature_invalid", `${what} is not a signature envelope {keyId, payload, signature}`);
  }
  return { keyId: o.keyId, payload: o.payload, signature: o.signature };
}

/** The signatures stored for `image` (none when unsigned); blobs are digest-checked. */
export async function readSignatures(store: ImageStore, image: Digest): Promise<StoredSignature[]> {
  const sigDigest = await store.signaturesOf(image);
  if (!sigDigest) return [];
  const m = parseSignatureManifest(await store.getBlob(sigDigest, `signature manifest of image ${image}`), sigDigest, image);
  const out: StoredSignature[] = [];
  for (const l of m.layers) {
    const bytes = await store.getBlob(l.digest, `signature ${l.digest} of image ${image}`, l.size);
    out.push({ descriptor: l, envelope: parseEnvelope(bytes, `signature ${l.digest} of image ${image}`) });
  }
  return out;
}

/**
 * Checks one envelope against `key` and `image`. Returns undefined when it
 * verifies, else what failed (a tampered signature or payload, or a
 * signature made for a different image).
 */
export function envelopeProblem(env: SignatureEnvelope, key: KeyObject, image: Digest): string | undefined {
  const payload = Buffer.from(env.payload, "base64");
  const signature = Buffer.from(env.signature, "base64");
  let ok = false;
  try {
    ok = signature.length === 64 && verify(null, payload, key, signature);
  } catch {
    ok = false;
  }
  if (!ok) return "the Ed25519 signature does not verify over its payload (signature or payload tampered with)";
  let p: { type?: unknown; image?: unknown };
  try {
    p = JSON.parse(payload.toString("utf8")) as typeof p;
  } catch {
    return "the signed payload is not JSON";
  }
  if (p.type !== SIGNATURE_PAYLOAD_TYPE) return `the signed payload has type ${JSON.stringify(p.type)}, expected ${SIGNATURE_PAYLOAD_TYPE}`;
  if (p.image !== image) return `it signs image ${String(p.image)}, not ${image}`;
  return undefined;
}
