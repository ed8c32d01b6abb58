/**
 * `uniwasm save` / `uniwasm load`: images as an OCI image layout, as a
 * directory or as a tarball of that directory (what `skopeo`, `oras` and
 * `crane` read and write).
 *
 *   oci-layout            {"imageLayoutVersion": "1.0.0"}
 *   index.json            one entry per tag (and per signature manifest)
 *   blobs/sha256/<hex>
 *
 * Each image entry carries `org.opencontainers.image.ref.name` (the tag) and
 * `io.containerd.image.name` (the full name); a signature manifest entry is
 * named `sha256-<hex>.sig`, as in a registry. Saved tarballs are
 * deterministic. Load verifies every digest and applies the trust policy
 * before writing to the store, as pull does.
 */
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ImageError } from "./errors.js";
import { digestHex, isDigest, sha256, verifyBlob, type Digest } from "./digest.js";
import { loadFromManifest, loadImage } from "./image.js";
import { ANNOTATIONS, jsonBytes, MEDIA_TYPES, OCI_BOUNDS, parseOciManifest, type Descriptor } from "./oci.js";
import { parseReference, tagName } from "./reference.js";
import { parseEnvelope, parseSignatureManifest, type StoredSignature } from "./signing.js";
import type { ImageStore } from "./store.js";
import { readTar, writeTar, type TarEntry } from "./tar.js";
import { checkSignatures, readTrustPolicy, trustPolicyPath, type TrustResult } from "./trust.js";
import { signatureTag } from "./transfer.js";

const CONTAINERD_NAME = "io.containerd.image.name";
const LAYOUT_MAX_BYTES = 2 * 1024 * 1024 * 1024;

export interface SaveResult {
  path: string;
  format: "dir" | "tar";
  images: { digest: Digest; tags: string[] }[];
  blobs: number;
}

/** Saves images as an OCI layout tarball in memory (what the node's API sends). */
export async function saveImagesToTar(store: ImageStore, refs: readonly string[]): Promise<{ tar: Uint8Array; images: SaveResult["images"] }> {
  const { files, images } = await layoutFiles(store, refs);
  return { tar: layoutTar(files), images };
}

/** Saves the images `refs` (with their tags and signatures) to `out`: a directory, or a tarball when it ends in `.tar`. */
export async function saveImages(store: ImageStore, refs: readonly string[], out: string): Promise<SaveResult> {
  const { files, images } = await layoutFiles(store, refs);
  const blobs = [...files.keys()].filter((k) => k.startsWith("blobs/")).length;
  if (out.endsWith(".tar")) {
    await writeFile(out, layoutTar(files));
    return { path: out, format: "tar", images, blobs };
  }
  await mkdir(join(out, "blobs", "sha256"), { recursive: true });
  for (const [path, data] of files) await writeFile(join(out, path), data);
  return { path: out, format: "dir", images, blobs };
}

function layoutTar(files: Map<string, Uint8Array>): Uint8Array {
  const entries: TarEntry[] = [
    { path: "blobs", type: "dir" },
    { path: "blobs/sha256", type: "dir" },
    ...[...files].map(([path, data]) => ({ path, type: "file" as const, data })),
  ];
  return writeTar(entries);
}

