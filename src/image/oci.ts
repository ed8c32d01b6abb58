/**
 * OCI shapes: media types, descriptors, image manifests, and the checks that
 * a manifest read from the store, a layout or a registry has the shape
 * uniwasm writes.
 *
 * An image follows the CNCF WebAssembly OCI artifact layout:
 *   config  application/vnd.wasm.config.v0+json  {created, architecture: "wasm", os: "wasip1", layerDigests}
 *   layer 0 application/wasm                       the module
 *   layer 1 application/vnd.uniwasm.manifest.v1+toml   uniwasm.toml, byte for byte
 *   layer 2.. application/vnd.uniwasm.files.v1.tar    one ustar per `files` dir,
 *            annotated with dev.uniwasm.files.guest = the guest path
 * Tools that know only the CNCF layout see a config and a wasm layer; the
 * extra layers carry what uniwasm needs to run the module with its grants.
 */
import { ImageError } from "./errors.js";
import { isDigest, sha256, type Digest } from "./digest.js";

export const MEDIA_TYPES = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociEmpty: "application/vnd.oci.empty.v1+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  wasmConfig: "application/vnd.wasm.config.v0+json",
  wasm: "application/wasm",
  uniwasmManifest: "application/vnd.uniwasm.manifest.v1+toml",
  uniwasmFiles: "application/vnd.uniwasm.files.v1.tar",
  signature: "application/vnd.uniwasm.signature.v1+json",
} as const;

export const ANNOTATIONS = {
  title: "org.opencontainers.image.title",
  version: "org.opencontainers.image.version",
  description: "org.opencontainers.image.description",
  refName: "org.opencontainers.image.ref.name",
  filesGuest: "dev.uniwasm.files.guest",
} as const;

/** Bounds on what is read from outside, so a hostile manifest cannot exhaust memory. */
export const OCI_BOUNDS = {
  manifestBytes: 4 * 1024 * 1024,
  configBytes: 1024 * 1024,
  layers: 64,
  moduleBytes: 512 * 1024 * 1024,
  filesBytes: 256 * 1024 * 1024,
  files: 10_000,
  signatures: 64,
} as const;

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
}

