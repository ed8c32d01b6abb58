import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from "fastify";
import swagger from "@fastify/swagger";
import { pino, type Logger } from "pino";
import { createServer } from "node:http";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, availableParallelism } from "node:os";
import { join, extname } from "node:path";
import { fileURLToPath } from "node:url";
import { NodeStore, SqliteControlState, type AppRecord, type ControlState, type TenantQuotas, type TenantRecord } from "../store/index.js";
import { joinCluster, ClusterUnavailable, type Cluster, type ClusterOptions } from "../cluster/index.js";
import { TierRunner } from "../manager/tier-runner.js";
import { TIERS, type Tier } from "../sandbox/tiers/tier.js";
import { ResourceManager, Deployer, ControlError, dnsTxtLookup, InProcessRunner, ExecutorPoolRunner, placingRunner, DEFAULT_INLINE_FUEL, DEFAULT_TENANT_QUOTAS, type InstanceRunner, type RunEvent, type BackoffOptions } from "../manager/index.js";
import { LIMIT_REASONS, type LimitReason } from "../sandbox/limits.js";
import { VERSION } from "../version.js";
import { ApiError, ERROR_CATALOGUE } from "./errors.js";
import { registerApi } from "./api.js";
import { Gateway, type GatewayHooks, type RequestFinished } from "./gateway.js";
import { ServingThreads } from "./serving-threads.js";
import { SharedTenantMeters } from "../manager/rate.js";
import { NodeMetrics } from "./metrics.js";
import { StatsRecorder } from "./stats.js";
import { type ImageSource, type SignaturePolicy } from "./image-source.js";
import { imageLayerSource } from "./image-layer-source.js";
import { ConnectionGuard, defaultMaxConnections, httpTimeouts, DEFAULT_CONNECTIONS_PER_IP, DEFAULT_HEADERS_TIMEOUT_MS, type ConnectionLimits } from "./connections.js";
import { extensionFactory } from "../manager/extension-providers.js";
import { OutboundHttp, type OutboundHttpOptions } from "../manager/outbound-http.js";
import { ServiceCalls } from "./service-calls.js";

