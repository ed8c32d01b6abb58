import type { AppConfig, AppSettings, ExtensionGrants, ImageConfig, RouteRequest, RouteSpec, ScalePolicy } from "../store/types.js";
import { DEFAULT_LIMITS, LimitOptionError, parseLimits, resolveLimits, type Limits, type ResolvedLimits } from "../limits.js";
import { EXTENSION_RE, KV_STORE_RE, SERVICE_NAME_RE, VARIABLE_RE, outboundHostProblem } from "../image/manifest.js";
import { ControlError } from "./refusal.js";

const MiB = 1024 * 1024;

/**
 * What an app runs with on a node unless its image or its deploy says
 * otherwise: the run defaults (src/limits.ts), tighter for a shared node.
 */
export const NODE_DEFAULT_LIMITS: Readonly<ResolvedLimits> = Object.freeze({
  ...DEFAULT_LIMITS,
  maxMemoryBytes: 64 * MiB,
  timeoutMs: 10_000,
  stdoutBytes: 16 * MiB,
  stderrBytes: 1 * MiB,
  maxBodyBytes: 1 * MiB,
});

/**
 * The most an app may ask for on a node. The executors' stack, table and
 * in-memory directory budgets are the node's: an app may lower them, not
 * raise them. A service's deadline may be unlimited (null); a request's is
 * also bound by the node's `--max-timeout`.
 */
export const NODE_LIMIT_CEILINGS: Readonly<Limits> = Object.freeze({
  maxMemoryBytes: 4096 * MiB,
  timeoutMs: 600_000,
  stdoutBytes: 1024 * MiB,
  stderrBytes: 1024 * MiB,
  openFiles: 65_536,
  maxBodyBytes: 64 * MiB,
  maxTableElements: DEFAULT_LIMITS.maxTableElements,
  stackSizeMb: DEFAULT_LIMITS.stackSizeMb,
  memDirBytes: DEFAULT_LIMITS.memDirBytes,
  // Any tier: the manager refuses one this machine cannot give (bubblewrap or runsc missing), naming it; never dropped.
  tier: "gvisor",
});
export const DEFAULT_SCALE: Readonly<ScalePolicy> = Object.freeze({ minInstances: 0, maxInstances: 4, idleTimeoutMs: 60_000 });

/** What a deploy request may set; each field overrides the image's config. */
export interface DeployRequest extends AppSettings {
  image: string;
}

/** The settings a deploy request may give, each replacing what an earlier deploy set. */
export const SETTING_KEYS = ["abi", "routes", "env", "args", "limits", "scale", "replicas", "extensions"] as const satisfies readonly (keyof AppSettings)[];

/**
 * The settings of a redeploy: what the app's earlier deploys set, with each
 * setting the request gives replacing its earlier value (so a redeploy that
 * names only the image keeps the env, routes and limits set before, as
 * `gcloud run deploy` and Heroku keep config; `"env": {}` clears the env).
 * An app recorded before settings were kept has its config in effect stand in.
 */
export function mergeSettings(existing: AppConfig | undefined, req: AppSettings): AppSettings {
  const earlier: AppSettings = !existing
    ? {}
    : existing.settings ?? {
        abi: existing.abi,
        routes: existing.routes,
        env: existing.env,
        args: existing.args,
        limits: existing.limits,
        scale: existing.scale,
        ...(existing.replicas !== undefined ? { replicas: existing.replicas } : {}),
        ...(existing.extensions ? { extensions: existing.extensions } : {}),
      };
  const merged: AppSettings = {};
  for (const k of SETTING_KEYS) {
    const v = req[k] !== undefined ? req[k] : earlier[k];
    if (v !== undefined) (merged as Record<string, unknown>)[k] = v;
  }
  return merged;
}

/**
 * An app's extension grants: the image's, each list replaced by the deploy
 * request's when it gives one; checked as the manifest checks them.
 * Undefined when nothing is granted.
 */
