import type { Db } from "./database.js";
import type { DomainRecord } from "./types.js";

interface Row {
  host: string;
  tenant_id: string;
  method: "admin" | "dns";
  token: string;
  created_at: number;
  verified_at: number | null;
}

function fromRow(r: Row): DomainRecord {
  return { host: r.host, tenantId: r.tenant_id, method: r.method, token: r.token, createdAt: r.created_at, verifiedAt: r.verified_at };
}

/** Another tenant owns the host already. */
export class DomainTaken extends Error {
  constructor(readonly host: string, readonly ownerTenantId: string) {
    super(`host ${host} is owned by another tenant`);
  }
}

/** Custom hosts claimed by tenants; at most one verified owner per host. */
export class DomainRepo {
  constructor(private readonly db: Db) {}

  get(host: string, tenantId: string): DomainRecord | undefined {
    const row = this.db.prepare("SELECT * FROM domains WHERE host = ? AND tenant_id = ?").get(host, tenantId) as Row | undefined;
    return row && fromRow(row);
  }

  /** The verified owner's record, if any. */
  owner(host: string): DomainRecord | undefined {
    const row = this.db.prepare("SELECT * FROM domains WHERE host = ? AND verified_at IS NOT NULL").get(host) as Row | undefined;
    return row && fromRow(row);
  }

  list(tenantId: string): DomainRecord[] {
    return (this.db.prepare("SELECT * FROM domains WHERE tenant_id = ? ORDER BY host").all(tenantId) as Row[]).map(fromRow);
  }

  /** Creates or replaces a tenant's claim; a verified claim on a host another tenant owns is refused (DomainTaken). */
  put(rec: DomainRecord): DomainRecord {
    return this.db.transaction((): DomainRecord => {
      if (rec.verifiedAt !== null) {
        const o = this.owner(rec.host);
        if (o && o.tenantId !== rec.tenantId) throw new DomainTaken(rec.host, o.tenantId);
      }
      this.db
        .prepare(
          `INSERT INTO domains (host, tenant_id, method, token, created_at, verified_at) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (host, tenant_id) DO UPDATE SET method = excluded.method, token = excluded.token, verified_at = excluded.verified_at`,
        )
        .run(rec.host, rec.tenantId, rec.method, rec.token, rec.createdAt, rec.verifiedAt);
      return this.get(rec.host, rec.tenantId)!;
    })();
  }

  delete(host: string, tenantId: string): boolean {
    return this.db.prepare("DELETE FROM domains WHERE host = ? AND tenant_id = ?").run(host, tenantId).changes > 0;
  }
}
