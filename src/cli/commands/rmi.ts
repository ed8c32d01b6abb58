import { Command } from "commander";
import { imageAction } from "../../image/format.js";
import { ImageStore } from "../../image/store.js";

export function registerRmi(program: Command): void {
  program
    .command("rmi")
    .description("Remove images: a tag removes that tag (and the image once no tag is left); a digest or id needs --force while tags point at it")
    .argument("<image...>", "tags, digests or image ids")
    .option("-f, --force", "remove an image by digest even while tagged (removes its tags)", false)
    .option("--home <dir>", "store directory (default $UNIWASM_HOME or ~/.uniwasm)")
    .action(async (refs: string[], flags: { force: boolean; home?: string }) =>
      imageAction("rmi", async () => {
        const store = new ImageStore(flags.home);
        for (const ref of refs) {
          const r = await store.remove(ref, { force: flags.force });
          for (const t of r.untagged) process.stdout.write(`untagged: ${t}\n`);
          for (const d of r.deleted) process.stdout.write(`deleted: ${d}\n`);
        }
      }),
    );
}
