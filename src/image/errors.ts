/**
 * The image layer's one catalogue of errors. Every failure a user can cause
 * (a bad manifest, a tampered blob, an untrusted signature, a registry that
 * says no) is an `ImageError` with a stable `code`, an HTTP status for the
 * node's API, and a message that names the object and, where there is one,
 * the fix. Anything else escaping this layer is a bug.
 */

export const IMAGE_ERRORS = {
  manifest_invalid: { status: 400, summary: "uniwasm.toml is not valid TOML or breaks the schema (file, line and field are named)" },
  module_invalid: { status: 400, summary: "the module does not compile, or lacks the exports its entry kind needs" },
  build_input: { status: 400, summary: "a file the manifest names is missing, too large, or escapes the build directory" },
  ref_invalid: { status: 400, summary: "an image reference or tag is malformed" },
  image_not_found: { status: 404, summary: "no image in the store matches the reference" },
  image_in_use: { status: 409, summary: "rmi by digest while tags still point at the image (use --force)" },
  blob_missing: { status: 422, summary: "a blob an image references is absent from the store or layout" },
  blob_corrupt: { status: 422, summary: "a blob's bytes do not hash to its digest, or its size differs from the descriptor" },
  image_malformed: { status: 422, summary: "an OCI manifest or config is not the shape uniwasm writes" },
  signature_missing: { status: 403, summary: "the trust policy requires a signature and the image has none" },
  signature_invalid: { status: 403, summary: "a signature does not verify, or it signs a different digest" },
  signature_untrusted: { status: 403, summary: "the image is signed, but by no key in the trust policy" },
  key_invalid: { status: 400, summary: "a key file is not an Ed25519 PEM key of the expected kind" },
  trust_policy_invalid: { status: 500, summary: "the trust policy file cannot be read or breaks its schema" },
  registry_error: { status: 502, summary: "an OCI registry answered with an error or an unexpected response" },
  layout_invalid: { status: 400, summary: "an OCI image-layout directory or tarball is malformed" },
  store_corrupt: { status: 500, summary: "the store's index cannot be read" },
} as const;

export type ImageErrorCode = keyof typeof IMAGE_ERRORS;

export class ImageError extends Error {
  readonly code: ImageErrorCode;
  readonly status: number;
  constructor(code: ImageErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ImageError";
    this.code = code;
    this.status = IMAGE_ERRORS[code].status;
  }
}

/** One problem in a manifest: where it is, which field, and what is allowed. */
export interface ManifestProblem {
  /** 1-based line in the file, when it could be located. */
  line?: number;
  column?: number;
  /** Dotted path of the field, e.g. `capabilities.dirs[0].mode`; empty for syntax errors. */
  field: string;
  message: string;
}

/** A manifest that cannot be used; lists every problem found, each with file and line. */
export class ManifestError extends ImageError {
  readonly file: string;
  readonly problems: readonly ManifestProblem[];
  constructor(file: string, problems: readonly ManifestProblem[]) {
    super("manifest_invalid", problems.map((p) => formatProblem(file, p)).join("\n"));
    this.name = "ManifestError";
    this.file = file;
    this.problems = problems;
  }
}

export function formatProblem(file: string, p: ManifestProblem): string {
  const where = p.line === undefined ? file : p.column === undefined ? `${file}:${p.line}` : `${file}:${p.line}:${p.column}`;
  return p.field ? `${where}: ${p.field}: ${p.message}` : `${where}: ${p.message}`;
}
