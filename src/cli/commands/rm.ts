import { Command } from "commander";
import { clientFrom, cliAction, type NodeFlags } from "../../server/client.js";

export function registerRm(program: Command): void {
  program
    .command("rm <app...>")
    .description("Delete apps (their in-flight requests finish first)")
    .option("--tenant <name>", "tenant (default: the token's own)")
    .option("--node <url>", "node API URL")
    .option("--token <token>", "API token")
    .action((apps: string[], f: NodeFlags & { tenant?: string }) =>
      cliAction(async () => {
        const client = clientFrom(f);
        const tenant = encodeURIComponent(await client.tenant(f.tenant));
        for (const app of apps) {
          await client.request("DELETE", `/v1/tenants/${tenant}/apps/${encodeURIComponent(app)}`);
          process.stdout.write(`deleted ${app}\n`);
        }
      }),
    );
}
