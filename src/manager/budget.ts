/**
 * Memory admission: every live instance reserves its memory cap up front,
 * against its tenant's quota and the node-wide budget, and releases it when
 * it stops. Reserving the cap (not current use) makes the bound hard: the
 * node can never be asked for more memory than its budget.
 */
import type { ResolvedLimits } from "../limits.js";
import type { GuestGrants } from "./runner.js";

/**
 * Host memory one instance may make the node hold, reserved while it lives: its linear memory cap,
 * plus its in-memory directories' cap (`memDirBytes`) when it has a writable one (what it writes
 * there is host memory; read-only bundled files are one copy shared by every instance).
 */
export function instanceMemoryBytes(limits: Pick<ResolvedLimits, "maxMemoryBytes" | "memDirBytes">, grants: Pick<GuestGrants, "preopens">): number {
  const writableMemDirs = grants.preopens?.some((p) => !p.readonly) ?? false;
  return limits.maxMemoryBytes + (writableMemDirs ? limits.memDirBytes : 0);
}

export type BudgetRefusal = "tenant_memory" | "tenant_instances" | "node_memory";

export interface Reservation {
  readonly bytes: number;
  release(): void;
}

export class MemoryBudget {
  private nodeUsed = 0;
  private readonly tenants = new Map<string, { bytes: number; instances: number }>();

  constructor(public nodeLimitBytes: number) {}

  reserve(tenantId: string, bytes: number, tenantLimitBytes: number, tenantMaxInstances: number): Reservation | BudgetRefusal {
    const t = this.tenants.get(tenantId) ?? { bytes: 0, instances: 0 };
    if (t.instances + 1 > tenantMaxInstances) return "tenant_instances";
    if (t.bytes + bytes > tenantLimitBytes) return "tenant_memory";
    if (this.nodeUsed + bytes > this.nodeLimitBytes) return "node_memory";
    t.bytes += bytes;
    t.instances++;
    this.tenants.set(tenantId, t);
    this.nodeUsed += bytes;
    let released = false;
    return {
      bytes,
      release: () => {
        if (released) return;
        released = true;
        t.bytes -= bytes;
        t.instances--;
        this.nodeUsed -= bytes;
      },
    };
  }

  used(): number {
    return this.nodeUsed;
  }

  tenant(tenantId: string): { bytes: number; instances: number } {
    const t = this.tenants.get(tenantId);
    return { bytes: t?.bytes ?? 0, instances: t?.instances ?? 0 };
  }
}
