/**
 * The control state: tenants, tokens, image metadata, apps with their
 * revisions and routes, quotas. The server and the manager read it and change
 * it through this one interface, which has two implementations:
 *
 * - `SqliteControlState` (one node, the default): a change is applied to the
 *   node's SQLite at once.
 * - `JetStreamControlState` (src/cluster): a change is appended to a JetStream
 *   stream, and every node applies the stream, in order, to its own SQLite,
 *   which is then a replicated cache that reads stay synchronous on.
 *
 * Both apply the same commands with the same function. A command carries
 * every value that would otherwise differ between nodes (ids, times, token
 * hashes), so applying a stream of them gives every node the same rows, and a
 * command that fails (a taken name, a route conflict, a stale revision) fails
 * identically everywhere.
 */
import { newId } from "./ids.js";
import { mintToken } from "./tokens.js";
import type { NodeStore } from "./index.js";
import { RevisionConflict, RouteConflict, type AppRepo } from "./apps.js";
import type { ImageRepo } from "./images.js";
import type { TenantRepo } from "./tenants.js";
import type { TokenRepo } from "./tokens.js";
import { DomainTaken, type DomainRepo } from "./domains.js";
import type { VariableRepo } from "./variables.js";
import type { AppConfig, AppRecord, DomainRecord, ImageRecord, NewImage, TenantQuotas, TenantRecord, TokenRecord, TokenScope } from "./types.js";

/** One change of the control state, with everything needed to apply it the same way on every node. */
export type ControlCommand =
  | { op: "tenant.create"; id: string; name: string; quotas: Partial<TenantQuotas>; weight: number; at: number }
  | { op: "tenant.update"; id: string; quotas?: Partial<TenantQuotas>; weight?: number }
  | { op: "tenant.delete"; id: string }
  /** `onlyIfNoAdmin`: the bootstrap token, created by whichever node gets there first. */
  | { op: "token.create"; token: TokenRecord; hash: string; onlyIfNoAdmin?: boolean }
  | { op: "token.delete"; id: string }
  | { op: "image.put"; image: NewImage; at: number }
  | { op: "image.delete"; tenantId: string; digest: string }
  /** `expectRevision`: the revision the writer saw (0 = new app); a different one refuses the write. */
  | { op: "app.put"; id: string; tenantId: string; name: string; imageDigest: string; config: AppConfig; at: number; expectRevision?: number }
  | { op: "app.delete"; id: string }
  /** A tenant's claim on a custom host, pending or verified (DomainTaken when another tenant owns it). */
  | { op: "domain.put"; domain: DomainRecord }
  | { op: "domain.delete"; host: string; tenantId: string }
  /** An app's variable (uniwasm:variables); a secret's value is in the command as it is in the table. */
  | { op: "variable.set"; appId: string; name: string; value: string; secret: boolean; at: number }
  | { op: "variable.delete"; appId: string; name: string };

export type ControlOp = ControlCommand["op"];

/** A command and what applying it produced, as seen by change listeners on every node. */
export interface ControlChange {
  command: ControlCommand;
  /** The record after the change (tenant, app, image, domain), or undefined for deletes and tokens. */
  record?: TenantRecord | AppRecord | ImageRecord | DomainRecord;
  /** For deletes: whether something was there. */
  deleted?: boolean;
  /** Set when the change came from another node (through the cluster's log). */
  remote: boolean;
}

/** A tenant of that name exists. */
export class TenantExists extends Error {
  constructor(readonly tenantName: string) {
    super(`a tenant named ${tenantName} exists`);
  }
}

/** The bootstrap token already exists (another node made it first). */
export class AdminExists extends Error {
  constructor() {
    super("an admin token exists already");
  }
}

/** Reading the control state: synchronous, from the node's SQLite (the state itself, or its replicated cache). */
export interface ControlReads {
  readonly tenants: Pick<TenantRepo, "find" | "list" | "nameTaken">;
  /** `touch` (last use) is advisory and node-local: it is not replicated. */
  readonly tokens: Pick<TokenRepo, "verify" | "touch" | "get" | "listForTenant" | "listAdmin" | "countAdmin">;
  readonly images: Pick<ImageRepo, "get" | "resolve" | "list" | "referenced" | "usedByApps">;
  readonly apps: Pick<AppRepo, "get" | "findByName" | "list" | "count" | "routes">;
  readonly domains: Pick<DomainRepo, "get" | "owner" | "list">;
  readonly variables: Pick<VariableRepo, "list" | "value">;
}

