import { Command } from "commander";
import { writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { generateKeyPair } from "../../image/signing.js";
import { imageAction } from "../../image/format.js";
import { ImageError } from "../../image/errors.js";

export function registerKey(program: Command): void {
  const key = program.command("key").description("Manage Ed25519 signing keys");
  key
    .command("generate")
    .description("Write a new Ed25519 key pair: NAME.key (private, mode 0600) and NAME.pub")
    .option("-o, --out <name>", "path prefix of the two files", "uniwasm")
    .option("--force", "overwrite existing files", false)
    .action(async (flags: { out: string; force: boolean }) =>
      imageAction("key generate", async () => {
        const priv = `${flags.out}.key`;
        const pub = `${flags.out}.pub`;
        for (const f of [priv, pub]) {
          if (existsSync(f) && !flags.force) throw new ImageError("key_invalid", `${f} exists; choose another --out or pass --force`);
        }
        const pair = generateKeyPair();
        await writeFile(priv, pair.privateKey, { mode: 0o600 });
        await writeFile(pub, pair.publicKey, { mode: 0o644 });
        process.stdout.write(`private key: ${priv} (keep it secret; sign with: uniwasm build --sign ${priv})\n`);
        process.stdout.write(`public key:  ${pub} (trust it with: uniwasm trust add ${pub})\n`);
        process.stdout.write(`key id:      ${pair.keyId}\n`);
      }),
    );
}
