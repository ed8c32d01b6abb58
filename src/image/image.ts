/**
 * Reading an image back out of the store, checking every part: the manifest
 * blob against the image digest, each blob against its descriptor (digest and
 * size), the config against the layers, uniwasm.toml against the schema, and
 * each files layer against the dirs the manifest declares. Whatever was
 * changed, the error names the part and its digest.
 */
import { ImageError } from "./errors.js";
import { verifyBlob, type Digest } from "./digest.js";
import { parseManifest, MANIFEST_FILE, type Manifest } from "./manifest.js";
import { ANNOTATIONS, MEDIA_TYPES, imageLayers, OCI_BOUNDS, parseOciManifest, parseWasmConfig, type ImageLayers, type OciManifest, type WasmConfig } from "./oci.js";
import { readTar } from "./tar.js";
import type { ImageFiles } from "./grants.js";
import type { ImageStore } from "./store.js";

export interface LoadedImage {
  digest: Digest;
  oci: OciManifest;
  config: WasmConfig;
  layers: ImageLayers;
  manifest: Manifest;
  /** uniwasm.toml as stored (comments and all). */
  manifestText: string;
  module: Uint8Array;
  files: ImageFiles;
  sizes: ImageSizes;
}

export interface ImageSizes {
  manifest: number;
  config: number;
  module: number;
  uniwasmToml: number;
  files: number;
  total: number;
}

/** Loads and fully verifies image `digest` from `store`. */
export async function loadImage(store: ImageStore, digest: Digest): Promise<LoadedImage> {
  const rawManifest = await store.getBlob(digest, "image manifest");
  return loadFromManifest(rawManifest, digest, (d, what, size) => store.getBlob(d, what, size));
}

export type BlobReader = (d: Digest, what: string, size: number) => Promise<Uint8Array>;

/** Verifies an image from its manifest bytes, reading blobs through `read` (store, layout or registry). */
export async function loadFromManifest(rawManifest: Uint8Array, digest: Digest, read: BlobReader): Promise<LoadedImage> {
  const where = `image ${digest}`;
  verifyBlob(rawManifest, digest, "image manifest");
  const oci = parseOciManifest(rawManifest, `${where}: manifest`);
  const layers = imageLayers(oci, where);
  const configBytes = await read(oci.config.digest, `${where}: config`, oci.config.size);
  const config = parseWasmConfig(configBytes, oci, `${where}: config ${oci.config.digest}`);
  const module = await read(layers.module.digest, `${where}: module layer (${MEDIA_TYPES.wasm})`, layers.module.size);
  const tomlBytes = await read(layers.manifest.digest, `${where}: ${MANIFEST_FILE} layer`, layers.manifest.size);
  let manifestText: string;
  try {
    manifestText = new TextDecoder("utf-8", { fatal: true }).decode(tomlBytes);
  } catch {
    throw new ImageError("image_malformed", `${where}: ${MANIFEST_FILE} layer is not UTF-8 text`);
  }
  const manifest = parseManifest(manifestText, `${where}: ${MANIFEST_FILE}`);
  const files = new Map<string, Record<string, Uint8Array>>();
  let filesBytes = 0;
  const declared = manifest.capabilities.dirs.filter((d) => d.files !== undefined).map((d) => d.guest);
  for (const layer of layers.files) {
    const guest = layer.annotations![ANNOTATIONS.filesGuest]!;
    if (!declared.includes(guest)) throw new ImageError("image_malformed", `${where}: files layer ${layer.digest} is for ${guest}, which ${MANIFEST_FILE} does not declare`);
    if (files.has(guest)) throw new ImageError("image_malformed", `${where}: two files layers for ${guest}`);
    const tar = await read(layer.digest, `${where}: files layer for ${guest}`, layer.size);
    filesBytes += tar.length;
    const seed: Record<string, Uint8Array> = {};
    for (const e of readTar(tar, { maxEntries: OCI_BOUNDS.files, maxTotalBytes: OCI_BOUNDS.filesBytes }, `${where}: files layer for ${guest}`, "image_malformed")) {
      if (e.type === "file") seed[e.path] = e.data!;
    }
    files.set(guest, seed);
  }
  for (const g of declared) {
    if (!files.has(g)) throw new ImageError("image_malformed", `${where}: ${MANIFEST_FILE} declares files for ${g}, but the image has no files layer for it`);
  }
  const sizes: ImageSizes = {
    manifest: rawManifest.length,
    config: configBytes.length,
    module: module.length,
    uniwasmToml: tomlBytes.length,
    files: filesBytes,
    total: rawManifest.length + configBytes.length + module.length + tomlBytes.length + filesBytes,
  };
  return { digest, oci, config, layers, manifest, manifestText, module, files, sizes };
}