export interface ControlState extends ControlReads {
  /** "sqlite" for one node, "jetstream" in a cluster. */
  readonly kind: "sqlite" | "jetstream";
  createTenant(name: string, quotas?: Partial<TenantQuotas>, weight?: number): Promise<TenantRecord>;
  updateTenant(id: string, patch: { quotas?: Partial<TenantQuotas>; weight?: number }): Promise<TenantRecord | undefined>;
  deleteTenant(id: string): Promise<boolean>;
  /** Returns the secret: the only time it exists outside the caller. */
  createToken(scope: TokenScope, tenantId: string | null, name: string): Promise<{ token: TokenRecord; secret: string }>;
  /** The first admin token, unless one exists (then undefined): safe when several nodes start at once. */
  createBootstrapToken(): Promise<{ token: TokenRecord; secret: string } | undefined>;
  deleteToken(id: string): Promise<boolean>;
  putImage(image: NewImage): Promise<ImageRecord>;
  deleteImage(tenantId: string, digest: string): Promise<boolean>;
  /** Creates or updates an app (revision + 1) and claims its routes; `expectRevision` as in `ControlCommand`. */
  putApp(tenantId: string, name: string, imageDigest: string, config: AppConfig, expectRevision?: number): Promise<AppRecord>;
  deleteApp(id: string): Promise<boolean>;
  /** Creates or replaces a tenant's claim on a custom host; DomainTaken when verified and another tenant owns it. */
  putDomain(domain: DomainRecord): Promise<DomainRecord>;
  deleteDomain(host: string, tenantId: string): Promise<boolean>;
  /** Sets an app's variable (replacing it); secret: the value is write-only for people. */
  setVariable(appId: string, name: string, value: string, secret: boolean): Promise<void>;
  deleteVariable(appId: string, name: string): Promise<boolean>;
  /** Makes blobs stored on this node readable by every node (the cluster's object store); call before `putImage`. */
  shareBlobs(digests: readonly string[]): Promise<void>;
  /** Makes sure these blobs are in this node's blob store (fetched and verified from the cluster when missing). */
  ensureBlobs(digests: readonly string[]): Promise<void>;
  /** Called after every applied change, local or replicated. Returns the unsubscribe function. */
  onChange(listener: (c: ControlChange) => void): () => void;
  close(): Promise<void>;
}

/**
 * True for the errors with which `applyCommand` refuses a command (the same
 * on every node); anything else is a fault of this node (a full disk) that
 * must not be mistaken for a refusal.
 */
export function isRefusal(err: unknown): boolean {
  if (err instanceof TenantExists || err instanceof AdminExists || err instanceof RouteConflict || err instanceof RevisionConflict || err instanceof DomainTaken) return true;
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" && code.startsWith("SQLITE_CONSTRAINT");
}

/**
 * Applies one command to a store's replicated tables, in one transaction, and
 * returns what it produced; throws (changing nothing) when the command is
 * refused. Deterministic: the same store state and command give the same rows.
 */
export function applyCommand(store: NodeStore, cmd: ControlCommand): Omit<ControlChange, "remote" | "command"> {
  switch (cmd.op) {
    case "tenant.create":
      if (store.tenants.nameTaken(cmd.name)) throw new TenantExists(cmd.name);
      return { record: store.tenants.create(cmd.name, cmd.quotas, cmd.weight, { id: cmd.id, createdAt: cmd.at }) };
    case "tenant.update": {
      const patch: { quotas?: Partial<TenantQuotas>; weight?: number } = {};
      if (cmd.quotas) patch.quotas = cmd.quotas;
      if (cmd.weight !== undefined) patch.weight = cmd.weight;
      const rec = store.tenants.update(cmd.id, patch);
      return rec ? { record: rec } : { deleted: false };
    }
    case "tenant.delete":
      return { deleted: store.tenants.delete(cmd.id) };
    case "token.create":
      return store.db.transaction(() => {
        if (cmd.onlyIfNoAdmin && store.tokens.countAdmin() > 0) throw new AdminExists();
        store.tokens.insert(cmd.token, cmd.hash);
        return {};
      })();
    case "token.delete":
      return { deleted: store.tokens.delete(cmd.id) };
    case "image.put":
      return { record: store.images.upsert(cmd.image, cmd.at) };
    case "image.delete":
      return { deleted: store.images.delete(cmd.tenantId, cmd.digest) };
    case "app.put":
      return {
        record: store.apps.upsert(cmd.tenantId, cmd.name, cmd.imageDigest, cmd.config, {
          id: cmd.id,
          at: cmd.at,
          ...(cmd.expectRevision !== undefined ? { expectRevision: cmd.expectRevision } : {}),
        }),
      };
    case "app.delete":
      return { deleted: store.apps.delete(cmd.id) };
    case "domain.put":
      return { record: store.domains.put(cmd.domain) };
    case "domain.delete":
      return { deleted: store.domains.delete(cmd.host, cmd.tenantId) };
    case "variable.set":
      store.variables.set(cmd.appId, cmd.name, cmd.value, cmd.secret, cmd.at);
      return {};
    case "variable.delete":
      return { deleted: store.variables.delete(cmd.appId, cmd.name) };
    default:
      // A command from a newer uniwasm (a cluster's log): not a refusal, so a cluster node stops applying rather than skip it.
      throw new Error(`unknown control command ${JSON.stringify((cmd as { op: unknown }).op)}: this uniwasm is older than the one that wrote it; upgrade it`);
  }
}

