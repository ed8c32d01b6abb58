/**
 * The local content-addressed store.
 *
 *   $UNIWASM_HOME (default ~/.uniwasm)/
 *     blobs/sha256/<hex>   every blob, named by its digest (so stored once)
 *     index.json           images (manifest digest -> signature manifest) and tags (name:tag -> digest)
 *     trust.json           the trust policy (see trust.ts)
 *
 * Blobs are immutable and written by rename, so a reader never sees half a
 * blob; every read re-hashes, so a blob changed on disk is reported as
 * tampered rather than used. The index is rewritten whole under a lock file,
 * so concurrent `uniwasm` processes do not lose each other's tags.
 */
import { mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { ImageError } from "./errors.js";
import { digestHex, isDigest, sha256, verifyBlob, type Digest } from "./digest.js";
import { parseReference, tagName } from "./reference.js";

export interface StoreIndex {
  version: 1;
  /** Every image (its manifest digest) -> its signature manifest digest, if signed. */
  images: Record<Digest, { signatures?: Digest }>;
  /** Tag name (`repo:tag`, `registry/repo:tag`) -> image digest. */
  tags: Record<string, Digest>;
}

/** The store directory: `home`, else $UNIWASM_HOME, else ~/.uniwasm. */
export function defaultHome(): string {
  return process.env.UNIWASM_HOME || join(homedir(), ".uniwasm");
}

export class ImageStore {
  readonly root: string;

  constructor(root: string = defaultHome()) {
    this.root = root;
  }

  blobPath(d: Digest): string {
    return join(this.root, "blobs", "sha256", digestHex(d));
  }

  /** Stores `bytes` (once: an existing blob is kept) and returns its digest. */
  async putBlob(bytes: Uint8Array): Promise<Digest> {
    const d = sha256(bytes);
    const path = this.blobPath(d);
    if (await exists(path)) return d;
    await mkdir(join(this.root, "blobs", "sha256"), { recursive: true });
    const tmp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
    await writeFile(tmp, bytes);
    await rename(tmp, path);
    return d;
  }

  async hasBlob(d: Digest): Promise<boolean> {
    return exists(this.blobPath(d));
  }

  /** Reads a blob and checks its digest (and size); `what` names it in errors. */
  async getBlob(d: Digest, what: string, size?: number): Promise<Uint8Array> {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(this.blobPath(d));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new ImageError("blob_missing", `${what} ${d} is missing from the store (${this.root})`);
      throw err;
    }
    verifyBlob(bytes, d, what, size);
    return bytes;
  }

  async blobSize(d: Digest): Promise<number | undefined> {
    try {
      return (await stat(this.blobPath(d))).size;
    } catch {
      return undefined;
    }
  }

  async readIndex(): Promise<StoreIndex> {
    let text: string;
    try {
      text = await readFile(join(this.root, "index.json"), "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return { version: 1, images: {}, tags: {} };
      throw err;
    }
    let v: StoreIndex;
    try {
      v = JSON.parse(text) as StoreIndex;
    } catch (err) {
      throw new ImageError("store_corrupt", `${join(this.root, "index.json")} is not valid JSON: ${(err as Error).message}`);
    }
    if (v?.version !== 1 || typeof v.images !== "object" || typeof v.tags !== "object") {
      throw new ImageError("store_corrupt", `${join(this.root, "index.json")} is not a version 1 store index`);
    }
    return v;
  }

  /** Read-modify-write of the index under `index.lock`. */
  async updateIndex<T>(fn: (index: StoreIndex) => T | Promise<T>): Promise<T> {
    await mkdir(this.root, { recursive: true });
    const lock = join(this.root, "index.lock");
    const release = await acquireLock(lock);
    try {
      const index = await this.readIndex();
      const result = await fn(index);
      const tmp = join(this.root, `index.json.${randomBytes(6).toString("hex")}.tmp`);
      await writeFile(tmp, JSON.stringify(index, null, 2) + "\n");
      await rename(tmp, join(this.root, "index.json"));
      return result;
    } finally {
      await release();
    }
  }

  /** Records an image (its manifest blob must be stored) and points `tags` at it. */
  async addImage(digest: Digest, tags: readonly string[] = []): Promise<void> {
    const names = tags.map((t) => tagName(parseReference(t)));
    await this.updateIndex((index) => {
      index.images[digest] ??= {};
      for (const n of names) index.tags[n] = digest;
    });
  }

  async setSignatures(image: Digest, signatures: Digest | undefined): Promise<void> {
    await this.updateIndex((index) => {
      const entry = (index.images[image] ??= {});
      if (signatures) entry.signatures = signatures;
      else delete entry.signatures;
    });
  }

  async signaturesOf(image: Digest): Promise<Digest | undefined> {
    return (await this.readIndex()).images[image]?.signatures;
  }

  /**
   * Finds the image a user means: a full digest, `sha256:` + a unique prefix,
   * a unique hex prefix of at least 6 digits (an id as `images` shows it), or
   * a tag (`name` meaning `name:latest`). Undefined when nothing matches.
   */
  async resolve(ref: string): Promise<Digest | undefined> {
    const index = await this.readIndex();
    if (isDigest(ref)) return index.images[ref] ? ref : undefined;
    const hex = ref.startsWith("sha256:") ? ref.slice(7) : ref;
    if (/^[0-9a-f]{6,64}$/.test(hex)) {
      const hits = Object.keys(index.images).filter((d) => d.slice(7).startsWith(hex)) as Digest[];
      if (hits.length > 1) throw new ImageError("ref_invalid", `id ${ref} is ambiguous: it prefixes ${hits.length} images; give more digits`);
      if (hits.length === 1) return hits[0];
      if (ref.startsWith("sha256:")) return undefined;
    }
    let parsed;
    try {
      parsed = parseReference(ref);
    } catch {
      return undefined;
    }
    if (parsed.digest) return index.images[parsed.digest] ? parsed.digest : undefined;
    return index.tags[tagName(parsed)];
  }

  /** Like resolve, but throws `image_not_found` naming the reference. */
  async require(ref: string): Promise<Digest> {
    const d = await this.resolve(ref);
    if (!d) throw new ImageError("image_not_found", `no image ${JSON.stringify(ref)} in the store (${this.root}); see \`uniwasm images\``);
    return d;
  }

  async tag(ref: string, target: string): Promise<string> {
    const d = await this.require(target);
    const name = tagName(parseReference(ref));
    await this.updateIndex((index) => {
      index.tags[name] = d;
    });
    return name;
  }

  /**
   * `rmi`: by tag, removes that tag, then the image if no tag is left; by
   * digest or id, removes the image only when no tag points at it, unless
   * `force`, which removes its tags too. Unreferenced blobs are then deleted.
   */
  async remove(ref: string, opts: { force?: boolean } = {}): Promise<{ untagged: string[]; deleted: Digest[] }> {
    const d = await this.require(ref);
    let byTag: string | undefined;
    try {
      const p = parseReference(ref);
      if (!p.digest && !isDigest(ref)) byTag = tagName(p);
    } catch {
      byTag = undefined;
    }
    const result = await this.updateIndex((index) => {
      const untagged: string[] = [];
      const deleted: Digest[] = [];
      if (byTag && index.tags[byTag] === d) {
        delete index.tags[byTag];
        untagged.push(byTag);
      } else {
        const tags = Object.keys(index.tags).filter((t) => index.tags[t] === d);
        if (tags.length > 0 && !opts.force) {
          throw new ImageError("image_in_use", `image ${d} is tagged ${tags.join(", ")}; remove those tags first or use --force`);
        }
        for (const t of tags) {
          delete index.tags[t];
          untagged.push(t);
        }
      }
      if (!Object.values(index.tags).includes(d)) {
        delete index.images[d];
        deleted.push(d);
      }
      return { untagged, deleted };
    });
    if (result.deleted.length > 0) await this.gc();
    return result;
  }

  /** Deletes blobs no image (nor its signatures) references. Returns how many. */
  async gc(): Promise<number> {
    const { parseOciManifest } = await import("./oci.js");
    const index = await this.readIndex();
    const live = new Set<string>();
    const mark = async (d: Digest): Promise<void> => {
      live.add(d);
      try {
        const m = parseOciManifest(await this.getBlob(d, "manifest"), `manifest ${d}`);
        live.add(m.config.digest);
        for (const l of m.layers) live.add(l.digest);
      } catch {
        // A damaged manifest keeps only itself alive; its blobs are collected.
      }
    };
    for (const [d, e] of Object.entries(index.images) as [Digest, { signatures?: Digest }][]) {
      await mark(d);
      if (e.signatures) await mark(e.signatures);
    }
    let removed = 0;
    const dir = join(this.root, "blobs", "sha256");
    let names: string[] = [];
    try {
      names = await readdir(dir);
    } catch {
      return 0;
    }
    for (const name of names) {
      // Skip in-flight writes (`<hex>.<rand>.tmp`) of a concurrent putBlob.
      if (name.endsWith(".tmp")) continue;
      if (!live.has(`sha256:${name}`)) {
        await rm(join(dir, name), { force: true });
        removed++;
      }
    }
    return removed;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** An exclusive lock file; a lock older than 30 s is taken as left by a crashed process. */
async function acquireLock(path: string): Promise<() => Promise<void>> {
  for (let attempt = 0; ; attempt++) {
    try {
      const fh = await open(path, "wx");
      await fh.writeFile(String(process.pid));
      await fh.close();
      return async () => {
        await rm(path, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const st = await stat(path).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > 30_000) await rm(path, { force: true });
      if (attempt > 500) throw new ImageError("store_corrupt", `the store is locked by ${path}; remove it if no uniwasm process is running`);
      await new Promise((r) => setTimeout(r, 10 + Math.min(attempt, 20) * 5));
    }
  }
}
