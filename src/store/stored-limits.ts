/**
 * Limits as the store reads them back: the one limits vocabulary
 * (src/limits.ts) as JSON, where null is unlimited, or the shape records had
 * before it (`memoryMiB`, `maxResponseBytes`; 0 for "no fuel metering" and
 * "no deadline"), translated so that an app keeps running exactly as it did.
 * The one place that knows the old shape: records from before are read
 * through it wherever they come from (this node's database, or an old
 * command replayed from a cluster's control log).
 */
import { DEFAULT_LIMITS, parseLimits, resolveLimits, type Limits, type ResolvedLimits } from "../limits.js";
import type { AppConfig, ImageConfig } from "./types.js";

const MiB = 1024 * 1024;
/** What the node gave every app's stderr before stderrBytes was an app setting. */
const LEGACY_STDERR_BYTES = MiB;

function isLegacy(json: unknown): boolean {
  return typeof json === "object" && json !== null && ("memoryMiB" in json || "maxResponseBytes" in json);
}

/** Old field -> translation into the one vocabulary. */
function fromLegacy(old: Record<string, unknown>, abi: string | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(old)) {
    if (k === "memoryMiB") out.maxMemoryBytes = typeof v === "number" ? v * MiB : v;
    // A service's output was never capped by maxResponseBytes (it goes to the app's log, 64 MiB per run).
    else if (k === "maxResponseBytes") out.stdoutBytes = abi === "service" ? DEFAULT_LIMITS.stdoutBytes : v;
    else out[k] = v;
  }
  return out;
}

/**
 * The partial limits stored with a deploy's settings or an image. Before the
 * one vocabulary, 0 meant "unmetered" for fuel and "no deadline" for a
 * service's timeoutMs; the node refuses 0 for both now, so a stored 0 is
 * always the old meaning.
 */
export function storedLimits(json: unknown, abi?: string): Limits {
  if (json === undefined || json === null || typeof json !== "object") return {};
  const o = json as Record<string, unknown>;
  const current: Record<string, unknown> = isLegacy(o) ? fromLegacy(o, abi) : { ...o };
  if (current.fuel === 0) current.fuel = null;
  if (current.timeoutMs === 0) current.timeoutMs = null;
  return parseLimits(current);
}

/** An app's stored limits, every one set (an old record's missing ones as the node ran them then). */
export function storedAppLimits(json: unknown, abi: string): ResolvedLimits {
  const partial = storedLimits(json, abi);
  if (isLegacy(json)) partial.stderrBytes ??= LEGACY_STDERR_BYTES;
  return resolveLimits(partial, DEFAULT_LIMITS);
}

/** An app config read back from JSON: its limits in the one vocabulary. */
export function readAppConfig(json: unknown): AppConfig {
  const c = json as AppConfig;
  const config: AppConfig = { ...c, limits: storedAppLimits(c.limits, c.abi) };
  if (c.settings?.limits !== undefined) config.settings = { ...c.settings, limits: storedLimits(c.settings.limits, c.settings.abi ?? c.abi) };
  return config;
}

/** An image config read back from JSON: its manifest limits in the one vocabulary. */
export function readImageConfig(json: unknown): ImageConfig {
  const c = json as ImageConfig;
  return c.limits === undefined ? c : { ...c, limits: storedLimits(c.limits, c.abi) };
}
