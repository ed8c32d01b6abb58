import type { Capability } from "../kernel/syscalls.js";
import type { GuestGrants, MemoryPreopen } from "./runner.js";
import type { BlobStore, ImageDir, ImageRecord, ImageRepo } from "../store/index.js";

/** An in-memory directory bundled in an image, with its files' bytes. */
export interface LoadedDir {
  guest: string;
  readonly: boolean;
  files: Record<string, Uint8Array>;
}

/**
 * An image's grants on the node: its bundled in-memory dirs, whose file bytes
 * live content-addressed in the blob store like modules (a file shared by
 * images, or equal to a module, is stored once), and the capabilities its
 * manifest grants. Host dirs and listeners never get here (refused at upload).
 */

/** Stores every bundled file's bytes and returns the dirs as the images table keeps them. */
export function storeImageDirs(blobs: BlobStore, dirs: readonly LoadedDir[]): ImageDir[] {
  return dirs.map((d) => ({
    guest: d.guest,
    readonly: d.readonly,
    files: Object.fromEntries(Object.entries(d.files).map(([path, bytes]) => [path, blobs.put(bytes)])),
  }));
}

/**
 * What every instance of an app on `image` gets: the dirs with their files
 * read back (and verified) from the blob store, and the capabilities. Throws
 * when a file's blob is missing, so the app is not started half-equipped.
 */
export function imageGrants(blobs: BlobStore, image: ImageRecord): GuestGrants {
  const grants: GuestGrants = {};
  if (image.capabilities) grants.capabilities = image.capabilities as Capability[];
  if (image.dirs.length > 0) {
    grants.preopens = image.dirs.map((d): MemoryPreopen => {
      const memory: Record<string, Uint8Array> = {};
      for (const [path, digest] of Object.entries(d.files)) {
        const bytes = blobs.get(digest);
        if (!bytes) throw new Error(`file ${d.guest}/${path} of image ${image.digest} is missing on this node (blob ${digest})`);
        memory[path] = bytes;
      }
      return { guest: d.guest, memory, readonly: d.readonly };
    });
  }
  return grants;
}

/** After `image` was deleted: drops its module and file blobs that no image records any more. */
export function dropUnreferencedBlobs(images: Pick<ImageRepo, "referenced">, blobs: BlobStore, image: ImageRecord): void {
  const digests = new Set([image.digest, ...image.dirs.flatMap((d) => Object.values(d.files))]);
  for (const digest of digests) if (!images.referenced(digest)) blobs.delete(digest);
}