export interface NodeOptions {
  /** Data directory (SQLite database, blobs, bootstrap token). */
  dataDir: string;
  /** Address to listen on. Default 127.0.0.1: a node is private until you say otherwise. */
  host?: string;
  /** Control-plane API, dashboard and /metrics port. Default 7070; 0 = ephemeral. */
  apiPort?: number;
  /** Gateway (HTTP triggers) port. Default 7080; 0 = ephemeral. */
  gatewayPort?: number;
  /** What runs guests. Default: the sandbox's executor pool (worker threads). */
  runner?: InstanceRunner;
  /** Executors (worker threads) for the default runner. Default: the number of CPUs. */
  executors?: number;
  /** Run guests on the node's own thread (no deadlines; for embedding and debugging). */
  inProcess?: boolean;
  /**
   * Fuel budget of a request run inline on the serving thread (apps that
   * qualify, see src/manager/placement.ts), instructions; 0: every guest on
   * executors. Default DEFAULT_INLINE_FUEL (10,000,000).
   */
  inlineFuel?: number;
  /**
   * Threads answering gateway connections, the main thread included
   * (serving-threads.ts). Default 1: the main thread alone. Not with a
   * cluster or a custom runner.
   */
  servingThreads?: number;
  /** Node-wide memory budget for live instances, MiB. Default 4096. */
  nodeMemoryMiB?: number;
  /** The weakest tier any app runs on (src/sandbox/tiers/tier.ts); its executors are started with the node. Default isolate. */
  minTier?: Tier;
  /** The weakest tier of each named tenant's apps (beside a tenant's own `minTier` quota). */
  tenantMinTiers?: Readonly<Record<string, Tier>>;
  /** Most sandboxed executor processes one tenant holds on a sandboxed tier (a process serves one tenant only). Default: the executors' count. */
  tierExecutors?: number;
  /** Most sandboxed executor processes of all tenants together (spares not counted). Default: 4 × tierExecutors. */
  tierMaxProcesses?: number;
  /** A tenant's sandboxed executors with no work and no warm reactor for this long are stopped, ms. Default 60 000. */
  tierIdleMs?: number;
  /** Defaults for every tenant's quotas. */
  defaultQuotas?: Partial<TenantQuotas>;
  signaturePolicy?: SignaturePolicy;
  images?: ImageSource;
  /** Largest image upload, bytes. Default 64 MiB. */
  maxImageBytes?: number;
  /** pino logger; default JSON lines to stdout at level "info"; `false` silences. */
  logger?: Logger | false;
  /** Log lines kept per app. Default 2000. */
  logLinesPerApp?: number;
  serviceBackoff?: BackoffOptions;
  reapIntervalMs?: number;
  /** Bound on every request's deadline, ms (an app may ask for less). Default 60 000. */
  maxTimeoutMs?: number;
  /** Join a cluster on NATS JetStream: the control state is the cluster's, apps run where they are placed. Absent: one node, SQLite. */
  cluster?: ClusterOptions;
  /** Deadline of a request on an executor lent beyond its tenant's fair share, ms. Default 1000. */
  loanTimeoutMs?: number;
  /** Most executors services may hold at once; the rest stay for requests. Default: half of them, rounded down. */
  serviceExecutors?: number;
  /** The node's domain: tenant T owns T.<domain> and *.T.<domain>; an app's own host is <app>.T.<domain>. Default "localhost". */
  domain?: string;
  /** DNS servers for domain verification ("127.0.0.1:5353"); default the system's. */
  dnsServers?: string[];
  /** Caps on the gateway's connections. Defaults: half the process's open-file limit, 256 per client address, headers within 5 s. */
  gatewayConnections?: Partial<ConnectionLimits>;
  /** Caps on the API's connections. Defaults: 512, 256 per client address, headers within 5 s. */
  apiConnections?: Partial<ConnectionLimits>;
  /** Called once per gateway request with its outcome (`uniwasm dev` prints them). */
  onRequest?: (e: RequestFinished) => void;
  /**
   * uniwasm:http's checked client: byte caps, timeout, redirects, a resolver (tests), and
   * `privateNetworks`: the loopback/private/link-local networks apps may reach by naming an
   * address literally — none unless given (tenants write the allow-lists).
   */
  outbound?: OutboundHttpOptions;
  /**
   * Load the outbound HTTP client before serving (default true): loading it
   * takes the serving thread ~100 ms, which would otherwise fall on every
   * tenant's requests at the first outbound call. Tests that never call out
   * turn it off to start faster.
   */
  warmOutbound?: boolean;
}

export interface RunningNode {
  apiUrl: string;
  gatewayUrl: string;
  dashboardUrl: string;
  store: NodeStore;
  /** Tenants, tokens, images and apps: every change goes through here. */
  state: ControlState;
  /** Set when the node is a member of a cluster. */
  cluster?: Cluster;
  manager: ResourceManager;
  metrics: NodeMetrics;
  gateway: Gateway;
  api: FastifyInstance;
  /** Set on a node's very first start: the admin token, also written to `file` (mode 0600). */
  bootstrap?: { secret: string; file: string };
  /** Stops accepting, lets in-flight requests finish, then stops instances and closes the store. */
  close(): Promise<void>;
}

const DASHBOARD_TYPES: Record<string, string> = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml" };

function dashboardDir(): string {
  // Plain files, no build step: served from the source tree next to the compiled node.
  for (const rel of ["./dashboard/", "../../../src/server/dashboard/"]) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(join(p, "index.html"))) return p;
  }
  throw new Error("dashboard files not found (expected src/server/dashboard/index.html)");
}

