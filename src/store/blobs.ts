import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

export function sha256Digest(bytes: Uint8Array): string {
  return "sha256:" + createHash("sha256").update(bytes).digest("hex");
}

/**
 * Content-addressed module bytes on disk (`blobs/sha256/<hex>`), shared by all
 * tenants: two tenants uploading the same module store it once, while the
 * images table keeps who may see it. Writes go through a temp file + rename so
 * a crash never leaves a truncated blob under a valid digest.
 */
export class BlobStore {
  private readonly dir: string;

  constructor(root: string) {
    this.dir = join(root, "blobs", "sha256");
    mkdirSync(this.dir, { recursive: true });
  }

  private path(digest: string): string {
    if (!DIGEST_RE.test(digest)) throw new Error(`not a sha256 digest: ${JSON.stringify(digest)}`);
    return join(this.dir, digest.slice("sha256:".length));
  }

  put(bytes: Uint8Array): string {
    const digest = sha256Digest(bytes);
    const p = this.path(digest);
    if (!existsSync(p)) {
      const tmp = `${p}.tmp-${process.pid}-${Date.now()}`;
      writeFileSync(tmp, bytes, { mode: 0o600 });
      renameSync(tmp, p);
    }
    return digest;
  }

  get(digest: string): Uint8Array | undefined {
    const p = this.path(digest);
    if (!existsSync(p)) return undefined;
    const bytes = readFileSync(p);
    // Verify on read: a blob edited on disk must not run under a trusted digest.
    if (sha256Digest(bytes) !== digest) throw new Error(`blob ${digest} is corrupt on disk (${p})`);
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  has(digest: string): boolean {
    return existsSync(this.path(digest));
  }

  delete(digest: string): void {
    rmSync(this.path(digest), { force: true });
  }
}
