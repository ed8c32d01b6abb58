/**
 * Content digests. Only sha256 is produced or accepted: one algorithm means one
 * identity per content, which is what deduplication and signing rely on.
 */
import { createHash } from "node:crypto";
import { ImageError } from "./errors.js";

/** `sha256:` followed by 64 lowercase hex digits. */
export type Digest = `sha256:${string}`;

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

export function sha256(bytes: Uint8Array | string): Digest {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

export function isDigest(s: string): s is Digest {
  return DIGEST_RE.test(s);
}

/** Validates a digest coming from outside (a registry, a layout, a user). */
export function parseDigest(s: string, what = "digest"): Digest {
  if (!isDigest(s)) {
    throw new ImageError("ref_invalid", `${what} ${JSON.stringify(s.slice(0, 100))} is not a sha256 digest (expected sha256: and 64 lowercase hex digits)`);
  }
  return s;
}

/** The hex part, used as a file name under blobs/sha256/. */
export function digestHex(d: Digest): string {
  return d.slice("sha256:".length);
}

/** The first 12 hex digits, as `docker images` shows an id. */
export function shortDigest(d: Digest): string {
  return d.slice(7, 19);
}

/** Throws `blob_corrupt` unless `bytes` hash to `expected` (and have `size` bytes when given). */
export function verifyBlob(bytes: Uint8Array, expected: Digest, what: string, size?: number): void {
  if (size !== undefined && bytes.length !== size) {
    throw new ImageError("blob_corrupt", `${what} ${expected}: has ${bytes.length} bytes but its descriptor says ${size} (blob tampered or truncated)`);
  }
  const actual = sha256(bytes);
  if (actual !== expected) {
    throw new ImageError("blob_corrupt", `${what} ${expected}: content hashes to ${actual} (blob tampered or corrupt)`);
  }
}
