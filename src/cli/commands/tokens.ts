import { Command } from "commander";
import { clientFrom, cliAction, table, type NodeFlags } from "../../server/client.js";

type Flags = NodeFlags & { tenant?: string; admin?: boolean; json?: boolean };

export function registerTokens(program: Command): void {
  const cmd = program.command("tokens").description("List, create and revoke API tokens (a tenant's, or with --admin the node's admin tokens)");
  const opts = (c: Command) => c.option("--tenant <name>", "tenant (default: the token's own)").option("--admin", "admin tokens").option("--node <url>", "node API URL").option("--token <token>", "API token");
  const base = async (f: Flags) => {
    const client = clientFrom(f);
    return { client, path: f.admin ? "/v1/admin-tokens" : `/v1/tenants/${encodeURIComponent(await client.tenant(f.tenant))}/tokens` };
  };

  opts(cmd.command("list", { isDefault: true }).description("List tokens (never their secrets)").option("--json", "print JSON")).action((f: Flags) =>
    cliAction(async () => {
      const { client, path } = await base(f);
      const { tokens } = await client.request("GET", path);
      if (f.json) return void process.stdout.write(JSON.stringify(tokens, null, 2) + "\n");
      const rows = [["ID", "NAME", "SCOPE", "PREFIX", "CREATED", "LAST USED"]];
      for (const t of tokens) rows.push([t.id, t.name, t.scope, `${t.prefix}…`, t.createdAt, t.lastUsedAt ?? "never"]);
      process.stdout.write(table(rows));
    }),
  );

  opts(cmd.command("create <name>").description("Create a token; its secret is printed once")).action((name: string, f: Flags) =>
    cliAction(async () => {
      const { client, path } = await base(f);
      const t = await client.request("POST", path, { name });
      process.stdout.write(`${t.secret}\n`);
      process.stderr.write(`created ${t.scope} token ${t.id} (${t.name}); the secret above is not shown again\n`);
    }),
  );

  opts(cmd.command("rm <id>").description("Revoke a token")).action((id: string, f: Flags) =>
    cliAction(async () => {
      const { client, path } = await base(f);
      await client.request("DELETE", `${path}/${encodeURIComponent(id)}`);
      process.stdout.write(`revoked ${id}\n`);
    }),
  );
}
