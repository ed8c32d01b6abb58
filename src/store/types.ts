/**
 * Records the store keeps. JSON columns hold these shapes; the server
 * validates them before they get here, the store only persists them.
 */

import type { Limits, ResolvedLimits, Tier } from "../limits.js";

export type TokenScope = "admin" | "tenant";

/** Per-tenant limits; a tenant record holds only the overrides of the node defaults. */
export interface TenantQuotas {
  /** Most apps the tenant may have deployed. */
  maxApps: number;
  /** Most live instances (warm reactors plus running commands) at once. */
  maxInstances: number;
  /** Most linear memory, summed over live instances, in MiB. */
  memoryMiB: number;
  /** Most executor time per rolling minute, in ms. */
  cpuMsPerMinute: number;
  /** Sustained request rate at the gateway (token bucket; burst = the same number). */
  requestsPerSecond: number;
  /** Most requests of this tenant running on executors at once. */
  maxConcurrency: number;
  /** Most requests waiting for an executor; beyond it the gateway answers 429. */
  maxQueue: number;
  /** uniwasm:kv: longest key, bytes (ENAMETOOLONG past it). */
  kvMaxKeyBytes: number;
  /** uniwasm:kv: largest value, bytes (EFBIG past it). */
  kvMaxValueBytes: number;
  /** uniwasm:kv: keys plus values over all the tenant's stores, bytes (EDQUOT past it). */
  kvMaxTotalBytes: number;
  /** The weakest tier the tenant's apps may run on (src/sandbox/tiers/tier.ts): an app asking for less is raised to it. */
  minTier: Tier;
}

export interface TenantRecord {
  id: string;
  name: string;
  quotas: Partial<TenantQuotas>;
  /** Share in fair scheduling: a tenant with weight 2 gets twice the executor time of weight 1 under contention. */
  weight: number;
  createdAt: number;
}

export interface TokenRecord {
  id: string;
  tenantId: string | null;
  scope: TokenScope;
  name: string;
  prefix: string;
  createdAt: number;
  lastUsedAt: number | null;
}

/** How the gateway talks to a module. */
export type AppAbi = "wagi" | "reactor" | "service";

export interface RouteSpec {
  /** Host name to match (no port), or "*" for any host. */
  host: string;
  /** Path prefix, starting with "/", matched on segment boundaries. */
  path: string;
}

/** A route as a deploy request or an image asks for it: without a host, the app's own. */
export interface RouteRequest {
  host?: string;
  path: string;
}

export interface ScalePolicy {
  /** Warm instances kept even when idle (0 = scale to zero). */
  minInstances: number;
  /** Most instances of this app at once. */
  maxInstances: number;
  /** Idle time after which a warm instance above minInstances is stopped, ms. */
  idleTimeoutMs: number;
}

export interface AppConfig {
  abi: AppAbi;
  routes: RouteSpec[];
  env: Record<string, string>;
  args: string[];
  /**
   * What the app's instances run with, every limit set (the node's defaults
   * under the image's, under the deploy's), in the one limits vocabulary
   * (src/limits.ts). Stored as JSON: Infinity (unlimited) is null there.
   */
  limits: ResolvedLimits;
  scale: ScalePolicy;
  /** In a cluster: how many nodes run the app (absent = 1), or "all" for every node. One node ignores it. */
  replicas?: number | "all";
  /** Host extensions granted (absent in records from before extensions: none). */
  extensions?: ExtensionGrants;
  /**
   * What deploy requests set, kept across revisions: a redeploy changes only
   * the settings it gives (the rest come from here, then the image, then the
   * node's defaults). Absent in records from before settings were kept.
   */
  settings?: AppSettings;
}

/** The settings of a deploy request (everything but the image). */
export interface AppSettings {
  abi?: AppAbi;
  /** A route without a host is on the app's own host. */
  routes?: RouteRequest[];
  env?: Record<string, string>;
  args?: string[];
  limits?: Limits;
  scale?: Partial<ScalePolicy>;
  /** In a cluster: nodes that run the app (1-100), or "all". */
  replicas?: number | "all";
  /** Host extensions: each field given replaces the image's. */
  extensions?: Partial<ExtensionGrants>;
}

/**
 * The host extensions an app is granted and the allow-lists that configure
 * them (docs/extensions.md); from the image's manifest, overridable at deploy.
 */
export interface ExtensionGrants {
  /** Extension names ("uniwasm:kv") or single capabilities ("uniwasm:kv/read"). */
  grants: string[];
  /** uniwasm:http destinations, `scheme://host[:port]` as Spin writes them. */
  allowedOutboundHosts: string[];
  /** uniwasm:kv stores shared by the tenant's apps that this app may open ("default", its own, always). */
  keyValueStores: string[];
  /** uniwasm:service callees: app names of the same tenant. */
  allowedServices: string[];
  /** uniwasm:variables names the guest may read. */
  variables: string[];
}

/** What an uploaded image declares; deploy-time config overrides it field by field. */
export interface ImageConfig {
  abi?: AppAbi;
  env?: Record<string, string>;
  args?: string[];
  routes?: RouteRequest[];
  /** The manifest's `[limits]`, all of them. */
  limits?: Limits;
  extensions?: Partial<ExtensionGrants>;
}

/** The module's host-call surface, computed once when the image is stored. */
export interface ModuleSurface {
  imports: { module: string; name: string; kind: string }[];
  exports: { name: string; kind: string }[];
  /** wasi_snapshot_preview1 functions the module imports (its syscall surface). */
  wasiCalls: string[];
}

/** An in-memory directory an image bundles (manifest `[[capabilities.dirs]]` with `files`). */
export interface ImageDir {
  /** Where the guest sees it, e.g. "/static". */
  guest: string;
  readonly: boolean;
  /** Relative path -> sha256 digest of the file's bytes in the blob store. */
  files: Record<string, string>;
}

export interface ImageRecord {
  tenantId: string;
  digest: string;
  name: string;
  size: number;
  source: string;
  config: ImageConfig;
  info: ModuleSurface;
  signedBy: string | null;
  /** Kernel capabilities the image's manifest grants; null = the kernel's defaults (raw module uploads). */
  capabilities: string[] | null;
  /** In-memory dirs preopened for every instance, in manifest order. */
  dirs: ImageDir[];
  createdAt: number;
}

/** What ImageRepo.upsert takes: capabilities and dirs default to none given (null, []). */
export type NewImage = Omit<ImageRecord, "createdAt" | "capabilities" | "dirs"> & Partial<Pick<ImageRecord, "capabilities" | "dirs">>;

/**
 * A tenant's claim on a custom host (beyond its own `*.<tenant>.<domain>`
 * names). It owns the host once verified: assigned by an admin, or proved by
 * the tenant with a DNS TXT record holding `token`.
 */
export interface DomainRecord {
  host: string;
  tenantId: string;
  method: "admin" | "dns";
  /** The value to publish in the DNS TXT record (empty for admin assignments). */
  token: string;
  createdAt: number;
  verifiedAt: number | null;
}

export interface AppRecord {
  id: string;
  tenantId: string;
  name: string;
  imageDigest: string;
  config: AppConfig;
  revision: number;
  createdAt: number;
  updatedAt: number;
}

export type LogStream = "stdout" | "stderr" | "event";

export interface LogEntry {
  seq: number;
  appId: string;
  ts: number;
  stream: LogStream;
  line: string;
}

export interface UsageRecord {
  tenantId: string;
  day: string;
  requests: number;
  errors: number;
  rejected: number;
  cpuMs: number;
  fuel: number;
  bytesIn: number;
  bytesOut: number;
}
