import { Command, Option } from "commander";
import { homedir } from "node:os";
import { join } from "node:path";
import { pino, destination } from "pino";
import { startNode } from "../../server/node.js";
import { parseDuration } from "../../sandbox/limits.js";

interface ServeFlags {
  data: string;
  host: string;
  port: string;
  gatewayPort: string;
  executors?: string;
  memoryMib: string;
  requireSigned?: boolean;
  inProcess?: boolean;
  logLevel: string;
  maxTimeout: string;
  loanTimeout: string;
  domain: string;
  dnsServer: string[];
}

function duration(name: string, v: string): number {
  try {
    return Math.ceil(parseDuration(v));
  } catch (err) {
    throw new Error(`--${name}: ${(err as Error).message}`);
  }
}

function int(name: string, v: string, min = 0): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return n;
}

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("Run a node: control-plane API, HTTP gateway, dashboard and metrics, with an embedded SQLite store")
    .option("--data <dir>", "data directory (SQLite database, images, bootstrap token)", join(homedir(), ".uniwasm", "node"))
    .option("--host <addr>", "address to listen on (127.0.0.1: reachable from this machine only)", "127.0.0.1")
    .option("--port <n>", "API, dashboard and /metrics port", "7070")
    .option("--gateway-port <n>", "gateway (HTTP triggers) port", "7080")
    .option("--executors <n>", "executor threads running guests (default: CPU count)")
    .option("--memory-mib <n>", "node-wide memory budget for live instances, MiB", "4096")
    .option("--require-signed", "accept only images signed by a trusted key")
    .option("--in-process", "run guests on the node's own thread (no deadlines; debugging only)")
    .option("--max-timeout <duration>", "bound on every request's deadline (apps may ask for less)", "60s")
    .option("--loan-timeout <duration>", "deadline of a request on an executor lent beyond its tenant's fair share", "1s")
    .option("--domain <name>", "the node's domain: tenant T owns T.<domain> and *.T.<domain>", "localhost")
    .option("--dns-server <addr>", "DNS server for verifying custom domains (repeatable; default the system's)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .addOption(new Option("--log-level <level>", "JSON log level").choices(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"))
    .action(async (flags: ServeFlags) => {
      // JSON logs go to stderr; stdout carries the URLs and the first-start token.
      const log = pino({ name: "uniwasm-node", level: flags.logLevel }, destination(2));
      const node = await startNode({
        dataDir: flags.data,
        host: flags.host,
        apiPort: int("port", flags.port),
        gatewayPort: int("gateway-port", flags.gatewayPort),
        ...(flags.executors ? { executors: int("executors", flags.executors, 1) } : {}),
        nodeMemoryMiB: int("memory-mib", flags.memoryMib, 1),
        maxTimeoutMs: duration("max-timeout", flags.maxTimeout),
        loanTimeoutMs: duration("loan-timeout", flags.loanTimeout),
        domain: flags.domain.toLowerCase(),
        ...(flags.dnsServer.length > 0 ? { dnsServers: flags.dnsServer } : {}),
        signaturePolicy: flags.requireSigned ? "require-trusted" : "none",
        ...(flags.inProcess ? { inProcess: true } : {}),
        logger: log,
      });
      const out = process.stdout;
      out.write(`uniwasm node ready (data: ${flags.data}, guests: ${node.manager.runner.name})\n`);
      out.write(`  API        ${node.apiUrl}   (OpenAPI: ${node.apiUrl}/openapi.json)\n`);
      out.write(`  gateway    ${node.gatewayUrl}\n`);
      out.write(`  dashboard  ${node.dashboardUrl}\n`);
      out.write(`  metrics    ${node.apiUrl}/metrics\n`);
      if (node.bootstrap) {
        out.write(`\nFirst start: an admin token was created. It is shown once here and kept in ${node.bootstrap.file} (mode 0600):\n\n  ${node.bootstrap.secret}\n\n`);
        out.write(`Point the CLI at this node:  uniwasm node-config --node ${node.apiUrl} --token-file ${node.bootstrap.file}\n`);
      } else {
        out.write(`Admin token: the one from the first start (${join(flags.data, "bootstrap-token")} if still there).\n`);
      }
      if (flags.host !== "127.0.0.1" && flags.host !== "localhost" && flags.host !== "::1") {
        process.stderr.write(`uniwasm: warning: listening on ${flags.host}: the API and gateway are reachable from other machines\n`);
      }
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (sig: string) => {
          if (stopping) return;
          stopping = true;
          process.stderr.write(`uniwasm: ${sig}: draining in-flight requests…\n`);
          node.close().then(resolve, (err: unknown) => {
            process.stderr.write(`uniwasm: error while stopping: ${(err as Error).message}\n`);
            process.exitCode = 1;
            resolve();
          });
        };
        process.once("SIGINT", () => stop("SIGINT"));
        process.once("SIGTERM", () => stop("SIGTERM"));
      });
    });
}
