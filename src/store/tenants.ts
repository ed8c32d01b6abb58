import type { Db } from "./database.js";
import { newId } from "./ids.js";
import type { TenantQuotas, TenantRecord } from "./types.js";

interface Row {
  id: string;
  name: string;
  quotas: string;
  weight: number;
  created_at: number;
}

function fromRow(r: Row): TenantRecord {
  return { id: r.id, name: r.name, quotas: JSON.parse(r.quotas) as Partial<TenantQuotas>, weight: r.weight, createdAt: r.created_at };
}

export class TenantRepo {
  constructor(private readonly db: Db) {}

  /** `fixed` gives the id and time (a replicated command carries them, so every node writes the same row). */
  create(name: string, quotas: Partial<TenantQuotas> = {}, weight = 1, fixed?: { id: string; createdAt: number }): TenantRecord {
    const rec: TenantRecord = { id: fixed?.id ?? newId("t"), name, quotas, weight, createdAt: fixed?.createdAt ?? Date.now() };
    this.db
      .prepare("INSERT INTO tenants (id, name, quotas, weight, created_at) VALUES (?, ?, ?, ?, ?)")
      .run(rec.id, rec.name, JSON.stringify(quotas), weight, rec.createdAt);
    return rec;
  }

  /** Looks a tenant up by id or by name. */
  find(idOrName: string): TenantRecord | undefined {
    const row = this.db.prepare("SELECT * FROM tenants WHERE id = ? OR name = ?").get(idOrName, idOrName) as Row | undefined;
    return row && fromRow(row);
  }

  list(): TenantRecord[] {
    return (this.db.prepare("SELECT * FROM tenants ORDER BY created_at, name").all() as Row[]).map(fromRow);
  }

  update(id: string, patch: { quotas?: Partial<TenantQuotas>; weight?: number }): TenantRecord | undefined {
    const cur = this.find(id);
    if (!cur) return undefined;
    const quotas = patch.quotas ? { ...cur.quotas, ...patch.quotas } : cur.quotas;
    const weight = patch.weight ?? cur.weight;
    this.db.prepare("UPDATE tenants SET quotas = ?, weight = ? WHERE id = ?").run(JSON.stringify(quotas), weight, cur.id);
    return { ...cur, quotas, weight };
  }

  /** Deletes the tenant with its tokens, images, apps, routes, logs and usage (cascade). */
  delete(id: string): boolean {
    return this.db.prepare("DELETE FROM tenants WHERE id = ?").run(id).changes > 0;
  }

  nameTaken(name: string): boolean {
    return this.db.prepare("SELECT 1 FROM tenants WHERE name = ?").get(name) !== undefined;
  }
}