export function resolveExtensions(image: Partial<ExtensionGrants> | undefined, req: Partial<ExtensionGrants> | undefined): ExtensionGrants | undefined {
  const pick = (k: keyof ExtensionGrants): string[] => {
    const v = req?.[k] ?? image?.[k] ?? [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) bad(`extensions.${k} must be an array of strings`);
    if (v.length > 64) bad(`extensions.${k} has ${v.length} entries; at most 64`);
    return [...new Set(v)];
  };
  const g: ExtensionGrants = { grants: pick("grants"), allowedOutboundHosts: pick("allowedOutboundHosts"), keyValueStores: pick("keyValueStores"), allowedServices: pick("allowedServices"), variables: pick("variables") };
  for (const e of g.grants) if (!EXTENSION_RE.test(e) || e.startsWith("wasi_")) bad(`extensions.grants: ${JSON.stringify(e)} is not an extension name such as "uniwasm:kv"`);
  for (const h of g.allowedOutboundHosts) {
    const p = outboundHostProblem(h);
    if (p) bad(`extensions.allowedOutboundHosts: ${p}`);
  }
  for (const s of g.keyValueStores) if (!KV_STORE_RE.test(s)) bad(`extensions.keyValueStores: ${JSON.stringify(s)} is not a store name ([a-z0-9][a-z0-9_-]*)`);
  for (const s of g.allowedServices) if (!SERVICE_NAME_RE.test(s)) bad(`extensions.allowedServices: ${JSON.stringify(s)} is not an app name`);
  for (const v of g.variables) if (!VARIABLE_RE.test(v)) bad(`extensions.variables: ${JSON.stringify(v)} is not a variable name ([a-z][a-z0-9_]*)`);
  const any = Object.values(g).some((l) => l.length > 0);
  return any ? g : undefined;
}

