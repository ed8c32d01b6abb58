import { Command } from "commander";
import { imageAction, registryOptions } from "../../image/format.js";
import { terminalProgress } from "../../image/progress.js";
import { ImageStore } from "../../image/store.js";
import { pullImage } from "../../image/transfer.js";

export function registerPull(program: Command): void {
  program
    .command("pull")
    .description("Pull an image from an OCI registry, verifying digests and the trust policy before storing it")
    .argument("<reference>", "REGISTRY/REPOSITORY[:TAG|@DIGEST]")
    .option("--plain-http", "use http for this registry (loopback registries always use http)", false)
    .option("--home <dir>", "store directory (default $UNIWASM_HOME or ~/.uniwasm)")
    .action(async (reference: string, flags: { plainHttp: boolean; home?: string }) =>
      imageAction("pull", async () => {
        const bars = terminalProgress();
        const r = await pullImage(new ImageStore(flags.home), reference, { ...registryOptions(reference, flags), onProgress: bars.onProgress }).finally(bars.stop);
        process.stdout.write(`pulled ${r.reference}\n`);
        process.stdout.write(
          r.trust.verified ? `verified: signed by trusted key ${r.trust.signedBy!.name} (${r.trust.signedBy!.id})\n` : `${r.signatures} signature(s); ${r.trust.note}\n`,
        );
      }),
    );
}
