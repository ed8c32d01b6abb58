/** Helpers for the manager's tests. */
import { resolveLimits, type Limits } from "../../src/limits.js";
import type { AppRecord } from "../../src/store/types.js";

/** A WAGI app record of `tenantId` as the store would hand it to the manager: a 60 s deadline unless `limits` say otherwise. */
export function appRecord(id: string, tenantId: string, limits: Partial<Limits> = {}): AppRecord {
  return {
    id,
    tenantId,
    name: id,
    imageDigest: "sha256:" + "0".repeat(64),
    revision: 1,
    createdAt: 0,
    updatedAt: 0,
    config: { abi: "wagi", routes: [], env: {}, args: [], limits: resolveLimits({ timeoutMs: 60_000, ...limits }), scale: { minInstances: 0, maxInstances: 1, idleTimeoutMs: 1 } },
  };
}
