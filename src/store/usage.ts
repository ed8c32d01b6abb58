import type { Db } from "./database.js";
import type { UsageRecord } from "./types.js";

export type UsageDelta = Partial<Omit<UsageRecord, "tenantId" | "day">>;

const FIELDS = ["requests", "errors", "rejected", "cpuMs", "fuel", "bytesIn", "bytesOut"] as const;
const COLUMNS: Record<(typeof FIELDS)[number], string> = {
  requests: "requests",
  errors: "errors",
  rejected: "rejected",
  cpuMs: "cpu_ms",
  fuel: "fuel",
  bytesIn: "bytes_in",
  bytesOut: "bytes_out",
};

let cachedDay = { from: 0, to: 0, day: "" };

/** UTC date of `now`, recomputed only when the day changes (called per request). */
function today(now = Date.now()): string {
  if (now < cachedDay.from || now >= cachedDay.to) {
    const from = now - (now % 86_400_000);
    cachedDay = { from, to: from + 86_400_000, day: new Date(now).toISOString().slice(0, 10) };
  }
  return cachedDay.day;
}

/** Per-tenant, per-UTC-day counters; accumulated in memory and upserted on flush. */
export class UsageRepo {
  private pending = new Map<string, UsageRecord>();

  constructor(private readonly db: Db) {}

  add(tenantId: string, delta: UsageDelta, now = Date.now()): void {
    const day = today(now);
    const key = `${tenantId}\0${day}`;
    let rec = this.pending.get(key);
    if (!rec) {
      rec = { tenantId, day, requests: 0, errors: 0, rejected: 0, cpuMs: 0, fuel: 0, bytesIn: 0, bytesOut: 0 };
      this.pending.set(key, rec);
    }
    for (const f of FIELDS) rec[f] += delta[f] ?? 0;
  }

  flush(): void {
    if (this.pending.size === 0) return;
    const batch = [...this.pending.values()];
    this.pending.clear();
    const cols = FIELDS.map((f) => COLUMNS[f]);
    const stmt = this.db.prepare(
      `INSERT INTO usage (tenant_id, day, ${cols.join(", ")}) VALUES (?, ?, ${cols.map(() => "?").join(", ")})
       ON CONFLICT (tenant_id, day) DO UPDATE SET ${cols.map((c) => `${c} = ${c} + excluded.${c}`).join(", ")}`,
    );
    const exists = this.db.prepare("SELECT 1 FROM tenants WHERE id = ?");
    this.db.transaction(() => {
      for (const r of batch) {
        if (exists.get(r.tenantId) === undefined) continue;
        stmt.run(r.tenantId, r.day, ...FIELDS.map((f) => r[f]));
      }
    })();
  }

  /** Days of usage for a tenant, newest first. */
  list(tenantId: string, days = 31): UsageRecord[] {
    this.flush();
    type R = { tenant_id: string; day: string; requests: number; errors: number; rejected: number; cpu_ms: number; fuel: number; bytes_in: number; bytes_out: number };
    const rows = this.db.prepare("SELECT * FROM usage WHERE tenant_id = ? ORDER BY day DESC LIMIT ?").all(tenantId, days) as R[];
    return rows.map((r) => ({
      tenantId: r.tenant_id,
      day: r.day,
      requests: r.requests,
      errors: r.errors,
      rejected: r.rejected,
      cpuMs: r.cpu_ms,
      fuel: r.fuel,
      bytesIn: r.bytes_in,
      bytesOut: r.bytes_out,
    }));
  }
}
