/**
 * `uniwasm inspect IMAGE`: the image's manifest, what it grants against what
 * its module imports, its layers and sizes, its tags and its signatures.
 */
import type { Capability } from "../kernel/syscalls.js";
import type { Digest } from "./digest.js";
import { checkGrants, type UngrantedImport } from "./grants.js";
import { loadImage, type ImageSizes } from "./image.js";
import type { Manifest } from "./manifest.js";
import { describeModule, type ModuleExport, type ModuleImport } from "./module-info.js";
import type { Descriptor } from "./oci.js";
import { envelopeProblem, parsePublicKey, readSignatures } from "./signing.js";
import { ImageStore } from "./store.js";
import { readTrustPolicy } from "./trust.js";

export interface ImageInspection {
  digest: Digest;
  tags: string[];
  manifest: Manifest;
  /** uniwasm.toml as stored. */
  manifestText: string;
  layers: Descriptor[];
  config: Descriptor;
  sizes: ImageSizes;
  imports: ModuleImport[];
  exports: ModuleExport[];
  capabilities: {
    granted: Capability[];
    needed: Capability[];
    unusedGrants: string[];
    ungrantedImports: UngrantedImport[];
  };
  /** File counts per `files` dir. */
  files: Record<string, number>;
  signatures: { keyId: string; digest: Digest; trustedAs?: string; valid?: boolean; problem?: string }[];
}

/** Inspects `ref` in the store at `home`; null when no image matches. Throws on a tampered image. */
export async function inspectImage(ref: string, options: { home?: string } = {}): Promise<ImageInspection | null> {
  const store = new ImageStore(options.home);
  const digest = await store.resolve(ref);
  if (!digest) return null;
  const image = await loadImage(store, digest);
  const summary = await describeModule(image.module, `module of image ${digest}`);
  const grants = checkGrants(image.manifest, summary.imports);
  const index = await store.readIndex();
  const policy = await readTrustPolicy(store.root);
  const signatures = (await readSignatures(store, digest)).map((s) => {
    const k = policy.keys.find((t) => t.id === s.envelope.keyId);
    const out: ImageInspection["signatures"][number] = { keyId: s.envelope.keyId, digest: s.descriptor.digest };
    if (k) {
      const problem = envelopeProblem(s.envelope, parsePublicKey(k.publicKey, k.name), digest);
      out.trustedAs = k.name;
      out.valid = problem === undefined;
      if (problem) out.problem = problem;
    }
    return out;
  });
  return {
    digest,
    tags: Object.keys(index.tags).filter((t) => index.tags[t] === digest).sort(),
    manifest: image.manifest,
    manifestText: image.manifestText,
    layers: image.oci.layers,
    config: image.oci.config,
    sizes: image.sizes,
    imports: summary.imports,
    exports: summary.exports,
    capabilities: { granted: grants.granted, needed: grants.needed, unusedGrants: grants.unusedGrants, ungrantedImports: grants.ungrantedImports },
    files: Object.fromEntries([...image.files].map(([g, f]) => [g, Object.keys(f).length])),
    signatures,
  };
}
