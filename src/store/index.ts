import { join } from "node:path";
import { openDatabase, schemaVersion, type Db } from "./database.js";
import { TenantRepo } from "./tenants.js";
import { TokenRepo } from "./tokens.js";
import { ImageRepo } from "./images.js";
import { AppRepo } from "./apps.js";
import { LogRepo, type LogOptions } from "./logs.js";
import { UsageRepo } from "./usage.js";
import { BlobStore } from "./blobs.js";
import { DomainRepo } from "./domains.js";
import { KvStore } from "./kv.js";
import { VariableRepo } from "./variables.js";

export * from "./types.js";
export { openDatabase, migrate, schemaVersion, StoreError, type Db } from "./database.js";
export { MIGRATIONS, type Migration } from "./migrations.js";
export { hashToken, mintToken, TOKEN_PREFIX } from "./tokens.js";
export { RouteConflict, RevisionConflict, type RouteRow } from "./apps.js";
export { applyCommand, isRefusal, CommandControlState, SqliteControlState, AdminExists, TenantExists, type ControlCommand, type ControlOp, type ControlChange, type ControlReads, type ControlState } from "./control-state.js";
export { BlobStore, CorruptBlob, sha256Digest, DIGEST_RE, type QuarantinedBlob } from "./blobs.js";
export { DomainTaken } from "./domains.js";
export { TenantRepo, TokenRepo, ImageRepo, AppRepo, LogRepo, UsageRepo, DomainRepo, KvStore, VariableRepo };
export { DEFAULT_KV_QUOTAS, STANDALONE_KV_MIGRATIONS, type KvQuotas, type KvBackend } from "./kv.js";
export type { VariableInfo } from "./variables.js";

export interface NodeStoreOptions {
  /** Data directory: holds node.db (SQLite, WAL) and blobs/. */
  dataDir: string;
  logs?: LogOptions;
}

/** Everything a node persists, in one data directory. */
export class NodeStore {
  readonly db: Db;
  readonly tenants: TenantRepo;
  readonly tokens: TokenRepo;
  readonly images: ImageRepo;
  readonly apps: AppRepo;
  readonly logs: LogRepo;
  readonly usage: UsageRepo;
  readonly blobs: BlobStore;
  readonly domains: DomainRepo;
  /** uniwasm:kv data on one node (a cluster keeps it in JetStream instead: src/cluster/kv-store.ts). */
  readonly kv: KvStore;
  /** uniwasm:variables values set per app. */
  readonly variables: VariableRepo;
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly opts: NodeStoreOptions) {
    this.db = openDatabase(join(opts.dataDir, "node.db"));
    this.tenants = new TenantRepo(this.db);
    this.tokens = new TokenRepo(this.db);
    this.images = new ImageRepo(this.db);
    this.apps = new AppRepo(this.db);
    this.logs = new LogRepo(this.db, opts.logs);
    this.usage = new UsageRepo(this.db);
    this.blobs = new BlobStore(opts.dataDir);
    this.domains = new DomainRepo(this.db);
    this.kv = new KvStore(this.db);
    this.variables = new VariableRepo(this.db);
  }

  get schemaVersion(): number {
    return schemaVersion(this.db);
  }

  /** Flushes buffered logs and usage every `ms` (unref'd: never keeps the process alive). */
  startFlushing(ms = 100): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.flush(), ms);
    this.timer.unref();
  }

  flush(): void {
    this.logs.flush();
    this.usage.flush();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.flush();
    this.db.close();
  }
}
