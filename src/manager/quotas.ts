import type { TenantQuotas } from "../store/types.js";
import { isTier } from "../sandbox/tiers/tier.js";

/** Node-wide defaults; a tenant's record overrides them field by field. */
export const DEFAULT_TENANT_QUOTAS: Readonly<TenantQuotas> = Object.freeze({
  maxApps: 20,
  maxInstances: 64,
  memoryMiB: 2048,
  cpuMsPerMinute: 60_000,
  requestsPerSecond: 1000,
  maxConcurrency: 8,
  maxQueue: 256,
  kvMaxKeyBytes: 1024,
  kvMaxValueBytes: 1024 * 1024,
  kvMaxTotalBytes: 64 * 1024 * 1024,
  minTier: "isolate",
});

export const QUOTA_KEYS = Object.keys(DEFAULT_TENANT_QUOTAS) as (keyof TenantQuotas)[];

export function effectiveQuotas(overrides: Partial<TenantQuotas>, defaults: Readonly<TenantQuotas> = DEFAULT_TENANT_QUOTAS): TenantQuotas {
  const q = { ...defaults };
  for (const k of QUOTA_KEYS) {
    const v = overrides[k];
    if (k === "minTier") {
      if (typeof v === "string" && isTier(v)) q.minTier = v;
    } else if (typeof v === "number" && Number.isFinite(v) && v >= 0) (q as unknown as Record<string, number>)[k] = v;
  }
  return q;
}
