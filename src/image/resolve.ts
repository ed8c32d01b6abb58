/**
 * From an image reference to what the runner needs: the verified module
 * bytes and the KernelOptions its manifest grants. This is how
 * `uniwasm run IMAGE` (and the node) start an image.
 */
import type { KernelOptions } from "../kernel/options.js";
import type { Digest } from "./digest.js";
import { manifestToKernelOptions } from "./grants.js";
import type { Manifest } from "./manifest.js";
import type { Limits } from "../limits.js";
import { ImageStore } from "./store.js";
import { verifyImage, type TrustResult } from "./trust.js";

export interface ResolveOptions {
  /** Store directory; default $UNIWASM_HOME or ~/.uniwasm. */
  home?: string;
  /** Arguments appended to argv after the manifest's args. */
  args?: readonly string[];
}

export interface ResolvedImage {
  digest: Digest;
  /** The module, as verified against the image digest. */
  bytes: Uint8Array;
  kernelOptions: KernelOptions;
  manifest: Manifest;
  /** The manifest's limits (the one limits type: pass as the sandbox's `limits`); unset ones are left to the runner's defaults. */
  limits: Limits;
  /** Listening sockets the runner must open and pass as kernelOptions.listeners. */
  listen: string[];
  trust: TrustResult;
}

/**
 * Resolves `ref` (tag, digest or id prefix) in the local store. Returns null
 * when no image matches, so a caller can fall back to treating `ref` as a
 * file. Throws ImageError when the image exists but is tampered with or
 * refused by the trust policy.
 */
export async function resolveImage(ref: string, options: ResolveOptions = {}): Promise<ResolvedImage | null> {
  const store = new ImageStore(options.home);
  const digest = await store.resolve(ref);
  if (!digest) return null;
  const { image, trust } = await verifyImage(store, digest);
  const extras = options.args ? { args: options.args } : {};
  return {
    digest,
    bytes: image.module,
    kernelOptions: manifestToKernelOptions(image.manifest, image.files, extras),
    manifest: image.manifest,
    limits: image.manifest.limits,
    listen: [...image.manifest.capabilities.listen],
    trust,
  };
}
