/**
 * App variables and secrets for the uniwasm:variables extension, set
 * through the API. A secret's value is write-only for people: listings
 * return its name only, and it is never logged; only a guest granted the
 * name reads it. Values live in the node's database (not encrypted at rest:
 * protect the data directory as the node's own secret).
 */
import type { Db } from "./database.js";

export interface VariableInfo {
  name: string;
  secret: boolean;
  /** Absent for secrets. */
  value?: string;
  updatedAt: number;
}

export class VariableRepo {
  constructor(private readonly db: Db) {}

  /** `at`: the time a replicated command carries (every node writes the same row). */
  set(appId: string, name: string, value: string, secret: boolean, at = Date.now()): void {
    this.db
      .prepare("INSERT INTO app_variables (app_id, name, value, secret, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (app_id, name) DO UPDATE SET value = excluded.value, secret = excluded.secret, updated_at = excluded.updated_at")
      .run(appId, name, value, secret ? 1 : 0, at);
  }

  delete(appId: string, name: string): boolean {
    return this.db.prepare("DELETE FROM app_variables WHERE app_id = ? AND name = ?").run(appId, name).changes > 0;
  }

  /** What people may see: names, flags, and the values of non-secrets. */
  list(appId: string): VariableInfo[] {
    const rows = this.db.prepare("SELECT name, value, secret, updated_at FROM app_variables WHERE app_id = ? ORDER BY name").all(appId) as { name: string; value: string; secret: number; updated_at: number }[];
    return rows.map((r) => (r.secret ? { name: r.name, secret: true, updatedAt: r.updated_at } : { name: r.name, secret: false, value: r.value, updatedAt: r.updated_at }));
  }

  /** The value for the guest (secrets included): only the extension's provider calls this. */
  value(appId: string, name: string): string | null {
    const v = this.db.prepare("SELECT value FROM app_variables WHERE app_id = ? AND name = ?").pluck().get(appId, name) as string | undefined;
    return v ?? null;
  }
}