/** The files of an OCI layout holding `refs`: oci-layout, index.json and blobs/sha256/*. */
async function layoutFiles(store: ImageStore, refs: readonly string[]): Promise<{ files: Map<string, Uint8Array>; images: SaveResult["images"] }> {
  const index = await store.readIndex();
  const files = new Map<string, Uint8Array>();
  const manifests: Descriptor[] = [];
  const images: SaveResult["images"] = [];
  const addBlob = (bytes: Uint8Array): void => {
    files.set(`blobs/sha256/${digestHex(sha256(bytes))}`, bytes);
  };
  for (const ref of refs) {
    const digest = await store.require(ref);
    if (images.some((i) => i.digest === digest)) continue;
    const image = await loadImage(store, digest);
    const raw = await store.getBlob(digest, "image manifest");
    addBlob(raw);
    addBlob(await store.getBlob(image.oci.config.digest, "config"));
    for (const l of image.oci.layers) addBlob(await store.getBlob(l.digest, "layer", l.size));
    const tags = Object.keys(index.tags).filter((t) => index.tags[t] === digest).sort();
    for (const t of tags.length ? tags : [undefined]) {
      const annotations: Record<string, string> = {};
      if (t) {
        annotations[ANNOTATIONS.refName] = parseReference(t).tag ?? "latest";
        annotations[CONTAINERD_NAME] = t;
      }
      manifests.push({ mediaType: MEDIA_TYPES.ociManifest, digest, size: raw.length, ...(t ? { annotations } : {}) });
    }
    const sig = index.images[digest]?.signatures;
    if (sig) {
      const sigBytes = await store.getBlob(sig, `signature manifest of image ${digest}`);
      const sm = parseSignatureManifest(sigBytes, sig, digest);
      addBlob(sigBytes);
      addBlob(await store.getBlob(sm.config.digest, "signature config"));
      for (const l of sm.layers) addBlob(await store.getBlob(l.digest, "signature", l.size));
      manifests.push({ mediaType: MEDIA_TYPES.ociManifest, digest: sig, size: sigBytes.length, annotations: { [ANNOTATIONS.refName]: signatureTag(digest) } });
    }
    images.push({ digest, tags });
  }
  files.set("oci-layout", jsonBytes({ imageLayoutVersion: "1.0.0" }));
  files.set("index.json", jsonBytes({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests }));
  return { files, images };
}

export interface LoadResult {
  images: { digest: Digest; tags: string[]; trust: TrustResult }[];
}

/**
 * Loads every image of an OCI layout into `store`: `source` is a directory or
 * tarball path, or the bytes of a tarball (an upload to the node's API).
 */
