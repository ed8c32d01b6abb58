import { Command } from "commander";
import { clientFrom, cliAction, table, type NodeFlags } from "../../server/client.js";

export function registerPs(program: Command): void {
  program
    .command("ps")
    .description("List a tenant's apps and live instances")
    .option("--tenant <name>", "tenant (default: the token's own)")
    .option("--all", "every tenant (admin token)")
    .option("-i, --instances", "list instances instead of apps")
    .option("--json", "print JSON")
    .option("--node <url>", "node API URL")
    .option("--token <token>", "API token")
    .action((f: NodeFlags & { tenant?: string; all?: boolean; instances?: boolean; json?: boolean }) =>
      cliAction(async () => {
        const client = clientFrom(f);
        const tenants: string[] = f.all ? (await client.request("GET", "/v1/tenants")).tenants.map((t: { name: string }) => t.name) : [await client.tenant(f.tenant)];
        const apps: any[] = []; // eslint-disable-line @typescript-eslint/no-explicit-any
        const instances: any[] = []; // eslint-disable-line @typescript-eslint/no-explicit-any
        for (const t of tenants) {
          apps.push(...(await client.request("GET", `/v1/tenants/${encodeURIComponent(t)}/apps`)).apps);
          instances.push(...(await client.request("GET", `/v1/tenants/${encodeURIComponent(t)}/instances`)).instances.map((i: object) => ({ ...i, tenant: t })));
        }
        if (f.json) return void process.stdout.write(JSON.stringify(f.instances ? instances : apps, null, 2) + "\n");
        if (f.instances) {
          const rows = [["INSTANCE", "TENANT", "APP", "KIND", "STATE", "PLACEMENT", "TIER", "REQUESTS", "MEMORY", "STARTED"]];
          for (const i of instances) rows.push([i.id, i.tenant, i.appName, i.kind, i.state, i.placement ?? "-", i.tier ?? "-", String(i.requests), `${(i.memoryBytes / 1048576).toFixed(1)}MiB`, i.startedAt]);
          return void process.stdout.write(table(rows));
        }
        // In a cluster, apps say where they run (instances are the asked node's own).
        const clustered = apps.some((a) => Array.isArray(a.replicas));
        const rows = [["APP", "TENANT", "ABI", "STATUS", "REV", "INSTANCES", ...(clustered ? ["NODES"] : []), "PLACEMENT", "TIER", "DENIED", "IMAGE", "ROUTES"]];
        for (const a of apps) {
          const n = instances.filter((i) => i.appId === a.id).length;
          const nodes = clustered ? [(a.replicas ?? []).map((r: { node: string; state: string }) => (r.state === "ready" ? r.node : `${r.node}(${r.state})`)).join(",") || "-"] : [];
          // Host calls refused for lack of a grant (the app view's deniedCalls has them by call).
          const denied = Object.values((a.deniedCalls ?? {}) as Record<string, number>).reduce((sum, c) => sum + c, 0);
          rows.push([a.name, a.tenant, a.config.abi, a.status, String(a.revision), String(n), ...nodes, a.execution?.placement ?? "-", a.execution?.tier ?? "-", String(denied), a.image.slice(7, 19), a.config.routes.map((r: { host: string; path: string }) => `${r.host}${r.path}`).join(",")]);
        }
        process.stdout.write(table(rows));
      }),
    );
}
