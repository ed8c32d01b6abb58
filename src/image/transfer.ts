/**
 * `uniwasm push` / `uniwasm pull`: moving images and their signatures between
 * the local store and an OCI registry.
 *
 * Push verifies the image in full before sending anything, skips blobs the
 * registry already has, and puts the signature manifest under cosign's tag
 * `sha256-<hex>.sig`. Pull downloads into memory (every size is bounded by
 * the descriptors), verifies every digest, applies the trust policy, and only
 * then writes to the store: a refused image leaves no trace.
 */
import { ImageError } from "./errors.js";
import { digestHex, shortDigest, type Digest } from "./digest.js";
import { loadFromManifest, loadImage } from "./image.js";
import type { Manifest } from "./manifest.js";
import { MEDIA_TYPES, parseOciManifest } from "./oci.js";
import { DEFAULT_TAG, formatReference, parseReference, tagName, type Reference } from "./reference.js";
import { RegistryClient, type RegistryOptions } from "./registry.js";
import { parseEnvelope, parseSignatureManifest, type StoredSignature } from "./signing.js";
import type { ImageStore } from "./store.js";
import { checkSignatures, readTrustPolicy, trustPolicyPath, type TrustResult } from "./trust.js";

/** cosign's tag for an image's signatures: `sha256-<hex>.sig`. */
export function signatureTag(image: Digest): string {
  return `sha256-${digestHex(image)}.sig`;
}

function remoteReference(s: string): Reference & { registry: string } {
  const r = parseReference(s);
  if (!r.registry) {
    throw new ImageError("ref_invalid", `${JSON.stringify(s)} names no registry; use REGISTRY/REPOSITORY[:TAG], e.g. 127.0.0.1:5000/${r.repository}:${r.tag ?? DEFAULT_TAG}`);
  }
  return r as Reference & { registry: string };
}

export interface PushResult {
  reference: string;
  digest: Digest;
  /** Blobs uploaded vs already present in the registry. */
  uploaded: number;
  skipped: number;
  signatures?: Digest;
}

/**
 * Pushes local image `source` to `destination` (default: `source`, which must
 * then name a registry).
 */
export async function pushImage(store: ImageStore, source: string, destination: string | undefined, opts: RegistryOptions = {}): Promise<PushResult> {
  const digest = await store.require(source);
  const dest = remoteReference(destination ?? source);
  const image = await loadImage(store, digest);
  const client = new RegistryClient(dest.registry, opts);
  const progress = opts.onProgress ?? (() => {});
  const blobs = [image.oci.config, ...image.oci.layers];
  const total = blobs.reduce((s, b) => s + b.size, 0);
  let done = 0;
  let uploaded = 0;
  let skipped = 0;
  const sendBlobs = async (list: { digest: Digest; size: number }[]): Promise<void> => {
    for (const b of list) {
      if (await client.hasBlob(dest.repository, b.digest)) {
        skipped++;
      } else {
        const bytes = await store.getBlob(b.digest, "blob", b.size);
        const base = done;
        await client.pushBlob(dest.repository, b.digest, bytes, (n) => progress({ phase: "push", done: base + n, total, label: shortDigest(b.digest) }));
        uploaded++;
      }
      done += b.size;
      progress({ phase: "push", done, total, label: shortDigest(b.digest) });
    }
  };
  await sendBlobs(blobs);
  const rawManifest = await store.getBlob(digest, "image manifest");
  await client.pushManifest(dest.repository, dest.digest ? digest : (dest.tag ?? DEFAULT_TAG), rawManifest, MEDIA_TYPES.ociManifest);
  const result: PushResult = { reference: formatReference({ ...dest, digest: undefined, tag: dest.digest ? undefined : (dest.tag ?? DEFAULT_TAG) }) + `@${digest}`, digest, uploaded, skipped };
  const sigDigest = await store.signaturesOf(digest);
  if (sigDigest) {
    const sigBytes = await store.getBlob(sigDigest, `signature manifest of image ${digest}`);
    const sm = parseSignatureManifest(sigBytes, sigDigest, digest);
    await sendBlobs([sm.config, ...sm.layers]);
    await client.pushManifest(dest.repository, signatureTag(digest), sigBytes, MEDIA_TYPES.ociManifest);
    result.signatures = sigDigest;
  }
  return result;
}

export interface PullResult {
  reference: string;
  digest: Digest;
  /** The local tag given to the image (none when pulled by digest alone). */
  tags: string[];
  manifest: Manifest;
  signatures: number;
  trust: TrustResult;
}

/** Pulls `reference` into `store`, verifying digests and the store's trust policy first. */
export async function pullImage(store: ImageStore, reference: string, opts: RegistryOptions = {}): Promise<PullResult> {
  const ref = remoteReference(reference);
  const client = new RegistryClient(ref.registry, opts);
  const progress = opts.onProgress ?? (() => {});
  const wanted = ref.digest ?? ref.tag ?? DEFAULT_TAG;
  const got = await client.getManifest(ref.repository, wanted);
  if (!got) throw new ImageError("image_not_found", `${ref.registry} has no ${ref.repository}:${wanted}`);
  if (got.mediaType && got.mediaType !== MEDIA_TYPES.ociManifest) {
    throw new ImageError("image_malformed", `${reference} is a ${got.mediaType}, not an OCI image manifest (is it a container image rather than a wasm image?)`);
  }
  const digest = got.digest;
  const oci = parseOciManifest(got.bytes, `image ${digest}: manifest`);
  const total = oci.config.size + oci.layers.reduce((s, l) => s + l.size, 0);
  const blobs = new Map<Digest, Uint8Array>();
  let done = 0;
  const image = await loadFromManifest(got.bytes, digest, async (d, what, size) => {
    const base = done;
    const bytes = await client.getBlob(ref.repository, d, size, what, (n) => progress({ phase: "pull", done: base + n, total, label: shortDigest(d) }));
    done += size;
    blobs.set(d, bytes);
    return bytes;
  });

  const signatures: StoredSignature[] = [];
  let sigManifest: { bytes: Uint8Array; digest: Digest } | undefined;
  const sig = await client.getManifest(ref.repository, signatureTag(digest));
  if (sig) {
    const sm = parseSignatureManifest(sig.bytes, sig.digest, digest);
    sigManifest = sig;
    blobs.set(sm.config.digest, await client.getBlob(ref.repository, sm.config.digest, sm.config.size, `signature config of image ${digest}`));
    for (const l of sm.layers) {
      const bytes = await client.getBlob(ref.repository, l.digest, l.size, `signature ${l.digest} of image ${digest}`);
      blobs.set(l.digest, bytes);
      signatures.push({ descriptor: l, envelope: parseEnvelope(bytes, `signature ${l.digest} of image ${digest}`) });
    }
  }
  const trust = checkSignatures(digest, signatures, await readTrustPolicy(store.root), trustPolicyPath(store.root));

  for (const bytes of blobs.values()) await store.putBlob(bytes);
  await store.putBlob(got.bytes);
  // Pulled by digest alone: stored untagged, reachable by digest.
  const tags = ref.digest && !ref.tag ? [] : [tagName({ registry: ref.registry, repository: ref.repository, tag: ref.tag ?? DEFAULT_TAG })];
  await store.addImage(digest, tags);
  if (sigManifest) {
    await store.putBlob(sigManifest.bytes);
    await store.setSignatures(digest, sigManifest.digest);
  }
  return { reference: `${ref.registry}/${ref.repository}@${digest}`, digest, tags, manifest: image.manifest, signatures: signatures.length, trust };
}