export async function startNode(opts: NodeOptions): Promise<RunningNode> {
  const host = opts.host ?? "127.0.0.1";
  const log: Logger = opts.logger === false ? pino({ level: "silent" }) : opts.logger ?? pino({ name: "uniwasm-node" });
  const store = new NodeStore({ dataDir: opts.dataDir, logs: { maxLinesPerApp: opts.logLinesPerApp ?? 2000 } });
  store.startFlushing(100);
  let cluster: Cluster | undefined;
  if (opts.cluster) {
    try {
      // Joins and applies the cluster's control state up to date before anything is served.
      cluster = await joinCluster(store, opts.cluster, log);
    } catch (err) {
      store.close();
      throw err;
    }
  }
  const state: ControlState = cluster?.state ?? new SqliteControlState(store);
  const metrics = new NodeMetrics();
  const stats = new StatsRecorder();
  const deniedCalls = new Map<string, Record<string, number>>();
  // The hot path asks the manager's in-memory tenant table, never SQLite.
  const tenantName = (id: string): string => manager.tenant(id)?.name ?? store.tenants.find(id)?.name ?? id;
  const decoder = new TextDecoder();
  const appendLines = (appId: string, stream: "stdout" | "stderr", chunk: Uint8Array) => {
    for (const line of decoder.decode(chunk).split("\n")) if (line.length > 0) store.logs.append(appId, stream, line);
  };

  const runner = opts.runner ?? (await defaultRunner(opts));
  const servingCount = Math.max(1, opts.servingThreads ?? 1);
  if (servingCount > 1 && (cluster || opts.runner || opts.inProcess)) throw new Error("servingThreads > 1 is for a single node with its default runner (not with a cluster, a custom runner or in-process guests)");
  // Serving threads admit against the same tenant meters as the manager.
  const meters = servingCount > 1 ? new SharedTenantMeters() : undefined;
  let servingThreads: ServingThreads | undefined;
  // A node whose minimum is a sandboxed tier starts its executors now, so that the first request does not wait for them.
  if (opts.minTier && opts.minTier !== "isolate" && runner instanceof TierRunner) await runner.warm(opts.minTier);
  // Host extensions: the kernel defines them, the node provides them (docs/extensions.md).
  const outbound = new OutboundHttp({ privateNetworks: [], ...opts.outbound });
  if (opts.warmOutbound ?? true) await OutboundHttp.warm();
  let services: ServiceCalls | undefined;
  const extensions = extensionFactory({
    kv: cluster?.kv ?? store.kv,
    kvQuotas: (tenantId) => {
      const q = manager.quotasOf(tenantId);
      return { maxKeyBytes: q.kvMaxKeyBytes, maxValueBytes: q.kvMaxValueBytes, maxTotalBytes: q.kvMaxTotalBytes };
    },
    variables: (appId, name) => store.variables.value(appId, name),
    http: outbound,
    log: (scope, level, line) => store.logs.append(scope.app.id, "stderr", `[${level}] ${line}`),
    services: (caller, name, input) => services!.call(caller, name, input),
  });
  const manager = new ResourceManager({
    runner,
    // Tenants' guests share the cores the serving threads leave (CPU pacing, manager/pacing.ts).
    tenantCores: Math.max(1, availableParallelism() - servingCount),
    extensions,
    nodeMemoryBytes: (opts.nodeMemoryMiB ?? 4096) * 1024 * 1024,
    defaultQuotas: { ...DEFAULT_TENANT_QUOTAS, ...(opts.defaultQuotas ?? {}) },
    ...(opts.serviceBackoff ? { serviceBackoff: opts.serviceBackoff } : {}),
    ...(opts.reapIntervalMs ? { reapIntervalMs: opts.reapIntervalMs } : {}),
    ...(opts.maxTimeoutMs !== undefined ? { maxTimeoutMs: opts.maxTimeoutMs } : {}),
    ...(opts.loanTimeoutMs !== undefined ? { loanTimeoutMs: opts.loanTimeoutMs } : {}),
    ...(opts.serviceExecutors !== undefined ? { serviceExecutors: opts.serviceExecutors } : {}),
    ...(opts.inlineFuel !== undefined ? { inlineFuel: opts.inlineFuel } : {}),
    ...(meters ? { meters } : {}),
    ...(opts.minTier ? { minTier: opts.minTier } : {}),
    ...(opts.tenantMinTiers ? { tenantMinTiers: opts.tenantMinTiers } : {}),
    observer: {
      runFinished: (e: RunEvent) => {
        const tenant = tenantName(e.tenantId);
        const labels = { tenant, app: e.appName };
        const m = metrics.forApp(tenant, e.appName);
        m.starts[e.start].inc();
        if (e.outcome.fuelUsed) m.fuel.inc(e.outcome.fuelUsed);
        if (e.outcome.memoryBytes !== undefined) m.memory.set(e.outcome.memoryBytes);
        m.queueWait.observe(e.queuedMs / 1000);
        if ((LIMIT_REASONS as readonly string[]).includes(e.outcome.reason)) {
          metrics.limitHits.inc({ ...labels, reason: e.outcome.reason as LimitReason });
          store.logs.append(e.appId, "event", `instance stopped: ${e.outcome.reason}${e.outcome.message ? ` (${e.outcome.message})` : ""}`);
        }
        const denied = e.outcome.deniedCalls;
        // Per request, and almost always empty: no allocation unless something was denied.
        if (denied) {
          for (const call in denied) {
            const n = denied[call]!;
            if (n <= 0) continue;
            let acc = deniedCalls.get(e.appId);
            if (!acc) deniedCalls.set(e.appId, (acc = {}));
            // The first refusal of each call goes into the app's log; later ones are only counted (no log flood).
            if (acc[call] === undefined) store.logs.append(e.appId, "event", `denied host call ${call}: not granted to this app (further refusals counted in deniedCalls)`);
            acc[call] = (acc[call] ?? 0) + n;
            metrics.denied.inc({ ...labels, call }, n);
          }
        }
        store.usage.add(e.tenantId, { cpuMs: e.outcome.durationMs, fuel: e.outcome.fuelUsed ?? 0 });
        cluster?.ran(e.tenantId, e.kind !== "service", e.outcome.durationMs);
      },
      event: (e) => {
        // An app that moved from the serving thread moves on every serving thread.
        if (e.kind === "placement") void servingThreads?.publish();
        store.logs.append(e.appId, "event", e.message);
        log.info({ tenant: tenantName(e.tenantId), app: e.appId, instance: e.instanceId, kind: e.kind }, e.message);
      },
      refused: (e) => {
        metrics.refusals.inc({ tenant: tenantName(e.tenantId), code: e.code });
        store.usage.add(e.tenantId, { rejected: 1 });
      },
      output: (appId, stream, chunk) => appendLines(appId, stream, chunk),
      servingThreadTime: (e) => {
        metrics.servingThreadCpu.inc({ tenant: tenantName(e.tenantId) }, e.ms / 1000);
        store.usage.add(e.tenantId, { cpuMs: e.ms });
      },
      paced: (e) => metrics.paced.inc({ tenant: tenantName(e.tenantId), resource: e.resource }, e.ms / 1000),
      prepared: (e) => {
        metrics.prepareCpu.inc({ tenant: tenantName(e.tenantId) }, e.chargedMs / 1000);
        store.usage.add(e.tenantId, { cpuMs: e.chargedMs });
        store.logs.append(e.appId, "event", `module prepared in ${Math.round(e.wallMs)} ms (${Math.round(e.chargedMs)} ms of CPU, charged to the tenant)`);
      },
    },
  });

  services = new ServiceCalls((tenantId, name) => state.apps.findByName(tenantId, name), manager, {
    stderr: (appId, chunk) => appendLines(appId, "stderr", chunk),
    event: (appId, line) => store.logs.append(appId, "event", line),
    // In a cluster, a callee without a replica here is called where it runs.
    ...(cluster
      ? {
          remote: ({ callee, callerName, chain, input }) => {
            // A request's deadline is cut to the node's bound (a service callee may have none).
            const t = Math.min(callee.config.limits.timeoutMs, manager.maxTimeoutMs);
            return cluster!.callService({ appId: callee.id, callerName, chain, input, timeoutMs: t + Math.min(t, 30_000) + 1000 });
          },
        }
      : {}),
  });
  const deployer = new Deployer({
    store,
    state,
    manager,
    ...(opts.domain ? { domain: opts.domain } : {}),
    txtLookup: dnsTxtLookup(opts.dnsServers),
    hooks: {
      event: (appId, line) => store.logs.append(appId, "event", line),
      warn: (obj, msg) => log.warn(obj, msg),
      ...(cluster ? { rollout: (app: AppRecord) => cluster!.awaitRollout(app) } : {}),
    },
  });
  if (cluster) {
    // Apps start where the cluster places them (the replica agent), not all here.
    for (const t of state.tenants.list()) manager.setTenant(t);
  } else {
    // Restore: every tenant, then every app, exactly as stored.
    await deployer.restore();
  }

  let bootstrap: RunningNode["bootstrap"];
  const first = await state.createBootstrapToken();
  if (first) {
    const { secret } = first;
    const file = join(opts.dataDir, "bootstrap-token");
    writeFileSync(file, secret + "\n", { mode: 0o600 });
    chmodSync(file, 0o600);
    bootstrap = { secret, file };
  }

  // Connection floods (idle or half-sent connections) are shed at accept, counted and logged.
  const guard = (name: "gateway" | "api", given: Partial<ConnectionLimits> | undefined, maxConnections: number) =>
    new ConnectionGuard(
      name,
      { maxConnections, maxConnectionsPerIp: DEFAULT_CONNECTIONS_PER_IP, headersTimeoutMs: DEFAULT_HEADERS_TIMEOUT_MS, ...given },
      (reason) => metrics.connectionsShed.inc({ server: name, reason }),
      (e) => log.warn(e, `${e.server}: shed ${e.count} connection(s) at the ${e.reason === "total" ? "total" : "per-address"} cap of ${e.limit} (last from ${e.remoteAddress})`),
    );
  const gatewayGuard = guard("gateway", opts.gatewayConnections, defaultMaxConnections());
  const apiGuard = guard("api", opts.apiConnections, 512);
  const gatewayHooks: GatewayHooks = {
      finished: (e) => {
        if (e.forwarded) {
          metrics.forwarded.inc({ tenant: e.tenant.name, app: e.app.name, status: String(e.status) });
          return; // counted, with its usage, on the node that served it
        }
        const m = metrics.forApp(e.tenant.name, e.app.name);
        m.requests(e.status).inc();
        m.latency.observe(e.ms / 1000);
        stats.record(e.tenant.id, e.app.name, e.ms, e.status >= 500);
        store.usage.add(e.tenant.id, { requests: 1, errors: e.status >= 500 ? 1 : 0, bytesIn: e.bytesIn, bytesOut: e.bytesOut });
        opts.onRequest?.(e);
      },
      stderr: (appId, chunk) => appendLines(appId, "stderr", chunk),
      event: (appId, line) => store.logs.append(appId, "event", line),
      log,
  };
  const gateway = new Gateway({
    store,
    manager,
    connections: gatewayGuard,
    hooks: gatewayHooks,
    ...(cluster ? { forward: (f, res) => cluster!.forward(f, res) } : {}),
  });
  /** Routes and placements changed: the gateway reloads, and every serving thread has the change when this resolves. */
  const reloadRoutes = (): Promise<void> => {
    gateway.reload();
    return servingThreads?.publish() ?? Promise.resolve();
  };
  // Changes made through other nodes of the cluster reach this node's manager and routes here.
  state.onChange((c) => {
    const cmd = c.command;
    if (cluster && !c.remote && c.deleted) {
      // The node that made the change clears the cluster's kv data that went with the app or tenant (SQLite cascades on one node).
      const purge = cmd.op === "app.delete" ? { appStore: `app:${cmd.id}` } : cmd.op === "tenant.delete" ? { tenant: cmd.id } : undefined;
      if (purge) void cluster.kv.purge(purge).catch((err: unknown) => log.warn({ err }, "cluster: kv data of a deleted app or tenant not cleared"));
    }
    if (!c.remote) return;
    if ((cmd.op === "tenant.create" || cmd.op === "tenant.update") && c.record) manager.setTenant(c.record as TenantRecord);
    else if (cmd.op === "tenant.delete") void manager.removeTenant(cmd.id);
    if (cmd.op.startsWith("app.") || cmd.op === "tenant.delete") void reloadRoutes();
  });

  const api = Fastify({
    loggerInstance: log.child({ component: "api" }, { level: "warn" }) as FastifyBaseLogger,
    bodyLimit: 1024 * 1024,
    // Our own server: the same connection caps and headers deadline as the gateway (image uploads get 2 minutes).
    serverFactory: (handler) => {
      const server = createServer({ ...httpTimeouts(apiGuard.limits, 120_000), keepAliveTimeout: 5000 }, handler);
      apiGuard.attach(server);
      return server;
    },
  }) as unknown as FastifyInstance;
  await api.register(swagger, {
    openapi: {
      openapi: "3.0.3",
      info: { title: "uniwasm node API", version: VERSION, description: "Control plane of a uniwasm node. Errors are {error:{code,message}}; codes in docs/api.md." },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
    },
  });
  api.addContentTypeParser(["application/wasm", "application/x-tar"], { parseAs: "buffer", bodyLimit: opts.maxImageBytes ?? 64 * 1024 * 1024 }, (_req, body, done) => done(null, body));
  api.setErrorHandler((err: FastifyError | ApiError, req, reply) => {
    let e: ApiError;
    if (err instanceof ApiError) e = err;
    else if (err instanceof ControlError) e = new ApiError(err.code, err.message, err.retryAfter);
    else if (err instanceof ClusterUnavailable) {
      if (err.cause) req.log.warn({ err: err.cause }, "cluster unavailable");
      e = new ApiError("cluster_unavailable", `${err.message.charAt(0).toUpperCase()}${err.message.slice(1)}.`, 1);
    }
    else if ((err as FastifyError).validation) e = new ApiError("bad_request", `Invalid request: ${(err as FastifyError).message}.`);
    else if ((err as FastifyError).code === "FST_ERR_CTP_BODY_TOO_LARGE") e = new ApiError("payload_too_large", "The request body is larger than this route accepts.");
    else if ((err as FastifyError).code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") e = new ApiError("unsupported_media_type", `Unsupported Content-Type ${String(req.headers["content-type"])}.`);
    else if ((err as FastifyError).code === "FST_ERR_CTP_EMPTY_JSON_BODY" || (err as FastifyError).code === "FST_ERR_CTP_INVALID_JSON_BODY" || err instanceof SyntaxError) e = new ApiError("bad_request", `The body is not valid JSON: ${err.message}`);
    else if ((err as FastifyError).statusCode === 400) e = new ApiError("bad_request", err.message);
    else {
      req.log.error({ err }, "unhandled API error");
      e = new ApiError("internal", `Internal error (request ${req.id}).`);
    }
    if (e.retryAfter !== undefined) reply.header("retry-after", String(Math.ceil(e.retryAfter)));
    reply.code(e.status).send(e.body());
  });
  api.setNotFoundHandler((req, reply) => {
    reply.code(404).send(new ApiError("not_found", `No route ${req.method} ${req.url.split("?")[0]}.`).body());
  });

  let apiPortBound = 0;
  let gatewayPortBound = 0;
  const gatewayUrl = () => `http://${host}:${gatewayPortBound}`;
  registerApi(api, {
    store,
    state,
    manager,
    deployer,
    stats,
    images: opts.images ?? imageLayerSource(join(opts.dataDir, "images"), opts.signaturePolicy ?? "none"),
    deniedCalls,
    gatewayUrl,
    maxImageBytes: opts.maxImageBytes ?? 64 * 1024 * 1024,
    nodeInfo: () => ({
      version: VERSION,
      runner: runner.name,
      executors: runner.executors,
      servingThreads: { count: servingCount, requests: servingThreads?.requests() ?? [] },
      // Tiers (src/sandbox/tiers/tier.ts): the node's minimum, what this machine can give, the sandboxed pools running.
      tiers: {
        minimum: manager.minTier,
        available: Object.fromEntries(TIERS.map((t) => [t, runner.unavailable ? (runner.unavailable(t) ?? true) : t === "isolate" || "the runner has the isolate tier only"])),
        ...(runner instanceof TierRunner ? { processes: runner.tierProcesses() } : {}),
        pools: runner instanceof TierRunner ? runner.tierPools().map((p) => ({ ...p, tenant: p.tenant ? tenantName(p.tenant) : "" })) : [],
      },
      scheduler: manager.scheduler.stats(),
      deadlines: { maxTimeoutMs: manager.maxTimeoutMs, loanTimeoutMs: manager.loanTimeoutMs },
      domain: deployer.domain,
      quarantine: deployer.quarantine().map((q) => ({ ...q, at: new Date(q.at).toISOString() })),
      connections: Object.fromEntries([gatewayGuard, apiGuard].map((g) => [g.name, { open: g.connections, shed: g.shed, limits: g.limits }])),
      memory: { budgetBytes: manager.budget.nodeLimitBytes, reservedBytes: manager.budget.used(), rssBytes: process.memoryUsage().rss },
      tenants: store.tenants.list().length,
      apps: store.apps.list().length,
      instances: manager.instances().length,
      schemaVersion: store.schemaVersion,
      gatewayUrl: gatewayUrl(),
      cluster: cluster ? cluster.info() : null,
    }),
    ...(cluster ? { cluster: cluster } : {}),
  });
  // Deploys and deletes change the route table (and tenants their quotas): reloaded after every mutating
  // app/tenant call, before it answers, so that a deploy that returned is served by every serving thread.
  api.addHook("onSend", async (req, _reply, payload) => {
    if (req.method !== "GET" && /^\/v1\/tenants\//.test(req.url)) await reloadRoutes();
    return payload;
  });

  api.get("/openapi.json", { schema: { hide: true } }, async () => api.swagger());
  // Liveness: the node answers. In a cluster a NATS outage does not fail it (the node keeps serving what it runs).
  api.get("/healthz", { schema: { hide: true } }, async () => (cluster ? { ok: true, cluster: { node: cluster.nodeName, connected: cluster.info().connected } } : { ok: true }));
  api.get("/metrics", { schema: { summary: "Prometheus metrics (admin)", tags: ["node"], security: [{ bearer: [] }] } }, async (req, reply) => {
    if (req.principal?.scope !== "admin") throw new ApiError("forbidden", "/metrics needs an admin token.");
    metrics.connections.set({ server: "gateway" }, gatewayGuard.connections);
    metrics.connections.set({ server: "api" }, apiGuard.connections);
    metrics.liveInstances.reset();
    for (const t of store.tenants.list()) metrics.liveInstances.set({ tenant: t.name }, manager.tenantUsage(t.id).liveInstances);
    reply.header("content-type", metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  const dashDir = dashboardDir();
  api.get("/", { schema: { hide: true } }, async (_req, reply) => reply.redirect("/dashboard/"));
  api.get("/dashboard/*", { schema: { hide: true } }, async (req, reply) => {
    const name = (req.params as { "*": string })["*"] || "index.html";
    if (!/^[a-z0-9-]+\.(html|js|css|svg)$/.test(name)) throw new ApiError("not_found", `No dashboard file ${name}.`);
    const path = join(dashDir, name);
    if (!existsSync(path)) throw new ApiError("not_found", `No dashboard file ${name}.`);
    reply.header("content-type", DASHBOARD_TYPES[extname(name)]!).header("cache-control", "no-cache");
    return readFileSync(path);
  });

  try {
    await api.listen({ host, port: opts.apiPort ?? 7070 });
    apiPortBound = (api.server.address() as { port: number }).port;
    gatewayPortBound = await gateway.listen(host, opts.gatewayPort ?? 7080);
    if (meters) {
      servingThreads = new ServingThreads({
        count: servingCount - 1,
        fd: (gateway.server as unknown as { _handle: { fd: number } })._handle.fd,
        port: gatewayPortBound,
        store,
        manager,
        meters,
        inlineFuel: opts.inlineFuel ?? DEFAULT_INLINE_FUEL,
        connections: gatewayGuard.limits,
        finished: gatewayHooks.finished,
        stderr: gatewayHooks.stderr,
        event: gatewayHooks.event,
        warn: (message) => log.warn({}, message),
      });
      await servingThreads.start();
    }
  } catch (err) {
    // A port in use: release what started (cluster membership, listeners, executors, store), so the caller can report it and exit.
    await cluster?.close().catch(() => {});
    await api.close().catch(() => {});
    gatewayGuard.close();
    apiGuard.close();
    await manager.close();
    if (!cluster) await state.close();
    store.close();
    throw err;
  }
  const apiUrl = `http://${host}:${apiPortBound}`;
  let socketDir: string | undefined;
  if (cluster) {
    // Requests forwarded by other nodes reach this gateway on a private socket; then the node announces itself.
    socketDir = mkdtempSync(join(tmpdir(), "uniwasm-gw-"));
    const socketPath = join(socketDir, "gateway.sock");
    await gateway.listenInternal(socketPath);
    const serviceCalls = services;
    await cluster.start({
      onService: async ({ appId, callerName, chain, input }) => {
        const callee = state.apps.get(appId);
        if (!callee) return { status: 404, body: new TextEncoder().encode(JSON.stringify({ error: { message: "no such app" } })) };
        return serviceCalls.invoke(callee, callerName, chain, input);
      },
      runtime: {
        start: (app) => deployer.startStored(app),
        stop: (appId) => manager.undeploy(appId),
        running: (appId) => manager.deployment(appId)?.app.revision,
        runningApps: () => manager.deployedApps(),
      },
      meters: manager,
      socketPath,
      apiUrl,
      gatewayUrl: gatewayUrl(),
      memoryMiB: opts.nodeMemoryMiB ?? 4096,
      reservedMiB: () => Math.round(manager.budget.used() / (1024 * 1024)),
      version: VERSION,
      onEvent: (appId, line) => store.logs.append(appId, "event", line),
      logs: store.logs,
    });
  }
  log.info({ api: apiUrl, gateway: gatewayUrl(), runner: runner.name, data: opts.dataDir }, "node started");

  let closing: Promise<void> | undefined;
  return {
    apiUrl,
    gatewayUrl: gatewayUrl(),
    dashboardUrl: `${apiUrl}/dashboard/`,
    store,
    state,
    ...(cluster ? { cluster } : {}),
    manager,
    metrics,
    gateway,
    api,
    ...(bootstrap ? { bootstrap } : {}),
    close: () =>
      (closing ??= (async () => {
        // A cluster member leaves first: its replicas move at once and no more requests are forwarded here.
        await cluster?.close();
        await servingThreads?.close();
        await Promise.all([gateway.close(), api.close()]);
        gatewayGuard.close();
        apiGuard.close();
        await manager.close();
        if (!cluster) await state.close();
        store.close();
        if (socketDir) rmSync(socketDir, { recursive: true, force: true });
        log.info("node stopped");
      })()),
  };
}

/** Guests run in the sandbox's executor pool (worker threads) unless told otherwise. */
async function defaultRunner(opts: NodeOptions): Promise<InstanceRunner> {
  if (opts.inProcess) return new InProcessRunner();
  const pool = opts.executors !== undefined ? { executors: opts.executors } : {};
  // Extensions of a cluster answer asynchronously: apps granted them are on executors anyway (placement.ts).
  const inlineFuel = opts.inlineFuel ?? DEFAULT_INLINE_FUEL;
  const base = inlineFuel > 0 ? placingRunner({ ...pool, inlineFuel }) : new ExecutorPoolRunner(pool);
  // The sandboxed tiers' pools are made when an app first needs one (tier-runner.ts).
  return new TierRunner(base, {
    ...(opts.tierExecutors !== undefined ? { executors: opts.tierExecutors } : {}),
    ...(opts.tierMaxProcesses !== undefined ? { maxProcesses: opts.tierMaxProcesses } : {}),
    ...(opts.tierIdleMs !== undefined ? { idleMs: opts.tierIdleMs } : {}),
  });
}

export { ERROR_CATALOGUE };
