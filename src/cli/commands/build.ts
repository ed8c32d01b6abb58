import { Command } from "commander";
import { buildImage } from "../../image/build.js";
import { imageAction, formatBytes } from "../../image/format.js";
import { terminalProgress } from "../../image/progress.js";
import { ImageStore } from "../../image/store.js";

interface BuildFlags {
  tag: string[];
  file?: string;
  sign?: string;
  home?: string;
  json: boolean;
}

export function registerBuild(program: Command): void {
  program
    .command("build")
    .description("Build an image from a directory holding uniwasm.toml and its module, into the local store")
    .argument("[dir]", "directory with uniwasm.toml", ".")
    .option("-t, --tag <name:tag>", "tag the image (repeatable; default NAME:VERSION and NAME:latest)", collect, [])
    .option("-f, --file <manifest>", "manifest file, relative to DIR (default uniwasm.toml)")
    .option("--sign <key>", "sign the image with this Ed25519 private key (uniwasm key generate)")
    .option("--home <dir>", "store directory (default $UNIWASM_HOME or ~/.uniwasm)")
    .option("--json", "print the result as JSON", false)
    .action(async (dir: string, flags: BuildFlags) =>
      imageAction("build", async () => {
        const bars = terminalProgress();
        const result = await buildImage(new ImageStore(flags.home), {
          dir,
          ...(flags.file ? { manifestFile: flags.file } : {}),
          tags: flags.tag,
          ...(flags.sign ? { signKey: flags.sign } : {}),
          onProgress: bars.onProgress,
        }).finally(bars.stop);
        for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`);
        if (flags.json) {
          process.stdout.write(JSON.stringify({ digest: result.digest, tags: result.tags, size: result.size, signedBy: result.signedBy ?? null, warnings: result.warnings }, null, 2) + "\n");
          return;
        }
        process.stdout.write(`built ${result.manifest.name} ${result.manifest.version}: ${result.digest} (${formatBytes(result.size)})\n`);
        process.stdout.write(`tagged ${result.tags.join(", ")}\n`);
        if (result.signedBy) process.stdout.write(`signed by key ${result.signedBy}\n`);
      }),
    );
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
