import { Command } from "commander";
import { imageAction, table } from "../../image/format.js";
import { ImageStore } from "../../image/store.js";
import { readTrustPolicy, trustKey, trustPolicyPath, untrustKey, verifyImage } from "../../image/trust.js";
import { loadPrivateKey, shortKeyId, signImage } from "../../image/signing.js";

const HOME_HELP = "store directory (default $UNIWASM_HOME or ~/.uniwasm)";

export function registerTrust(program: Command): void {
  const trust = program.command("trust").description("Manage the trust policy (the public keys whose signatures run, pull and load accept)");
  trust
    .command("add")
    .description("Trust a public key; from then on run, pull and load require a signature by a trusted key")
    .argument("<key.pub>", "Ed25519 public key (PEM)")
    .option("--name <name>", "name for the key (default: the file name)")
    .option("--home <dir>", HOME_HELP)
    .action(async (file: string, flags: { name?: string; home?: string }) =>
      imageAction("trust add", async () => {
        const home = new ImageStore(flags.home).root;
        const k = await trustKey(home, file, flags.name);
        process.stdout.write(`trusted ${k.name} (${k.id}) in ${trustPolicyPath(home)}\n`);
      }),
    );
  trust
    .command("list")
    .description("List trusted keys")
    .option("--json", "print JSON", false)
    .option("--home <dir>", HOME_HELP)
    .action(async (flags: { json: boolean; home?: string }) =>
      imageAction("trust list", async () => {
        const home = new ImageStore(flags.home).root;
        const p = await readTrustPolicy(home);
        if (flags.json) process.stdout.write(JSON.stringify(p.keys.map((k) => ({ name: k.name, id: k.id })), null, 2) + "\n");
        else if (p.keys.length === 0) process.stdout.write(`no trusted keys: signatures are not required (${trustPolicyPath(home)})\n`);
        else process.stdout.write(table(["NAME", "KEY ID"], p.keys.map((k) => [k.name, k.id])));
      }),
    );
  trust
    .command("remove")
    .description("Stop trusting a key (by name or key id)")
    .argument("<key>", "name or key id")
    .option("--home <dir>", HOME_HELP)
    .action(async (key: string, flags: { home?: string }) =>
      imageAction("trust remove", async () => {
        const removed = await untrustKey(new ImageStore(flags.home).root, key);
        for (const k of removed) process.stdout.write(`removed ${k.name} (${k.id})\n`);
      }),
    );
  trust
    .command("sign")
    .description("Sign an image already in the store")
    .argument("<image>", "tag, digest or id")
    .argument("<key>", "Ed25519 private key (PEM)")
    .option("--home <dir>", HOME_HELP)
    .action(async (image: string, key: string, flags: { home?: string }) =>
      imageAction("trust sign", async () => {
        const store = new ImageStore(flags.home);
        const digest = await store.require(image);
        const id = await signImage(store, digest, await loadPrivateKey(key));
        process.stdout.write(`signed ${digest} with key ${shortKeyId(id)}\n`);
      }),
    );
  trust
    .command("verify")
    .description("Check an image in full (every digest) against the trust policy, as run does")
    .argument("<image>", "tag, digest or id")
    .option("--home <dir>", HOME_HELP)
    .action(async (image: string, flags: { home?: string }) =>
      imageAction("trust verify", async () => {
        const store = new ImageStore(flags.home);
        const digest = await store.require(image);
        const { trust: t } = await verifyImage(store, digest);
        process.stdout.write(t.verified ? `${digest}: verified, signed by ${t.signedBy!.name} (${t.signedBy!.id})\n` : `${digest}: digests verified; ${t.note}\n`);
      }),
    );
}
