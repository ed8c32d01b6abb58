import type { Db } from "./database.js";
import type { ImageDir, ImageRecord, ModuleSurface, NewImage } from "./types.js";
import { readImageConfig } from "./stored-limits.js";

interface Row {
  tenant_id: string;
  digest: string;
  name: string;
  size: number;
  source: string;
  config: string;
  info: string;
  signed_by: string | null;
  capabilities: string | null;
  dirs: string;
  created_at: number;
}

function fromRow(r: Row): ImageRecord {
  return {
    tenantId: r.tenant_id,
    digest: r.digest,
    name: r.name,
    size: r.size,
    source: r.source,
    config: readImageConfig(JSON.parse(r.config)),
    info: JSON.parse(r.info) as ModuleSurface,
    signedBy: r.signed_by,
    capabilities: r.capabilities === null ? null : (JSON.parse(r.capabilities) as string[]),
    dirs: JSON.parse(r.dirs) as ImageDir[],
    createdAt: r.created_at,
  };
}

export class ImageRepo {
  constructor(private readonly db: Db) {}

  /** Records an image for a tenant; uploading the same digest again updates its name and config. */
  upsert(rec: NewImage, createdAt = Date.now()): ImageRecord {
    const capabilities = rec.capabilities ? JSON.stringify(rec.capabilities) : null;
    this.db
      .prepare(
        `INSERT INTO images (tenant_id, digest, name, size, source, config, info, signed_by, capabilities, dirs, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (tenant_id, digest) DO UPDATE SET name = excluded.name, source = excluded.source,
           config = excluded.config, info = excluded.info, signed_by = excluded.signed_by,
           capabilities = excluded.capabilities, dirs = excluded.dirs`,
      )
      .run(rec.tenantId, rec.digest, rec.name, rec.size, rec.source, JSON.stringify(rec.config), JSON.stringify(rec.info), rec.signedBy, capabilities, JSON.stringify(rec.dirs ?? []), createdAt);
    return this.get(rec.tenantId, rec.digest)!;
  }

  get(tenantId: string, digest: string): ImageRecord | undefined {
    const row = this.db.prepare("SELECT * FROM images WHERE tenant_id = ? AND digest = ?").get(tenantId, digest) as Row | undefined;
    return row && fromRow(row);
  }

  /** Resolves a digest, a unique digest prefix (at least 8 hex chars) or an image name (newest wins). */
  resolve(tenantId: string, ref: string): ImageRecord | undefined {
    const exact = this.get(tenantId, ref.startsWith("sha256:") ? ref : `sha256:${ref}`);
    if (exact) return exact;
    const hex = ref.startsWith("sha256:") ? ref.slice(7) : ref;
    if (/^[0-9a-f]{8,64}$/.test(hex)) {
      const rows = this.db.prepare("SELECT * FROM images WHERE tenant_id = ? AND digest LIKE ? LIMIT 2").all(tenantId, `sha256:${hex}%`) as Row[];
      if (rows.length === 1) return fromRow(rows[0]!);
    }
    const byName = this.db
      .prepare("SELECT * FROM images WHERE tenant_id = ? AND name = ? ORDER BY created_at DESC, rowid DESC LIMIT 1")
      .get(tenantId, ref) as Row | undefined;
    return byName && fromRow(byName);
  }

  list(tenantId: string): ImageRecord[] {
    return (this.db.prepare("SELECT * FROM images WHERE tenant_id = ? ORDER BY created_at, rowid").all(tenantId) as Row[]).map(fromRow);
  }

  delete(tenantId: string, digest: string): boolean {
    return this.db.prepare("DELETE FROM images WHERE tenant_id = ? AND digest = ?").run(tenantId, digest).changes > 0;
  }

  /**
   * True when some tenant still records this digest as a module or as a
   * bundled file of an image's dirs (the blob must stay). A file digest is
   * matched as its quoted JSON string, so a prefix never counts.
   */
  referenced(digest: string): boolean {
    return this.db.prepare("SELECT 1 FROM images WHERE digest = ? OR instr(dirs, ?) > 0 LIMIT 1").get(digest, JSON.stringify(digest)) !== undefined;
  }

  usedByApps(tenantId: string, digest: string): string[] {
    return (this.db.prepare("SELECT name FROM apps WHERE tenant_id = ? AND image_digest = ?").all(tenantId, digest) as { name: string }[]).map(
      (r) => r.name,
    );
  }
}
