import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

export function sha256Digest(bytes: Uint8Array): string {
  return "sha256:" + createHash("sha256").update(bytes).digest("hex");
}

/** A blob whose bytes no longer hash to its digest; it was moved aside to `quarantinedTo`. */
export class CorruptBlob extends Error {
  constructor(
    readonly digest: string,
    readonly quarantinedTo: string,
  ) {
    super(`blob ${digest} is corrupt on disk (its bytes do not hash to its digest); moved to ${quarantinedTo}`);
    this.name = "CorruptBlob";
  }
}

/** A blob moved aside by a failed verification, and not stored again since. */
export interface QuarantinedBlob {
  digest: string;
  path: string;
  /** When it was moved aside, ms since the epoch. */
  at: number;
}

/**
 * Content-addressed module bytes on disk (`blobs/sha256/<hex>`), shared by all
 * tenants: two tenants uploading the same module store it once, while the
 * images table keeps who may see it. Writes go through a temp file + rename so
 * a crash never leaves a truncated blob under a valid digest.
 */
export class BlobStore {
  private readonly dir: string;
  /** Where a blob that fails verification is moved (kept for inspection; storing the bytes again heals). */
  private readonly quarantineDir: string;

  constructor(root: string) {
    this.dir = join(root, "blobs", "sha256");
    this.quarantineDir = join(root, "blobs", "quarantine");
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
    // Verify on read: a blob edited on disk must not run under a trusted digest. It is moved
    // aside, so it is reported as missing from now on and a fresh upload of the bytes restores it.
    if (sha256Digest(bytes) !== digest) throw new CorruptBlob(digest, this.quarantine(digest, p));
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private quarantine(digest: string, from: string): string {
    mkdirSync(this.quarantineDir, { recursive: true });
    const to = join(this.quarantineDir, digest.slice("sha256:".length));
    renameSync(from, to);
    return to;
  }

  /** Blobs moved aside because they were corrupt and not stored again since, oldest first. */
  quarantined(): QuarantinedBlob[] {
    if (!existsSync(this.quarantineDir)) return [];
    return readdirSync(this.quarantineDir)
      .filter((name) => /^[0-9a-f]{64}$/.test(name) && !existsSync(join(this.dir, name)))
      .map((name) => {
        const path = join(this.quarantineDir, name);
        return { digest: `sha256:${name}`, path, at: statSync(path).ctimeMs };
      })
      .sort((a, b) => a.at - b.at);
  }

  has(digest: string): boolean {
    return existsSync(this.path(digest));
  }

  delete(digest: string): void {
    rmSync(this.path(digest), { force: true });
  }
}