export interface OciManifest {
  schemaVersion: 2;
  mediaType: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** The CNCF wasm config, with a fixed `created` so builds are reproducible. */
export interface WasmConfig {
  created: string;
  architecture: "wasm";
  os: "wasip1";
  layerDigests: Digest[];
}

/** The reproducible-build epoch (as SOURCE_DATE_EPOCH=0 would give). */
export const FIXED_CREATED = "1970-01-01T00:00:00Z";

const enc = new TextEncoder();

/** JSON bytes with keys in insertion order: callers build objects in a fixed order, so output is stable. */
export function jsonBytes(v: unknown): Uint8Array {
  return enc.encode(JSON.stringify(v));
}

export function descriptor(mediaType: string, bytes: Uint8Array, annotations?: Record<string, string>): Descriptor {
  const d: Descriptor = { mediaType, digest: sha256(bytes), size: bytes.length };
  if (annotations && Object.keys(annotations).length > 0) d.annotations = annotations;
  return d;
}

function parseJson(bytes: Uint8Array, what: string, max: number): unknown {
  if (bytes.length > max) throw new ImageError("image_malformed", `${what} is ${bytes.length} bytes; at most ${max} allowed`);
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (err) {
    throw new ImageError("image_malformed", `${what} is not valid JSON: ${(err as Error).message}`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function parseDescriptor(v: unknown, what: string): Descriptor {
  const bad = (m: string): never => {
    throw new ImageError("image_malformed", `${what}: ${m}`);
  };
  if (!isObject(v)) bad("is not an object");
  const o = v as Record<string, unknown>;
  if (typeof o.mediaType !== "string" || o.mediaType.length > 255) bad("mediaType is missing or not a string");
  if (typeof o.digest !== "string" || !isDigest(o.digest)) bad(`digest ${JSON.stringify(o.digest)} is not a sha256 digest`);
  if (typeof o.size !== "number" || !Number.isSafeInteger(o.size) || o.size < 0) bad("size is not a non-negative integer");
  const d: Descriptor = { mediaType: o.mediaType as string, digest: o.digest as Digest, size: o.size as number };
  if (o.annotations !== undefined) {
    if (!isObject(o.annotations) || Object.values(o.annotations).some((x) => typeof x !== "string")) bad("annotations must map strings to strings");
    d.annotations = o.annotations as Record<string, string>;
  }
  return d;
}

/** Parses any OCI image manifest (an image or a signature artifact). */
export function parseOciManifest(bytes: Uint8Array, what: string): OciManifest {
  const v = parseJson(bytes, what, OCI_BOUNDS.manifestBytes);
  const bad = (m: string): never => {
    throw new ImageError("image_malformed", `${what}: ${m}`);
  };
  if (!isObject(v)) bad("is not a JSON object");
  const o = v as Record<string, unknown>;
  if (o.schemaVersion !== 2) bad(`schemaVersion is ${JSON.stringify(o.schemaVersion)}, expected 2`);
  if (o.mediaType === MEDIA_TYPES.ociIndex) bad("is an OCI image index (a multi-platform list); uniwasm images are single manifests");
  if (o.mediaType !== MEDIA_TYPES.ociManifest) bad(`mediaType is ${JSON.stringify(o.mediaType)}, expected ${MEDIA_TYPES.ociManifest}`);
  if (!Array.isArray(o.layers)) bad("layers is not an array");
  const layersIn = o.layers as unknown[];
  if (layersIn.length > OCI_BOUNDS.layers) bad(`has ${layersIn.length} layers; at most ${OCI_BOUNDS.layers}`);
  const m: OciManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: parseDescriptor(o.config, `${what} config descriptor`),
    layers: layersIn.map((l, i) => parseDescriptor(l, `${what} layer ${i}`)),
  };
  if (typeof o.artifactType === "string") m.artifactType = o.artifactType;
  if (o.subject !== undefined) m.subject = parseDescriptor(o.subject, `${what} subject`);
  if (isObject(o.annotations)) m.annotations = o.annotations as Record<string, string>;
  return m;
}

/** The layers of a uniwasm image, by role. */
export interface ImageLayers {
  module: Descriptor;
  manifest: Descriptor;
  files: Descriptor[];
}

/** Checks a manifest is a uniwasm image (config + wasm + toml + files layers) and names its layers. */
export function imageLayers(m: OciManifest, what: string): ImageLayers {
  const bad = (msg: string): never => {
    throw new ImageError("image_malformed", `${what}: ${msg}`);
  };
  if (m.config.mediaType !== MEDIA_TYPES.wasmConfig) bad(`config mediaType is ${JSON.stringify(m.config.mediaType)}, expected ${MEDIA_TYPES.wasmConfig} (not a wasm image)`);
  const wasm = m.layers.filter((l) => l.mediaType === MEDIA_TYPES.wasm);
  if (wasm.length !== 1) bad(`has ${wasm.length} ${MEDIA_TYPES.wasm} layers; a uniwasm image has exactly one`);
  const toml = m.layers.filter((l) => l.mediaType === MEDIA_TYPES.uniwasmManifest);
  if (toml.length !== 1) bad(`has ${toml.length} ${MEDIA_TYPES.uniwasmManifest} layers; a uniwasm image has exactly one (was it built by uniwasm?)`);
  const files = m.layers.filter((l) => l.mediaType === MEDIA_TYPES.uniwasmFiles);
  const other = m.layers.find((l) => ![MEDIA_TYPES.wasm, MEDIA_TYPES.uniwasmManifest, MEDIA_TYPES.uniwasmFiles].includes(l.mediaType as never));
  if (other) bad(`has a layer of unknown mediaType ${JSON.stringify(other.mediaType)}`);
  for (const f of files) {
    if (!f.annotations?.[ANNOTATIONS.filesGuest]) bad(`files layer ${f.digest} has no ${ANNOTATIONS.filesGuest} annotation`);
  }
  if (wasm[0]!.size > OCI_BOUNDS.moduleBytes) bad(`module layer is ${wasm[0]!.size} bytes; at most ${OCI_BOUNDS.moduleBytes}`);
  const filesTotal = files.reduce((s, f) => s + f.size, 0);
  if (filesTotal > OCI_BOUNDS.filesBytes * 2) bad(`files layers total ${filesTotal} bytes; too large`);
  return { module: wasm[0]!, manifest: toml[0]!, files };
}

/** Parses and checks the wasm config against the manifest's layers. */
export function parseWasmConfig(bytes: Uint8Array, m: OciManifest, what: string): WasmConfig {
  const v = parseJson(bytes, what, OCI_BOUNDS.configBytes);
  const bad = (msg: string): never => {
    throw new ImageError("image_malformed", `${what}: ${msg}`);
  };
  if (!isObject(v)) bad("is not a JSON object");
  const o = v as Record<string, unknown>;
  if (o.architecture !== "wasm") bad(`architecture is ${JSON.stringify(o.architecture)}, expected "wasm"`);
  if (o.os !== "wasip1") bad(`os is ${JSON.stringify(o.os)}, expected "wasip1" (uniwasm runs WASI preview 1 modules)`);
  if (!Array.isArray(o.layerDigests) || o.layerDigests.some((d) => typeof d !== "string" || !isDigest(d))) bad("layerDigests is not a list of digests");
  const ld = o.layerDigests as Digest[];
  const expected = m.layers.map((l) => l.digest);
  if (ld.length !== expected.length || ld.some((d, i) => d !== expected[i])) bad("layerDigests does not list the manifest's layers in order");
  return { created: typeof o.created === "string" ? o.created : FIXED_CREATED, architecture: "wasm", os: "wasip1", layerDigests: ld };
}
