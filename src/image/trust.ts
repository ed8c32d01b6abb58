/**
 * The trust policy: which public keys may vouch for an image.
 *
 *   $UNIWASM_HOME/trust.json
 *   {"version": 1, "keys": [{"id": "sha256:…", "name": "alice", "publicKey": "-----BEGIN PUBLIC KEY-----…"}]}
 *
 * With no keys the policy is off: images are still digest-checked in full
 * (tampering is always refused), but need no signature. Once a key is
 * trusted (`uniwasm trust add KEY.pub`), `run`, `pull` and `load` accept only
 * images carrying a valid signature by one of the trusted keys, and say which
 * digest failed and why otherwise.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { randomBytes } from "node:crypto";
import { ImageError } from "./errors.js";
import type { Digest } from "./digest.js";
import { envelopeProblem, keyIdOf, parsePublicKey, readSignatures, shortKeyId, type StoredSignature } from "./signing.js";
import { loadImage, type LoadedImage } from "./image.js";
import type { ImageStore } from "./store.js";

export interface TrustedKey {
  id: string;
  name: string;
  publicKey: string;
}

export interface TrustPolicy {
  version: 1;
  keys: TrustedKey[];
}

export function trustPolicyPath(home: string): string {
  return join(home, "trust.json");
}

export async function readTrustPolicy(home: string): Promise<TrustPolicy> {
  const path = trustPolicyPath(home);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { version: 1, keys: [] };
    throw new ImageError("trust_policy_invalid", `cannot read ${path}: ${(err as Error).message}`);
  }
  let v: TrustPolicy;
  try {
    v = JSON.parse(text) as TrustPolicy;
  } catch (err) {
    throw new ImageError("trust_policy_invalid", `${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (v?.version !== 1 || !Array.isArray(v.keys)) throw new ImageError("trust_policy_invalid", `${path}: expected {"version": 1, "keys": [...]}`);
  v.keys.forEach((k, i) => {
    if (typeof k?.publicKey !== "string" || typeof k.name !== "string") throw new ImageError("trust_policy_invalid", `${path}: keys[${i}] needs name and publicKey`);
    const key = parsePublicKey(k.publicKey, `${path}: keys[${i}] (${k.name})`);
    // The id is recomputed, never trusted from the file.
    k.id = keyIdOf(key);
  });
  return v;
}

async function writeTrustPolicy(home: string, p: TrustPolicy): Promise<void> {
  await mkdir(home, { recursive: true });
  const path = trustPolicyPath(home);
  const tmp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  await writeFile(tmp, JSON.stringify(p, null, 2) + "\n");
  await rename(tmp, path);
}

/** Adds a public key file to the policy; `name` defaults to the file name without `.pub`. */
export async function trustKey(home: string, publicKeyFile: string, name?: string): Promise<TrustedKey> {
  let pem: string;
  try {
    pem = await readFile(publicKeyFile, "utf8");
  } catch (err) {
    throw new ImageError("key_invalid", `cannot read ${publicKeyFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const key = parsePublicKey(pem, publicKeyFile);
  const entry: TrustedKey = { id: keyIdOf(key), name: name ?? basename(publicKeyFile).replace(/\.(pub|pem)$/, ""), publicKey: key.export({ format: "pem", type: "spki" }).toString() };
  const policy = await readTrustPolicy(home);
  policy.keys = policy.keys.filter((k) => k.id !== entry.id);
  policy.keys.push(entry);
  await writeTrustPolicy(home, policy);
  return entry;
}

/** Removes a key by name or (a prefix of) its id; returns what was removed. */
export async function untrustKey(home: string, nameOrId: string): Promise<TrustedKey[]> {
  const policy = await readTrustPolicy(home);
  const match = (k: TrustedKey): boolean => k.name === nameOrId || k.id === nameOrId || (nameOrId.length >= 8 && k.id.replace(/^sha256:/, "").startsWith(nameOrId.replace(/^sha256:/, "")));
  const removed = policy.keys.filter(match);
  if (removed.length === 0) throw new ImageError("key_invalid", `no trusted key named or with id ${JSON.stringify(nameOrId)}; see \`uniwasm trust list\``);
  policy.keys = policy.keys.filter((k) => !match(k));
  await writeTrustPolicy(home, policy);
  return removed;
}

export interface TrustResult {
  /** True when the policy is on and a trusted key's signature verified. */
  verified: boolean;
  /** The trusted key that vouched for the image. */
  signedBy?: TrustedKey;
  /** Why no signature was needed, when `verified` is false. */
  note?: string;
}

/**
 * Decides whether `signatures` make image `digest` acceptable under `policy`;
 * throws signature_missing / signature_invalid / signature_untrusted. Used
 * for images in the store and for images arriving from a registry or layout.
 */
export function checkSignatures(digest: Digest, signatures: readonly StoredSignature[], policy: TrustPolicy, policyPath: string): TrustResult {
  if (policy.keys.length === 0) return { verified: false, note: "no trust policy (no trusted keys): digests checked, signatures not required" };
  const trusted = policy.keys.map((k) => `${k.name} (${shortKeyId(k.id)})`).join(", ");
  if (signatures.length === 0) {
    throw new ImageError("signature_missing", `image ${digest} is not signed; the trust policy ${policyPath} requires a signature by one of: ${trusted}`);
  }
  const failures: string[] = [];
  for (const s of signatures) {
    const k = policy.keys.find((t) => t.id === s.envelope.keyId);
    if (!k) continue;
    const problem = envelopeProblem(s.envelope, parsePublicKey(k.publicKey, `trusted key ${k.name}`), digest);
    if (!problem) return { verified: true, signedBy: k };
    failures.push(`signature ${s.descriptor.digest} by trusted key ${k.name} (${shortKeyId(k.id)}): ${problem}`);
  }
  if (failures.length > 0) throw new ImageError("signature_invalid", `image ${digest} is refused: ${failures.join("; ")}`);
  const by = signatures.map((s) => shortKeyId(s.envelope.keyId)).join(", ");
  throw new ImageError("signature_untrusted", `image ${digest} is signed only by keys the trust policy ${policyPath} does not list (${by}); trusted: ${trusted} (add a key with \`uniwasm trust add KEY.pub\`)`);
}

/** Loads image `digest` with every blob checked, then applies the trust policy of `home`. */
export async function verifyImage(store: ImageStore, digest: Digest, home = store.root): Promise<{ image: LoadedImage; trust: TrustResult }> {
  const image = await loadImage(store, digest);
  const policy = await readTrustPolicy(home);
  const signatures = await readSignatures(store, digest);
  const trust = checkSignatures(digest, signatures, policy, trustPolicyPath(home));
  return { image, trust };
}