/**
 * The command-building half shared by both implementations: each write
 * method makes its command (with fresh ids and times) and hands it to
 * `commit`, which the implementation defines.
 */
export abstract class CommandControlState implements ControlState {
  abstract readonly kind: "sqlite" | "jetstream";
  private readonly listeners = new Set<(c: ControlChange) => void>();

  constructor(protected readonly store: NodeStore) {}

  get tenants() {
    return this.store.tenants;
  }
  get tokens() {
    return this.store.tokens;
  }
  get images() {
    return this.store.images;
  }
  get apps() {
    return this.store.apps;
  }
  get variables() {
    return this.store.variables;
  }
  get domains() {
    return this.store.domains;
  }

  /** Makes a command take effect (here, or cluster-wide) and returns what applying it produced. */
  protected abstract commit(cmd: ControlCommand): Promise<Omit<ControlChange, "remote" | "command">>;

  /** Tells the listeners about an applied command; a throwing listener does not stop the others. */
  protected notify(cmd: ControlCommand, result: Omit<ControlChange, "remote" | "command">, remote: boolean): void {
    const change: ControlChange = { command: cmd, remote, ...result };
    for (const l of this.listeners) {
      try {
        l(change);
      } catch {
        // a listener's failure is its own (it logs); the change is applied regardless
      }
    }
  }

  onChange(listener: (c: ControlChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async createTenant(name: string, quotas: Partial<TenantQuotas> = {}, weight = 1): Promise<TenantRecord> {
    return (await this.commit({ op: "tenant.create", id: newId("t"), name, quotas, weight, at: Date.now() })).record as TenantRecord;
  }

  async updateTenant(id: string, patch: { quotas?: Partial<TenantQuotas>; weight?: number }): Promise<TenantRecord | undefined> {
    return (await this.commit({ op: "tenant.update", id, ...patch })).record as TenantRecord | undefined;
  }

  async deleteTenant(id: string): Promise<boolean> {
    return (await this.commit({ op: "tenant.delete", id })).deleted === true;
  }

  async createToken(scope: TokenScope, tenantId: string | null, name: string): Promise<{ token: TokenRecord; secret: string }> {
    const { token, secret, hash } = mintToken(scope, tenantId, name);
    await this.commit({ op: "token.create", token, hash });
    return { token, secret };
  }

  async createBootstrapToken(): Promise<{ token: TokenRecord; secret: string } | undefined> {
    if (this.store.tokens.countAdmin() > 0) return undefined;
    const { token, secret, hash } = mintToken("admin", null, "bootstrap");
    try {
      await this.commit({ op: "token.create", token, hash, onlyIfNoAdmin: true });
    } catch (err) {
      if (err instanceof AdminExists) return undefined;
      throw err;
    }
    return { token, secret };
  }

  async deleteToken(id: string): Promise<boolean> {
    return (await this.commit({ op: "token.delete", id })).deleted === true;
  }

  async putImage(image: NewImage): Promise<ImageRecord> {
    return (await this.commit({ op: "image.put", image, at: Date.now() })).record as ImageRecord;
  }

  async deleteImage(tenantId: string, digest: string): Promise<boolean> {
    return (await this.commit({ op: "image.delete", tenantId, digest })).deleted === true;
  }

  async putApp(tenantId: string, name: string, imageDigest: string, config: AppConfig, expectRevision?: number): Promise<AppRecord> {
    const cmd: ControlCommand = { op: "app.put", id: newId("a"), tenantId, name, imageDigest, config, at: Date.now() };
    if (expectRevision !== undefined) cmd.expectRevision = expectRevision;
    return (await this.commit(cmd)).record as AppRecord;
  }

  async deleteApp(id: string): Promise<boolean> {
    return (await this.commit({ op: "app.delete", id })).deleted === true;
  }

  async putDomain(domain: DomainRecord): Promise<DomainRecord> {
    return (await this.commit({ op: "domain.put", domain })).record as DomainRecord;
  }

  async deleteDomain(host: string, tenantId: string): Promise<boolean> {
    return (await this.commit({ op: "domain.delete", host, tenantId })).deleted === true;
  }

  async setVariable(appId: string, name: string, value: string, secret: boolean): Promise<void> {
    await this.commit({ op: "variable.set", appId, name, value, secret, at: Date.now() });
  }

  async deleteVariable(appId: string, name: string): Promise<boolean> {
    return (await this.commit({ op: "variable.delete", appId, name })).deleted === true;
  }

  abstract shareBlobs(digests: readonly string[]): Promise<void>;
  abstract ensureBlobs(digests: readonly string[]): Promise<void>;
  abstract close(): Promise<void>;
}

/** One node: the control state is the node's SQLite, changed in place. */
export class SqliteControlState extends CommandControlState {
  readonly kind = "sqlite" as const;

  protected async commit(cmd: ControlCommand) {
    const result = applyCommand(this.store, cmd);
    this.notify(cmd, result, false);
    return result;
  }

  async shareBlobs(): Promise<void> {}

  async ensureBlobs(): Promise<void> {}

  async close(): Promise<void> {}
}
