import { Command } from "commander";
import { clientFrom, cliAction, table, ClientError, type NodeFlags } from "../../server/client.js";

function quotaPairs(pairs: string[]): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  for (const p of pairs) {
    // minTier takes a tier name (isolate, process, gvisor); every other quota an integer.
    const tier = /^minTier=([a-z]+)$/.exec(p);
    if (tier) {
      out.minTier = tier[1]!;
      continue;
    }
    const m = /^([A-Za-z]+)=(\d+)$/.exec(p);
    if (!m) throw new ClientError("bad_flag", `--quota takes NAME=INTEGER (e.g. maxApps=5) or minTier=TIER, got ${JSON.stringify(p)}`);
    out[m[1]!] = Number(m[2]);
  }
  return out;
}
const collect = (v: string, acc: string[]) => [...acc, v];

export function registerTenants(program: Command): void {
  const cmd = program.command("tenants").description("List, create, change and delete tenants (admin token)");
  const conn = (c: Command) => c.option("--node <url>", "node API URL").option("--token <token>", "API token");

  conn(cmd.command("list", { isDefault: true }).description("List tenants with their quotas").option("--json", "print JSON")).action((f: NodeFlags & { json?: boolean }) =>
    cliAction(async () => {
      const { tenants } = await clientFrom(f).request("GET", "/v1/tenants");
      if (f.json) return void process.stdout.write(JSON.stringify(tenants, null, 2) + "\n");
      const rows = [["NAME", "ID", "WEIGHT", "APPS", "INSTANCES", "MEMORY MiB", "REQ/S", "CPU MS/MIN"]];
      for (const t of tenants) rows.push([t.name, t.id, String(t.weight), String(t.quotas.maxApps), String(t.quotas.maxInstances), String(t.quotas.memoryMiB), String(t.quotas.requestsPerSecond), String(t.quotas.cpuMsPerMinute)]);
      process.stdout.write(table(rows));
    }),
  );

  conn(cmd.command("create <name>").description("Create a tenant; prints its first token (shown once)").option("--quota <name=value>", "quota override, repeatable", collect, []).option("--weight <n>", "fair-share weight", "1")).action(
    (name: string, f: NodeFlags & { quota: string[]; weight: string }) =>
      cliAction(async () => {
        const r = await clientFrom(f).request("POST", "/v1/tenants", { name, quotas: quotaPairs(f.quota), weight: Number(f.weight) });
        process.stdout.write(`created tenant ${r.tenant.name} (${r.tenant.id})\ntoken (shown once): ${r.token.secret}\n`);
      }),
  );

  conn(cmd.command("set <name>").description("Change a tenant's quotas or weight").option("--quota <name=value>", "quota override, repeatable", collect, []).option("--weight <n>", "fair-share weight")).action(
    (name: string, f: NodeFlags & { quota: string[]; weight?: string }) =>
      cliAction(async () => {
        const t = await clientFrom(f).request("PATCH", `/v1/tenants/${encodeURIComponent(name)}`, { quotas: quotaPairs(f.quota), ...(f.weight ? { weight: Number(f.weight) } : {}) });
        process.stdout.write(`tenant ${t.name}: ${JSON.stringify(t.quotas)} weight ${t.weight}\n`);
      }),
  );

  conn(cmd.command("rm <name>").description("Delete a tenant and everything it owns")).action((name: string, f: NodeFlags) =>
    cliAction(async () => {
      await clientFrom(f).request("DELETE", `/v1/tenants/${encodeURIComponent(name)}`);
      process.stdout.write(`deleted tenant ${name}\n`);
    }),
  );
}
