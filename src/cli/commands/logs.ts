import { Command } from "commander";
import { clientFrom, cliAction, ClientError, type NodeFlags } from "../../server/client.js";

/** A line; in a cluster, with the node that wrote it. */
function format(e: { ts: number; stream: string; line: string; node?: string }): string {
  return `${new Date(e.ts).toISOString()} ${e.node ? `${e.node} ` : ""}${e.stream.padEnd(6)} ${e.line}\n`;
}

export function registerLogs(program: Command): void {
  program
    .command("logs <app>")
    .description("Show an app's guest output (stdout/stderr) and platform events")
    .option("-f, --follow", "keep streaming new lines")
    .option("-n, --tail <n>", "lines from the end", "100")
    .option("--tenant <name>", "tenant (default: the token's own)")
    .option("--node <url>", "node API URL")
    .option("--token <token>", "API token")
    .action((app: string, f: NodeFlags & { follow?: boolean; tail: string; tenant?: string }) =>
      cliAction(async () => {
        const tail = Number(f.tail);
        if (!Number.isInteger(tail) || tail < 0) throw new ClientError("bad_flag", `--tail must be a non-negative integer, got ${JSON.stringify(f.tail)}`);
        const client = clientFrom(f);
        const path = `/v1/tenants/${encodeURIComponent(await client.tenant(f.tenant))}/apps/${encodeURIComponent(app)}/logs?tail=${tail}`;
        if (!f.follow) {
          const { logs } = await client.request("GET", path);
          for (const e of logs) process.stdout.write(format(e));
          return;
        }
        const ctrl = new AbortController();
        process.once("SIGINT", () => ctrl.abort());
        await client.follow(`${path}&follow=true`, (e) => process.stdout.write(format(e)), ctrl.signal);
      }),
    );
}