const HOST_RE = /^(\*|[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*)$/;
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

function bad(message: string): never {
  throw new ControlError("invalid_config", message);
}

/** Checks one route; a route without a host gets `ownHost` (the app's own). */
export function normalizeRoute(r: RouteRequest, i: number, ownHost: string): RouteSpec {
  const host = (r.host ?? ownHost).toLowerCase();
  if (!HOST_RE.test(host)) bad(`routes[${i}].host ${JSON.stringify(r.host)} is not a host name or "*"`);
  let path = r.path ?? "/";
  if (typeof path !== "string" || !path.startsWith("/") || path.includes("?") || path.includes("#") || /\/\.\.?(\/|$)/.test(path)) {
    bad(`routes[${i}].path ${JSON.stringify(r.path)} must start with "/" and contain no query, fragment or dot segments`);
  }
  if (path.length > 1 && path.endsWith("/")) path = path.slice(0, -1);
  return { host, path };
}

/** The route every app gets without asking: `<app>.<tenant>.<domain>` on "/". */
export function defaultRoute(tenantName: string, appName: string, domain = "localhost"): RouteSpec {
  return { host: `${appName}.${tenantName}.${domain}`, path: "/" };
}

/** What a node sets for every app: bounds beyond NODE_LIMIT_CEILINGS, and its domain. */
export interface NodeSettings {
  /** The node's bound on a request's deadline (`--max-timeout`), ms; services are not bound by it. */
  maxTimeoutMs?: number;
  /** The node's domain: an app's own host is `<app>.<tenant>.<domain>`. Default "localhost". */
  domain?: string;
}

/**
 * An app's limits: the node's defaults, under the image's (its manifest's
 * `[limits]`, all of them), under the deploy request's, each checked against
 * the node's ceilings. Refuses fuel 0 (null is "not metered").
 */
export function resolveAppLimits(image: Limits | undefined, req: unknown, abi: string, node: NodeSettings = {}): ResolvedLimits {
  let limits: ResolvedLimits;
  try {
    const given = { ...parseLimits(image), ...parseLimits(req) };
    if (given.fuel === 0 || given.fuel === 0n) throw new LimitOptionError("fuel", "must be at least 1 (null: not metered), got 0");
    const ceilings = { ...NODE_LIMIT_CEILINGS, ...(abi === "service" ? { timeoutMs: Infinity } : {}) };
    // A service's output goes to its log, not to a response: the run default (64 MiB per run).
    const defaults = abi === "service" ? { ...NODE_DEFAULT_LIMITS, stdoutBytes: DEFAULT_LIMITS.stdoutBytes } : NODE_DEFAULT_LIMITS;
    limits = resolveLimits(given, defaults, ceilings);
  } catch (err) {
    if (err instanceof LimitOptionError) bad(`limits.${err.option} ${err.detail}`);
    throw err;
  }
  if (abi !== "service" && node.maxTimeoutMs !== undefined && limits.timeoutMs > node.maxTimeoutMs) {
    bad(`limits.timeoutMs ${limits.timeoutMs} is above this node's bound on request deadlines (${node.maxTimeoutMs} ms, serve --max-timeout)`);
  }
  return limits;
}

/** Merges defaults, the image's config and the deploy request, and checks every field against its bounds. */
export function resolveAppConfig(image: ImageConfig, req: DeployRequest, tenantName: string, appName: string, node: NodeSettings = {}): AppConfig {
  const abi = req.abi ?? image.abi ?? "wagi";
  if (!["wagi", "reactor", "service"].includes(abi)) bad(`abi must be "wagi", "reactor" or "service", got ${JSON.stringify(abi)}`);
  const limits = resolveAppLimits(image.limits, req.limits, abi, node);
  const scale: ScalePolicy = { ...DEFAULT_SCALE, ...(req.scale ?? {}) };
  for (const k of Object.keys(DEFAULT_SCALE) as (keyof ScalePolicy)[]) {
    const v = scale[k];
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > (k === "idleTimeoutMs" ? 86_400_000 : 1000)) bad(`scale.${k} must be a non-negative integer, got ${JSON.stringify(v)}`);
  }
  if (scale.maxInstances < 1) bad("scale.maxInstances must be at least 1");
  if (scale.minInstances > scale.maxInstances) bad(`scale.minInstances (${scale.minInstances}) is above scale.maxInstances (${scale.maxInstances})`);
  const env = { ...(image.env ?? {}), ...(req.env ?? {}) };
  for (const [k, v] of Object.entries(env)) {
    if (!ENV_NAME_RE.test(k)) bad(`env name ${JSON.stringify(k)} is not a valid variable name`);
    if (typeof v !== "string" || v.includes("\0")) bad(`env ${k} must be a string without NUL`);
  }
  const args = req.args ?? image.args ?? [];
  if (!Array.isArray(args) || args.some((a) => typeof a !== "string" || a.includes("\0"))) bad("args must be strings without NUL");
  const def = defaultRoute(tenantName, appName, node.domain);
  const routes = (req.routes ?? image.routes ?? []).map((r, i) => normalizeRoute(r, i, def.host));
  if (abi !== "service") {
    if (!routes.some((r) => r.host === def.host && r.path === def.path)) routes.unshift(def);
  } else if (req.routes?.length) {
    bad("a service app has no HTTP routes");
  }
  const seen = new Set<string>();
  for (const r of routes) {
    const key = `${r.host}${r.path}`;
    if (seen.has(key)) bad(`route ${key} is listed twice`);
    seen.add(key);
  }
  const extensions = resolveExtensions(image.extensions, req.extensions);
  const replicas = req.replicas ?? 1;
  if (replicas !== "all" && (typeof replicas !== "number" || !Number.isInteger(replicas) || replicas < 1 || replicas > 100)) bad(`replicas must be an integer from 1 to 100 or "all", got ${JSON.stringify(replicas)}`);
  return { abi, routes: abi === "service" ? [] : routes, env, args, limits, scale, ...(replicas !== 1 ? { replicas } : {}), ...(extensions ? { extensions } : {}) };
}
