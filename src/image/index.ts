/** The image layer's public API: manifests, build, store, signing, trust, OCI registries and layouts. */
export { parseManifest, MANIFEST_FILE, MANIFEST_VERSION, MANIFEST_BOUNDS, type Manifest, type ManifestCapabilities, type DirGrant, type HttpTrigger, type EntryKind } from "./manifest.js";
export { ImageError, ManifestError, IMAGE_ERRORS, type ImageErrorCode, type ManifestProblem } from "./errors.js";
export { sha256, isDigest, parseDigest, shortDigest, type Digest } from "./digest.js";
export { checkGrants, grantedCapabilities, manifestToKernelOptions, type GrantReport, type UngrantedImport, type ImageFiles } from "./grants.js";
export { ImageStore, defaultHome, type StoreIndex } from "./store.js";
export { buildImage, type BuildOptions, type BuildResult } from "./build.js";
export { loadImage, type LoadedImage, type ImageSizes } from "./image.js";
export { resolveImage, type ResolvedImage, type ResolveOptions } from "./resolve.js";
export { inspectImage, type ImageInspection } from "./inspect.js";
export { generateKeyPair, keyIdOf, loadPrivateKey, parsePublicKey, signImage, readSignatures, type KeyPairPem, type SignatureEnvelope } from "./signing.js";
export { readTrustPolicy, trustKey, untrustKey, verifyImage, checkSignatures, type TrustPolicy, type TrustedKey, type TrustResult } from "./trust.js";
export { pushImage, pullImage, signatureTag, type PushResult, type PullResult } from "./transfer.js";
export { RegistryClient, type RegistryOptions, type RegistryCredentials } from "./registry.js";
export { saveImages, saveImagesToTar, loadImages, type SaveResult, type LoadResult } from "./layout.js";
export { parseReference, formatReference, type Reference } from "./reference.js";
export { MEDIA_TYPES, type OciManifest, type Descriptor } from "./oci.js";
export type { ProgressEvent, ProgressFn } from "./progress.js";
