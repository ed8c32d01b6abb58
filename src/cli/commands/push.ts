import { Command } from "commander";
import { imageAction, registryOptions } from "../../image/format.js";
import { terminalProgress } from "../../image/progress.js";
import { ImageStore } from "../../image/store.js";
import { pushImage } from "../../image/transfer.js";

export function registerPush(program: Command): void {
  program
    .command("push")
    .description("Push an image (and its signatures) to an OCI registry")
    .argument("<image>", "local image: tag, digest or id")
    .argument("[destination]", "REGISTRY/REPOSITORY[:TAG]; default: IMAGE, when it names a registry")
    .option("--plain-http", "use http for this registry (loopback registries always use http)", false)
    .option("--home <dir>", "store directory (default $UNIWASM_HOME or ~/.uniwasm)")
    .action(async (image: string, destination: string | undefined, flags: { plainHttp: boolean; home?: string }) =>
      imageAction("push", async () => {
        const bars = terminalProgress();
        const r = await pushImage(new ImageStore(flags.home), image, destination, { ...registryOptions(destination ?? image, flags), onProgress: bars.onProgress }).finally(bars.stop);
        process.stdout.write(`pushed ${r.reference} (${r.uploaded} blobs uploaded, ${r.skipped} already there)\n`);
        if (r.signatures) process.stdout.write(`pushed signatures ${r.signatures}\n`);
      }),
    );
}
