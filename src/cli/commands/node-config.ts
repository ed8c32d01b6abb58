import { Command } from "commander";
import { readFileSync } from "node:fs";
import { clientConfigPath, readClientConfig, writeClientConfig, cliAction, ClientError, NodeClient } from "../../server/client.js";

export function registerNodeConfig(program: Command): void {
  program
    .command("node-config")
    .description(`Save which node the CLI talks to and its token (in ${clientConfigPath()}, mode 0600); without options, show it`)
    .option("--node <url>", "the node's API URL, e.g. http://127.0.0.1:7070")
    .option("--token <token>", "an API token (admin or tenant)")
    .option("--token-file <file>", "read the token from a file (e.g. <data>/bootstrap-token)")
    .option("--no-check", "save without checking the token against the node")
    .action((flags: { node?: string; token?: string; tokenFile?: string; check: boolean }) =>
      cliAction(async () => {
        const cur = readClientConfig();
        let token = flags.token;
        if (flags.tokenFile) {
          try {
            token = readFileSync(flags.tokenFile, "utf8").trim();
          } catch (err) {
            throw new ClientError("bad_token_file", `cannot read ${flags.tokenFile}: ${(err as Error).message}`);
          }
        }
        if (!flags.node && !token) {
          const shown = { node: cur.node ?? "(not set: http://127.0.0.1:7070)", token: cur.token ? `${cur.token.slice(0, 10)}…` : "(not set)" };
          process.stdout.write(`config: ${clientConfigPath()}\nnode:   ${shown.node}\ntoken:  ${shown.token}\n`);
          return;
        }
        const next = { ...cur, ...(flags.node ? { node: flags.node.replace(/\/+$/, "") } : {}), ...(token ? { token } : {}) };
        if (flags.check && next.token) {
          const who = await new NodeClient(next.node ?? "http://127.0.0.1:7070", next.token).request("GET", "/v1/whoami");
          process.stdout.write(`token ok: ${who.scope}${who.tenant ? ` of tenant ${who.tenant.name}` : ""}\n`);
        }
        writeClientConfig(next);
        process.stdout.write(`saved ${clientConfigPath()}\n`);
      }),
    );
}
