/** SQL of the uniwasm:kv tables (kv.ts), shared by the node's migration 5 and standalone KV files. */

/** The tables, with foreign keys to the node's tenants and apps or (standalone) without. */
export function kvSchema(nodeTables: boolean): string {
  const tenant = nodeTables ? " REFERENCES tenants(id) ON DELETE CASCADE" : "";
  const app = nodeTables ? " REFERENCES apps(id) ON DELETE CASCADE" : "";
  return `
    CREATE TABLE kv (
      tenant_id TEXT NOT NULL${tenant},
      store     TEXT NOT NULL,           -- 'app:<app id>' or 'shared:<name>'
      app_id    TEXT${app},             -- set for an app's own store, so its rows go with the app
      key       BLOB NOT NULL,
      value     BLOB NOT NULL,
      PRIMARY KEY (tenant_id, store, key)
    ) WITHOUT ROWID;
    CREATE INDEX kv_app ON kv(app_id) WHERE app_id IS NOT NULL;
    CREATE TABLE kv_usage (
      tenant_id TEXT PRIMARY KEY${tenant},
      bytes     INTEGER NOT NULL DEFAULT 0  -- keys + values over all the tenant's stores
    );
    CREATE TRIGGER kv_usage_insert AFTER INSERT ON kv BEGIN
      INSERT INTO kv_usage (tenant_id, bytes) VALUES (NEW.tenant_id, length(NEW.key) + length(NEW.value))
        ON CONFLICT (tenant_id) DO UPDATE SET bytes = bytes + excluded.bytes;
    END;
    CREATE TRIGGER kv_usage_update AFTER UPDATE OF value ON kv BEGIN
      UPDATE kv_usage SET bytes = bytes + length(NEW.value) - length(OLD.value) WHERE tenant_id = NEW.tenant_id;
    END;
    CREATE TRIGGER kv_usage_delete AFTER DELETE ON kv BEGIN
      UPDATE kv_usage SET bytes = bytes - length(OLD.key) - length(OLD.value) WHERE tenant_id = OLD.tenant_id;
    END;
  `;
}

