import { Command } from "commander";
import { imageAction } from "../../image/format.js";
import { saveImages } from "../../image/layout.js";
import { ImageStore } from "../../image/store.js";

export function registerSave(program: Command): void {
  program
    .command("save")
    .description("Save images (with tags and signatures) as an OCI image layout: a directory, or a tarball when OUT ends in .tar")
    .argument("<image...>", "tags, digests or ids")
    .requiredOption("-o, --output <out>", "directory or FILE.tar")
    .option("--home <dir>", "store directory (default $UNIWASM_HOME or ~/.uniwasm)")
    .action(async (images: string[], flags: { output: string; home?: string }) =>
      imageAction("save", async () => {
        const r = await saveImages(new ImageStore(flags.home), images, flags.output);
        process.stdout.write(`saved ${r.images.length} image(s), ${r.blobs} blobs, to ${r.path} (OCI layout ${r.format === "tar" ? "tarball" : "directory"})\n`);
      }),
    );
}
