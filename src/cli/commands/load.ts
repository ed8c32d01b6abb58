import { Command } from "commander";
import { imageAction } from "../../image/format.js";
import { loadImages } from "../../image/layout.js";
import { ImageStore } from "../../image/store.js";

export function registerLoad(program: Command): void {
  program
    .command("load")
    .description("Load images from an OCI image layout directory or tarball, verifying digests and the trust policy")
    .argument("[path]", "layout directory or .tar")
    .option("-i, --input <path>", "layout directory or .tar (docker load style)")
    .option("--home <dir>", "store directory (default $UNIWASM_HOME or ~/.uniwasm)")
    .action(async (path: string | undefined, flags: { input?: string; home?: string }) =>
      imageAction("load", async () => {
        const input = flags.input ?? path;
        if (!input) {
          process.stderr.write("uniwasm load: give a layout directory or tarball (uniwasm load PATH)\n");
          process.exitCode = 2;
          return;
        }
        const r = await loadImages(new ImageStore(flags.home), input);
        for (const i of r.images) {
          process.stdout.write(`loaded ${i.digest}${i.tags.length ? ` (${i.tags.join(", ")})` : ""}${i.trust.verified ? `, signed by ${i.trust.signedBy!.name}` : ""}\n`);
        }
      }),
    );
}
