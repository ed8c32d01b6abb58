import { Command } from "commander";
import { imageAction, formatBytes, table } from "../../image/format.js";
import { ImageStore } from "../../image/store.js";
import { parseOciManifest } from "../../image/oci.js";
import { shortDigest, type Digest } from "../../image/digest.js";

interface ImageRow {
  repository: string;
  tag: string;
  digest: Digest;
  size: number;
  signed: boolean;
}

/** Every image in the store, one row per tag (untagged images once, as <none>). */
export async function listImages(store: ImageStore): Promise<ImageRow[]> {
  const index = await store.readIndex();
  const rows: ImageRow[] = [];
  for (const digest of Object.keys(index.images).sort() as Digest[]) {
    let size = 0;
    try {
      const m = parseOciManifest(await store.getBlob(digest, "image manifest"), `image ${digest}`);
      size = m.config.size + m.layers.reduce((s, l) => s + l.size, 0);
    } catch {
      size = -1; // damaged: `uniwasm inspect` says what is wrong
    }
    const signed = index.images[digest]!.signatures !== undefined;
    const tags = Object.keys(index.tags).filter((t) => index.tags[t] === digest).sort();
    if (tags.length === 0) rows.push({ repository: "<none>", tag: "<none>", digest, size, signed });
    for (const t of tags) {
      const colon = t.lastIndexOf(":");
      rows.push({ repository: t.slice(0, colon), tag: t.slice(colon + 1), digest, size, signed });
    }
  }
  return rows.sort((a, b) => (a.repository + ":" + a.tag < b.repository + ":" + b.tag ? -1 : 1));
}

export function registerImages(program: Command): void {
  program
    .command("images")
    .description("List the images in the local store")
    .option("--json", "print JSON", false)
    .option("-q, --quiet", "print image digests only", false)
    .option("--home <dir>", "store directory (default $UNIWASM_HOME or ~/.uniwasm)")
    .action(async (flags: { json: boolean; quiet: boolean; home?: string }) =>
      imageAction("images", async () => {
        const rows = await listImages(new ImageStore(flags.home));
        if (flags.json) {
          process.stdout.write(JSON.stringify(rows, null, 2) + "\n");
        } else if (flags.quiet) {
          process.stdout.write([...new Set(rows.map((r) => r.digest))].map((d) => d + "\n").join(""));
        } else {
          process.stdout.write(
            table(
              ["REPOSITORY", "TAG", "IMAGE ID", "SIZE", "SIGNED"],
              rows.map((r) => [r.repository, r.tag, shortDigest(r.digest), r.size < 0 ? "damaged" : formatBytes(r.size), r.signed ? "yes" : "no"]),
            ),
          );
        }
      }),
    );
}
