import type { ImageConfig } from "../store/types.js";
import type { LoadedDir } from "../manager/image-grants.js";
import { ApiError } from "./errors.js";

export type { LoadedDir };

/** A module with its config, from an image tarball or a registry. */
export interface LoadedModule {
  digest: string;
  name: string;
  module: Uint8Array;
  config: ImageConfig;
  /** Key id of a trusted signature, or null when unsigned. */
  signedBy: string | null;
  /** Kernel capabilities the image's manifest grants (absent: the kernel's defaults). */
  capabilities?: string[];
  /** In-memory dirs preopened for every instance, in manifest order. */
  dirs?: LoadedDir[];
}

/**
 * Where the node gets images beyond raw module uploads, and its signature
 * policy. The image layer (src/image) plugs in here; without it, tarball
 * uploads and pulls answer `not_implemented`.
 */
export interface ImageSource {
  fromTarball(bytes: Uint8Array): Promise<LoadedModule>;
  pull(ref: string, opts: { insecure: boolean }): Promise<LoadedModule>;
  /** Throws `signature_required` when the node's policy refuses an image signed by `signedBy` (null = unsigned). */
  checkPolicy(signedBy: string | null): void;
}

export type SignaturePolicy = "none" | "require-trusted";

export function basicImageSource(policy: SignaturePolicy): ImageSource {
  return {
    fromTarball: async () => {
      throw new ApiError("not_implemented", "Image tarball uploads need the image layer, which this node was built without.");
    },
    pull: async () => {
      throw new ApiError("not_implemented", "Pulling by OCI reference needs the image layer, which this node was built without.");
    },
    checkPolicy: (signedBy) => {
      if (policy === "require-trusted" && !signedBy) {
        throw new ApiError("signature_required", "This node only accepts images signed by a trusted key (--require-signed); raw module uploads are unsigned.");
      }
    },
  };
}
