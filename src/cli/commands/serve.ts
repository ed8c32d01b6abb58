import { Command, Option } from "commander";
import { parseTier, tierUnavailable, type Tier } from "../../sandbox/tiers/tier.js";
import { homedir, hostname } from "node:os";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pino, destination } from "pino";
import { privateNetworkList } from "../../manager/outbound-http.js";
import { startNode } from "../../server/node.js";
import { parseServers, ClusterConfigError, ForeignState, DuplicateNode, type ClusterOptions } from "../../cluster/index.js";
import { parseDuration } from "../../units.js";

interface ServeFlags {
  minTier?: string;
  tenantMinTier: string[];
  tierExecutors?: string;
  tierMaxProcesses?: string;
  tierIdleTimeout: string;
  data: string;
  host: string;
  port: string;
  gatewayPort: string;
  executors?: string;
  memoryMib: string;
  requireSigned?: boolean;
  inProcess?: boolean;
  inlineFuel: string;
  servingThreads: string;
  logLevel: string;
  maxTimeout: string;
  loanTimeout: string;
  domain: string;
  dnsServer: string[];
  outboundPrivate: string[];
  maxConnections?: string;
  serviceExecutors?: string;
  maxConnectionsPerIp: string;
  headersTimeout: string;
  cluster?: string;
  nodeName?: string;
  zone?: string;
  natsUser?: string;
  natsPasswordFile?: string;
  natsNkeyFile?: string;
  natsCa?: string;
  natsCert?: string;
  natsKey?: string;
  jsReplicas?: string;
}

function readSecret(flag: string, file: string): string {
  try {
    return readFileSync(file, "utf8").trim();
  } catch (err) {
    throw new ClusterConfigError(`${flag} ${file}: ${(err as Error).message}`);
  }
}

/** `--cluster` and its companions; credentials from files or the environment (never from the command line). */
function clusterOptions(flags: ServeFlags): ClusterOptions | undefined {
  if (flags.cluster && flags.inProcess) throw new ClusterConfigError("--in-process cannot be used with --cluster (the cluster's extensions answer asynchronously, which needs executors)");
  if (!flags.cluster) {
    const stray = (["nodeName", "zone", "natsUser", "natsPasswordFile", "natsNkeyFile", "natsCa", "natsCert", "natsKey", "jsReplicas"] as const).find((k) => flags[k] !== undefined);
    if (stray) throw new ClusterConfigError(`--${stray.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())} needs --cluster`);
    return undefined;
  }
  const env = process.env;
  const user = flags.natsUser ?? env.UNIWASM_NATS_USER;
  const password = flags.natsPasswordFile ? readSecret("--nats-password-file", flags.natsPasswordFile) : env.UNIWASM_NATS_PASSWORD;
  const nkeySeed = flags.natsNkeyFile ? readSecret("--nats-nkey-file", flags.natsNkeyFile) : env.UNIWASM_NATS_NKEY_SEED;
  const tls = {
    ...(flags.natsCa ? { caFile: flags.natsCa } : {}),
    ...(flags.natsCert ? { certFile: flags.natsCert } : {}),
    ...(flags.natsKey ? { keyFile: flags.natsKey } : {}),
  };
  const jsReplicas = flags.jsReplicas === undefined ? 1 : Number(flags.jsReplicas);
  if (![1, 3, 5].includes(jsReplicas)) throw new ClusterConfigError(`--js-replicas must be 1, 3 or 5, got ${JSON.stringify(flags.jsReplicas)}`);
  return {
    servers: parseServers(flags.cluster),
    credentials: { ...(user ? { user } : {}), ...(password ? { password } : {}), ...(nkeySeed ? { nkeySeed } : {}) },
    ...(Object.keys(tls).length > 0 ? { tls } : {}),
    nodeName: flags.nodeName ?? defaultNodeName(),
    ...(flags.zone ? { zone: flags.zone } : {}),
    jsReplicas,
  };
}

/** The host name, made a valid node name (a Kubernetes pod's name is unique and already valid). */
function defaultNodeName(): string {
  const n = hostname().toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 63);
  return n || "node";
}

function duration(name: string, v: string): number {
  try {
    return Math.ceil(parseDuration(v));
  } catch (err) {
    throw new Error(`--${name}: ${(err as Error).message}`);
  }
}

function connectionFlags(flags: ServeFlags) {
  const perIp = int("max-connections-per-ip", flags.maxConnectionsPerIp, 1);
  const headersTimeoutMs = duration("headers-timeout", flags.headersTimeout);
  const total = flags.maxConnections !== undefined ? int("max-connections", flags.maxConnections, 1) : undefined;
  return {
    gatewayConnections: { maxConnectionsPerIp: perIp, headersTimeoutMs, ...(total !== undefined ? { maxConnections: total } : {}) },
    apiConnections: { maxConnectionsPerIp: perIp, headersTimeoutMs, ...(total !== undefined ? { maxConnections: Math.min(512, total) } : {}) },
  };
}

