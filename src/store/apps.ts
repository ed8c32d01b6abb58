import type { Db } from "./database.js";
import { newId } from "./ids.js";
import type { AppConfig, AppRecord, RouteSpec } from "./types.js";
import { readAppConfig } from "./stored-limits.js";

interface Row {
  id: string;
  tenant_id: string;
  name: string;
  image_digest: string;
  config: string;
  revision: number;
  created_at: number;
  updated_at: number;
}

function fromRow(r: Row): AppRecord {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    name: r.name,
    imageDigest: r.image_digest,
    config: readAppConfig(JSON.parse(r.config)),
    revision: r.revision,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export interface RouteRow {
  host: string;
  pathPrefix: string;
  appId: string;
}

/** The app changed since the revision the writer saw (optimistic concurrency on revisions). */
export class RevisionConflict extends Error {
  constructor(readonly appName: string, readonly expected: number, readonly actual: number) {
    super(
      expected === 0
        ? `app ${appName} was created by someone else meanwhile (revision ${actual})`
        : `app ${appName} is at revision ${actual}, not ${expected}: it changed meanwhile`,
    );
  }
}

/** A route another app already owns. */
export class RouteConflict extends Error {
  constructor(readonly route: RouteSpec, readonly ownerAppId: string) {
    super(`route ${route.host}${route.path} is already taken`);
  }
}

export class AppRepo {
  constructor(private readonly db: Db) {}

  get(id: string): AppRecord | undefined {
    const row = this.db.prepare("SELECT * FROM apps WHERE id = ?").get(id) as Row | undefined;
    return row && fromRow(row);
  }

  findByName(tenantId: string, name: string): AppRecord | undefined {
    const row = this.db.prepare("SELECT * FROM apps WHERE tenant_id = ? AND name = ?").get(tenantId, name) as Row | undefined;
    return row && fromRow(row);
  }

  list(tenantId?: string): AppRecord[] {
    const rows = tenantId
      ? (this.db.prepare("SELECT * FROM apps WHERE tenant_id = ? ORDER BY created_at, name").all(tenantId) as Row[])
      : (this.db.prepare("SELECT * FROM apps ORDER BY created_at, name").all() as Row[]);
    return rows.map(fromRow);
  }

  count(tenantId: string): number {
    return (this.db.prepare("SELECT count(*) AS n FROM apps WHERE tenant_id = ?").get(tenantId) as { n: number }).n;
  }

  /**
   * Creates the app or replaces its image and config (revision + 1), and
   * claims its routes, all in one transaction: a conflicting route leaves the
   * previous revision untouched. `opts.expectRevision` (0: the app must not
   * exist yet) refuses a write based on a stale read; `opts.id` and `opts.at`
   * make the write deterministic when a replicated command carries them.
   */
  upsert(tenantId: string, name: string, imageDigest: string, config: AppConfig, opts: { id?: string; at?: number; expectRevision?: number } = {}): AppRecord {
    return this.db.transaction((): AppRecord => {
      const now = opts.at ?? Date.now();
      const cur = this.findByName(tenantId, name);
      if (opts.expectRevision !== undefined && (cur?.revision ?? 0) !== opts.expectRevision) throw new RevisionConflict(name, opts.expectRevision, cur?.revision ?? 0);
      const id = cur?.id ?? opts.id ?? newId("a");
      if (cur) {
        this.db
          .prepare("UPDATE apps SET image_digest = ?, config = ?, revision = revision + 1, updated_at = ? WHERE id = ?")
          .run(imageDigest, JSON.stringify(config), now, id);
      } else {
        this.db
          .prepare("INSERT INTO apps (id, tenant_id, name, image_digest, config, revision, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?)")
          .run(id, tenantId, name, imageDigest, JSON.stringify(config), now, now);
      }
      this.db.prepare("DELETE FROM routes WHERE app_id = ?").run(id);
      const claim = this.db.prepare("INSERT INTO routes (host, path_prefix, app_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING");
      const owner = this.db.prepare("SELECT app_id FROM routes WHERE host = ? AND path_prefix = ?");
      for (const r of config.routes) {
        if (claim.run(r.host, r.path, id).changes === 0) {
          const o = owner.get(r.host, r.path) as { app_id: string };
          if (o.app_id !== id) throw new RouteConflict(r, o.app_id);
        }
      }
      return this.get(id)!;
    })();
  }

  delete(id: string): boolean {
    return this.db.prepare("DELETE FROM apps WHERE id = ?").run(id).changes > 0;
  }

  routes(): RouteRow[] {
    return (this.db.prepare("SELECT host, path_prefix, app_id FROM routes").all() as { host: string; path_prefix: string; app_id: string }[]).map((r) => ({
      host: r.host,
      pathPrefix: r.path_prefix,
      appId: r.app_id,
    }));
  }
}
