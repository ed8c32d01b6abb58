import { kvSchema } from "./kv-schema.js";

/**
 * Versioned schema migrations. Each entry runs once, in order, inside one
 * transaction; `PRAGMA user_version` records the last one applied. Never edit
 * a released migration: append a new one.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "tenants, tokens, images, apps, routes, logs, usage",
    sql: `
      CREATE TABLE tenants (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        quotas      TEXT NOT NULL,           -- JSON TenantQuotas (overrides of the node defaults)
        weight      INTEGER NOT NULL DEFAULT 1,
        created_at  INTEGER NOT NULL
      );
      CREATE TABLE tokens (
        id           TEXT PRIMARY KEY,
        tenant_id    TEXT REFERENCES tenants(id) ON DELETE CASCADE, -- NULL for admin tokens
        scope        TEXT NOT NULL CHECK (scope IN ('admin', 'tenant')),
        name         TEXT NOT NULL,
        hash         TEXT NOT NULL UNIQUE,   -- sha256 of the secret; the secret itself is never stored
        prefix       TEXT NOT NULL,          -- first characters, to recognise a token in listings
        created_at   INTEGER NOT NULL,
        last_used_at INTEGER,
        CHECK ((scope = 'admin') = (tenant_id IS NULL))
      );
      CREATE TABLE images (
        tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        digest      TEXT NOT NULL,           -- sha256:<hex> of module.wasm (or of the image manifest)
        name        TEXT NOT NULL,
        size        INTEGER NOT NULL,
        source      TEXT NOT NULL,           -- 'upload' or 'oci:<ref>'
        config      TEXT NOT NULL,           -- JSON ImageConfig
        info        TEXT NOT NULL,           -- JSON ModuleSurface (imports, exports, syscall surface)
        signed_by   TEXT,
        created_at  INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, digest)
      );
      CREATE TABLE apps (
        id           TEXT PRIMARY KEY,
        tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        name         TEXT NOT NULL,
        image_digest TEXT NOT NULL,
        config       TEXT NOT NULL,          -- JSON AppConfig
        revision     INTEGER NOT NULL,
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL,
        UNIQUE (tenant_id, name),
        FOREIGN KEY (tenant_id, image_digest) REFERENCES images(tenant_id, digest)
      );
      -- One owner per (host, path prefix): a tenant can never take over another's route.
      CREATE TABLE routes (
        host        TEXT NOT NULL,           -- '*' for any host
        path_prefix TEXT NOT NULL,
        app_id      TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        PRIMARY KEY (host, path_prefix)
      );
      CREATE INDEX routes_app ON routes(app_id);
      CREATE TABLE logs (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        app_id     TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        ts         INTEGER NOT NULL,
        stream     TEXT NOT NULL CHECK (stream IN ('stdout', 'stderr', 'event')),
        line       TEXT NOT NULL
      );
      CREATE INDEX logs_app_seq ON logs(app_id, seq);
      CREATE TABLE usage (
        tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        day        TEXT NOT NULL,            -- UTC date YYYY-MM-DD
        requests   INTEGER NOT NULL DEFAULT 0,
        errors     INTEGER NOT NULL DEFAULT 0,
        rejected   INTEGER NOT NULL DEFAULT 0,
        cpu_ms     REAL NOT NULL DEFAULT 0,
        fuel       INTEGER NOT NULL DEFAULT 0,
        bytes_in   INTEGER NOT NULL DEFAULT 0,
        bytes_out  INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (tenant_id, day)
      );
    `,
  },
  {
    version: 2,
    name: "images: the capabilities and in-memory dirs an image's manifest grants",
    sql: `
      -- JSON array of kernel capability names; NULL = the kernel's defaults (raw module uploads, images stored before version 2).
      ALTER TABLE images ADD COLUMN capabilities TEXT;
      -- JSON ImageDir[]: guest path, read-only flag, files as relative path -> blob digest (file bytes live in blobs/, like modules).
      ALTER TABLE images ADD COLUMN dirs TEXT NOT NULL DEFAULT '[]';
    `,
  },
  {
    version: 3,
    name: "cluster: how far this node has applied the cluster's control log",
    sql: `
      -- One row once the node has joined a cluster: the control stream it follows (its creation time
      -- tells a recreated stream apart) and the last sequence applied to the replicated tables.
      CREATE TABLE cluster_cursor (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        stream      TEXT NOT NULL,
        applied_seq INTEGER NOT NULL
      );
    `,
  },
  {
    version: 4,
    name: "domains: the custom hosts each tenant owns; routes a tenant does not own are removed",
    sql: `
      -- A tenant's claim on a custom host. verified_at is set when an admin assigned it (method 'admin')
      -- or the tenant proved control with a DNS TXT record holding token (method 'dns'). Several tenants
      -- may have pending claims on one host; only one may own it (the partial unique index).
      CREATE TABLE domains (
        host        TEXT NOT NULL,
        tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        method      TEXT NOT NULL CHECK (method IN ('admin', 'dns')),
        token       TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        verified_at INTEGER,
        PRIMARY KEY (host, tenant_id)
      );
      CREATE UNIQUE INDEX domains_owner ON domains(host) WHERE verified_at IS NOT NULL;
      -- Before version 4 a tenant could route any host. Now it routes only its own names
      -- (<tenant>.localhost and *.<tenant>.localhost; the node's domain was always localhost then)
      -- and domains it owns (none yet); "*" is for admins, who could not be told apart from tenants.
      -- Every other route is removed, from the route table and the app's config, with an event in
      -- the app's log.
      CREATE TEMP TABLE unowned AS
        SELECT r.host, r.path_prefix, r.app_id FROM routes r
        JOIN apps a ON a.id = r.app_id JOIN tenants t ON t.id = a.tenant_id
        WHERE NOT (r.host = t.name || '.localhost' OR r.host LIKE '%.' || t.name || '.localhost');
      INSERT INTO logs (app_id, ts, stream, line)
        SELECT app_id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), 'event',
          'route ' || host || path_prefix || ' removed by the upgrade to schema 4: a tenant routes only its own names and domains it owns'
          || CASE WHEN host = '*' THEN ', and only an admin routes any host' ELSE '' END
        FROM unowned;
      DELETE FROM routes WHERE EXISTS (SELECT 1 FROM unowned u WHERE u.host = routes.host AND u.path_prefix = routes.path_prefix);
      UPDATE apps SET config = json_set(config, '$.routes',
          json((SELECT json_group_array(json_object('host', r.host, 'path', r.path_prefix)) FROM routes r WHERE r.app_id = apps.id)))
        WHERE id IN (SELECT app_id FROM unowned);
      DROP TABLE unowned;
    `,
  },
  {
    version: 5,
    name: "extensions: key-value data (uniwasm:kv) and app variables (uniwasm:variables)",
    sql:
      kvSchema(true) +
      `
      -- Named values an app's guest may read when granted; a secret's value never leaves through the API.
      CREATE TABLE app_variables (
        app_id     TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        name       TEXT NOT NULL,
        value      TEXT NOT NULL,
        secret     INTEGER NOT NULL DEFAULT 0,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (app_id, name)
      );
    `,
  },
];