function int(name: string, v: string, min = 0): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return n;
}

/** --min-tier and --tenant-min-tier NAME=TIER, checked (an unknown tier or a tier this machine cannot give is refused at start). */
function tierFlags(flags: ServeFlags): { minTier: Tier; tenantMinTiers: Record<string, Tier> } {
  const check = (t: Tier, flag: string): Tier => {
    const why = tierUnavailable(t);
    if (why) throw new Error(`${flag}: the ${t} tier is not available here: ${why}`);
    return t;
  };
  const minTier = check(parseTier(flags.minTier ?? "isolate"), "--min-tier");
  const tenantMinTiers: Record<string, Tier> = {};
  for (const p of flags.tenantMinTier) {
    const i = p.indexOf("=");
    if (i <= 0) throw new Error(`--tenant-min-tier takes NAME=TIER (e.g. acme=process), got ${JSON.stringify(p)}`);
    tenantMinTiers[p.slice(0, i)] = check(parseTier(p.slice(i + 1)), `--tenant-min-tier ${p}`);
  }
  return { minTier, tenantMinTiers };
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
    .option("--serving-threads <n>", "threads answering gateway connections on the one port, the main thread included; each runs inline apps itself, tenant quotas are shared (see docs/node.md, Serving threads)", "1")
    .option("--inline-fuel <n>", "fuel budget (instructions) of a request run inline on the serving thread; apps that qualify run there (see docs/node.md, Placement); 0: every guest on executors", "10000000")
    .option("--min-tier <tier>", "the weakest tier any app runs on: isolate, process (sandboxed processes: bubblewrap + seccomp) or gvisor; apps asking for less are raised to it", "isolate")
    .option("--tenant-min-tier <name=tier>", "the weakest tier of one tenant's apps (repeatable), beside the tenant's minTier quota", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option("--tier-executors <n>", "most sandboxed executor processes one tenant holds on a sandboxed tier: a process serves one tenant only (default: the executors' count)")
    .option("--tier-max-processes <n>", "most sandboxed executor processes of all tenants together, every sandboxed tier (default: 4 x --tier-executors); idle tenants' pools make room first")
    .option("--tier-idle-timeout <duration>", "a tenant's sandboxed executors with no work and no warm instance for this long are stopped", "60s")
    .option("--max-timeout <duration>", "bound on every request's deadline (apps may ask for less)", "60s")
    .option("--loan-timeout <duration>", "deadline of a request on an executor lent beyond its tenant's fair share", "1s")
    .option("--domain <name>", "the node's domain: tenant T owns T.<domain> and *.T.<domain>", "localhost")
    .option("--service-executors <n>", "most executors services (long-running apps) may hold; the rest stay for requests (default: half, rounded down)")
    .option("--max-connections <n>", "most open gateway connections (default: half the open-file limit); the API takes at most 512")
    .option("--max-connections-per-ip <n>", "most open connections from one client address, per server", "256")
    .option("--headers-timeout <duration>", "time for a client to send a request's headers", "5s")
    .option(
      "--outbound-private <networks>",
      "loopback/private/link-local addresses or CIDR networks (comma-separated, repeatable) apps may reach with uniwasm:http when their allowed_outbound_hosts names the address literally; default none",
      (v: string, acc: string[]) => [...acc, ...v.split(",").map((n) => n.trim()).filter((n) => n.length > 0)],
      [] as string[],
    )
    .option("--dns-server <addr>", "DNS server for verifying custom domains (repeatable; default the system's)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option("--cluster <urls>", "join a cluster: NATS JetStream servers, nats://HOST:PORT[,...] (tls://... for TLS); needs credentials")
    .option("--node-name <name>", "this node's name in the cluster (default: the host name)")
    .option("--zone <zone>", "failure domain for spreading replicas (default: default)")
    .option("--nats-user <user>", "NATS user (or UNIWASM_NATS_USER)")
    .option("--nats-password-file <file>", "file holding the NATS user's password (or UNIWASM_NATS_PASSWORD)")
    .option("--nats-nkey-file <file>", "file holding an nkey user seed, SU... (or UNIWASM_NATS_NKEY_SEED)")
    .option("--nats-ca <file>", "CA bundle of the NATS servers' TLS certificates (turns TLS on)")
    .option("--nats-cert <file>", "client certificate for NATS TLS")
    .option("--nats-key <file>", "client key for NATS TLS")
    .option("--js-replicas <n>", "JetStream replicas of the cluster's streams and buckets: 1, 3 or 5 (default 1)")
    .addOption(new Option("--log-level <level>", "JSON log level").choices(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"))
    .action(async (flags: ServeFlags) => {
      // JSON logs go to stderr; stdout carries the URLs and the first-start token.
      const log = pino({ name: "uniwasm-node", level: flags.logLevel }, destination(2));
      let cluster: ClusterOptions | undefined;
      try {
        cluster = clusterOptions(flags);
        checkOutboundPrivate(flags.outboundPrivate);
      } catch (err) {
        process.stderr.write(`uniwasm: serve: ${(err as Error).message}\n`);
        process.exitCode = 2;
        return;
      }
      let tiers: { minTier: Tier; tenantMinTiers: Record<string, Tier> };
      try {
        tiers = tierFlags(flags);
      } catch (err) {
        process.stderr.write(`uniwasm: serve: ${(err as Error).message}\n`);
        process.exitCode = 2;
        return;
      }
      const node = await startNode({
        ...tiers,
        ...(flags.tierExecutors ? { tierExecutors: int("tier-executors", flags.tierExecutors, 1) } : {}),
        ...(flags.tierMaxProcesses ? { tierMaxProcesses: int("tier-max-processes", flags.tierMaxProcesses, 1) } : {}),
        tierIdleMs: duration("tier-idle-timeout", flags.tierIdleTimeout),
        dataDir: flags.data,
        host: flags.host,
        apiPort: int("port", flags.port),
        gatewayPort: int("gateway-port", flags.gatewayPort),
        ...(flags.executors ? { executors: int("executors", flags.executors, 1) } : {}),
        nodeMemoryMiB: int("memory-mib", flags.memoryMib, 1),
        maxTimeoutMs: duration("max-timeout", flags.maxTimeout),
        loanTimeoutMs: duration("loan-timeout", flags.loanTimeout),
        domain: flags.domain.toLowerCase(),
        ...connectionFlags(flags),
        ...(flags.serviceExecutors !== undefined ? { serviceExecutors: int("service-executors", flags.serviceExecutors, 0) } : {}),
        ...(flags.dnsServer.length > 0 ? { dnsServers: flags.dnsServer } : {}),
        outbound: { privateNetworks: flags.outboundPrivate },
        signaturePolicy: flags.requireSigned ? "require-trusted" : "none",
        ...(flags.inProcess ? { inProcess: true } : {}),
        inlineFuel: int("inline-fuel", flags.inlineFuel),
        servingThreads: int("serving-threads", flags.servingThreads, 1),
        ...(cluster ? { cluster } : {}),
        logger: log,
      }).catch((err: unknown) => {
        // Joining a cluster fails for reasons the operator fixes (credentials, a reused name or data dir, NATS down): one line, exit 2.
        if (err instanceof ClusterConfigError || err instanceof ForeignState || err instanceof DuplicateNode || (cluster && /NATS|cluster/.test((err as Error).message))) {
          process.stderr.write(`uniwasm: serve: ${(err as Error).message}\n`);
          process.exitCode = 2;
          return undefined;
        }
        throw err;
      });
      if (!node) return;
      const out = process.stdout;
      out.write(`uniwasm node ready (data: ${flags.data}, guests: ${node.manager.runner.name})\n`);
      out.write(`  API        ${node.apiUrl}   (OpenAPI: ${node.apiUrl}/openapi.json)\n`);
      out.write(`  gateway    ${node.gatewayUrl}\n`);
      out.write(`  dashboard  ${node.dashboardUrl}\n`);
      out.write(`  metrics    ${node.apiUrl}/metrics\n`);
      if (tiers.minTier !== "isolate" || Object.keys(tiers.tenantMinTiers).length > 0) {
        const per = Object.entries(tiers.tenantMinTiers).map(([t, tier]) => `${t}: ${tier}`);
        out.write(`  tiers      every app at least ${tiers.minTier}${per.length ? `; tenants ${per.join(", ")}` : ""}\n`);
      }
      if (node.cluster) out.write(`  cluster    node ${node.cluster.nodeName} (zone ${node.cluster.opts.zone}) on ${node.cluster.opts.servers.join(",")}\n`);
      if (node.bootstrap) {
        out.write(`\nFirst start: an admin token was created. It is shown once here and kept in ${node.bootstrap.file} (mode 0600):\n\n  ${node.bootstrap.secret}\n\n`);
        out.write(`Point the CLI at this node:  uniwasm node-config --node ${node.apiUrl} --token-file ${node.bootstrap.file}\n`);
      } else if (node.cluster) {
        out.write(`Admin token: the cluster's first one (printed by the node that started the cluster, kept in its data directory).\n`);
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

/** `--outbound-private` is checked at start (exit 2, the entry named), not at an app's first request. */
function checkOutboundPrivate(networks: string[]): void {
  try {
    privateNetworkList(networks);
  } catch (err) {
    throw new Error(`--outbound-private: ${(err as Error).message}`);
  }
}