export async function loadImages(store: ImageStore, source: string | Uint8Array): Promise<LoadResult> {
  const path = typeof source === "string" ? source : "uploaded layout";
  const read = typeof source === "string" ? await openLayout(source) : tarReader(source, path);
  const layoutBytes = await read("oci-layout");
  if (!layoutBytes) throw new ImageError("layout_invalid", `${path}: no oci-layout file; not an OCI image layout`);
  const indexBytes = await read("index.json");
  if (!indexBytes) throw new ImageError("layout_invalid", `${path}: no index.json`);
  let index: { manifests?: unknown };
  try {
    index = JSON.parse(new TextDecoder().decode(indexBytes)) as typeof index;
  } catch (err) {
    throw new ImageError("layout_invalid", `${path}: index.json is not JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(index.manifests)) throw new ImageError("layout_invalid", `${path}: index.json has no manifests list`);
  const entries = index.manifests as { digest?: string; mediaType?: string; annotations?: Record<string, string> }[];
  const blob = async (d: Digest, what: string, size?: number): Promise<Uint8Array> => {
    const bytes = await read(`blobs/sha256/${digestHex(d)}`);
    if (!bytes) throw new ImageError("blob_missing", `${path}: ${what} ${d} is missing from the layout`);
    verifyBlob(bytes, d, what, size);
    return bytes;
  };
  const sigByName = new Map<string, Digest>();
  for (const e of entries) {
    const name = e.annotations?.[ANNOTATIONS.refName];
    if (name && /^sha256-[0-9a-f]{64}\.sig$/.test(name) && typeof e.digest === "string" && isDigest(e.digest)) sigByName.set(name, e.digest);
  }
  const byDigest = new Map<Digest, string[]>();
  for (const e of entries) {
    if (typeof e.digest !== "string" || !isDigest(e.digest)) throw new ImageError("layout_invalid", `${path}: index.json entry with digest ${JSON.stringify(e.digest)}`);
    const refName = e.annotations?.[ANNOTATIONS.refName];
    if (refName && sigByName.get(refName) === e.digest) continue;
    if (e.mediaType !== MEDIA_TYPES.ociManifest) throw new ImageError("layout_invalid", `${path}: index.json entry ${e.digest} is a ${e.mediaType}; only OCI image manifests can be loaded`);
    const names = byDigest.get(e.digest) ?? [];
    const full = e.annotations?.[CONTAINERD_NAME];
    if (full) names.push(tagName(parseReference(full)));
    else if (refName) names.push(refName);
    byDigest.set(e.digest, names);
  }
  // Verify everything (and the trust policy) before writing anything.
  const policy = await readTrustPolicy(store.root);
  const toStore: Uint8Array[] = [];
  const result: LoadResult = { images: [] };
  const sigs = new Map<Digest, Digest>();
  for (const [digest, names] of byDigest) {
    const raw = await blob(digest, "image manifest");
    const image = await loadFromManifest(raw, digest, (d, what, size) => blob(d, what, size));
    // Other tools name entries by ref.name only: a bare tag ("1.0.0") goes with the image's own name.
    const tags = names.map((n) => (n.includes(":") || n.includes("/") ? n : `${image.manifest.name}:${n}`)).map((n) => tagName(parseReference(n)));
    toStore.push(raw, await blob(image.oci.config.digest, "config"));
    for (const l of image.oci.layers) toStore.push(await blob(l.digest, "layer", l.size));
    const signatures: StoredSignature[] = [];
    const sigDigest = sigByName.get(signatureTag(digest));
    if (sigDigest) {
      const sigBytes = await blob(sigDigest, `signature manifest of image ${digest}`);
      const sm = parseSignatureManifest(sigBytes, sigDigest, digest);
      toStore.push(sigBytes, await blob(sm.config.digest, "signature config", sm.config.size));
      for (const l of sm.layers) {
        const b = await blob(l.digest, `signature ${l.digest} of image ${digest}`, l.size);
        toStore.push(b);
        signatures.push({ descriptor: l, envelope: parseEnvelope(b, `signature ${l.digest}`) });
      }
      sigs.set(digest, sigDigest);
    }
    const trust = checkSignatures(digest, signatures, policy, trustPolicyPath(store.root));
    result.images.push({ digest, tags, trust });
  }
  for (const b of toStore) await store.putBlob(b);
  for (const img of result.images) {
    await store.addImage(img.digest, img.tags);
    const s = sigs.get(img.digest);
    if (s) await store.setSignatures(img.digest, s);
  }
  return result;
}

type LayoutReader = (rel: string) => Promise<Uint8Array | undefined>;

async function openLayout(path: string): Promise<LayoutReader> {
  let st;
  try {
    st = await stat(path);
  } catch {
    throw new ImageError("layout_invalid", `${path} does not exist`);
  }
  if (st.isDirectory()) {
    return async (rel) => {
      try {
        return await readFile(join(path, rel));
      } catch {
        return undefined;
      }
    };
  }
  if (st.size > LAYOUT_MAX_BYTES) throw new ImageError("layout_invalid", `${path} is ${st.size} bytes; at most ${LAYOUT_MAX_BYTES}`);
  return tarReader(await readFile(path), path);
}

function tarReader(bytes: Uint8Array, what: string): LayoutReader {
  if (bytes.length > LAYOUT_MAX_BYTES) throw new ImageError("layout_invalid", `${what} is ${bytes.length} bytes; at most ${LAYOUT_MAX_BYTES}`);
  const entries = readTar(bytes, { maxEntries: OCI_BOUNDS.layers * 64 + 16, maxTotalBytes: LAYOUT_MAX_BYTES }, what);
  const files = new Map(entries.filter((e) => e.type === "file").map((e) => [e.path, e.data!]));
  return async (rel) => files.get(rel);
}

