import type { AppConfig, AppRecord, ControlState, ImageConfig, ImageRecord, NodeStore, TenantRecord } from "../store/index.js";
import { formatSize } from "../units.js";
import { CorruptBlob, RevisionConflict, RouteConflict } from "../store/index.js";
import type { ResourceManager } from "./manager.js";
import { instanceMemoryBytes } from "./budget.js";
import { RunnerError } from "./runner.js";
import { checkReactorExports } from "../sandbox/reactor-abi.js";
import { ControlError, Refusal } from "./refusal.js";
import { mergeSettings, resolveAppConfig, type DeployRequest } from "./app-config.js";
import { moduleSurface } from "./module-surface.js";
import { dropUnreferencedBlobs, imageGrants, storeImageDirs, type LoadedDir } from "./image-grants.js";
import { checkRouteHosts, dnsTxtLookup, DomainRegistry, isHostName, type TxtLookup } from "./domains.js";

/** An image as it arrives (a raw upload, a tarball or a pull), before it is stored. */
export interface IncomingImage {
  module: Uint8Array;
  name: string;
  config: ImageConfig;
  /** "upload", "image:<digest>" or "oci:<ref>". */
  source: string;
  signedBy: string | null;
  /** Kernel capabilities its manifest grants; absent = the kernel's defaults. */
  capabilities?: string[];
  dirs?: LoadedDir[];
}

export interface DeployerHooks {
  /** A platform event for an app's log. */
  event?(appId: string, line: string): void;
  /** A problem worth the node log (an app that could not start at restart). */
  warn?(obj: object, msg: string): void;
  /**
   * In a cluster: the written revision is started by the nodes it is placed
   * on, not here; this waits for them and throws (a ControlError) when none
   * can run it, so the previous record is restored as on one node.
   */
  rollout?(app: AppRecord): Promise<void>;
}

/**
 * The control plane's operations on images and apps, above the store and the
 * resource manager: ingest an image, deploy / update / delete an app (routes
 * claimed in the store, the revision started in the manager, rolled back when
 * it cannot start), and bring every stored app back at start-up. Every change
 * of the control state goes through `state` (this node's SQLite, or the
 * cluster); `store` holds this node's blobs. Refusals are ControlErrors; the
 * API maps them to HTTP.
 */
export interface DeployerOptions {
  store: NodeStore;
  state: ControlState;
  manager: ResourceManager;
  /** The node's domain: an app's own host is `<app>.<tenant>.<domain>`. Default "localhost". */
  domain?: string;
  /** TXT lookups that verify domain claims. Default: the system's resolver. */
  txtLookup?: TxtLookup;
  hooks?: DeployerHooks;
}

export class Deployer {
  private readonly store: NodeStore;
  private readonly state: ControlState;
  private readonly manager: ResourceManager;
  private readonly hooks: DeployerHooks;
  readonly domain: string;
  /** Custom domains: claims, verification, assignment; removing one takes its routes out. */
  readonly domains: DomainRegistry;
  /** Why an app is not running on this node (it could not start at restart), by app id. */
  private readonly problems = new Map<string, string>();

  constructor(opts: DeployerOptions) {
    this.store = opts.store;
    this.state = opts.state;
    this.manager = opts.manager;
    this.hooks = opts.hooks ?? {};
    this.domain = opts.domain ?? "localhost";
    if (!isHostName(this.domain)) throw new Error(`the node's domain must be a host name like localhost or apps.example.com, not ${JSON.stringify(this.domain)}`);
    this.domains = new DomainRegistry(opts.state, this.domain, opts.txtLookup ?? dnsTxtLookup(), (tenant, host, why) => this.dropRoutes(tenant, host, why));
  }

  /** Stores an image for a tenant (module and bundled files content-addressed); re-uploading a digest replaces its record. */
  async ingestImage(tenant: TenantRecord, img: IncomingImage): Promise<ImageRecord> {
    if (img.module.length === 0) throw new ControlError("invalid_module", "The upload is empty.");
    const surface = moduleSurface(img.module);
    if (img.config.abi === "reactor") {
      const why = checkReactorExports(surface.exports);
      if (why) throw new ControlError("invalid_module", why);
    }
    const { store, state } = this;
    const digest = store.blobs.put(img.module);
    const prev = state.images.get(tenant.id, digest);
    const dirs = storeImageDirs(store.blobs, img.dirs ?? []);
    await state.shareBlobs(blobsOf({ digest, dirs }));
    const rec = await state.putImage({
      tenantId: tenant.id,
      digest,
      name: img.name,
      size: img.module.length,
      source: img.source,
      config: img.config,
      info: surface,
      signedBy: img.signedBy,
      capabilities: img.capabilities ?? null,
      dirs,
    });
    if (prev) dropUnreferencedBlobs(state.images, store.blobs, prev); // files the replaced record bundled
    await this.restartHealed();
    return rec;
  }

  /** Why the app is not running here, when it could not start (a quarantined image, a failed start). */
  problem(appId: string): string | undefined {
    return this.problems.get(appId);
  }

  /** The image's blobs (module, bundled files) this node does not have: quarantined or missing. */
  missingBlobs(image: Pick<ImageRecord, "digest" | "dirs">): string[] {
    return blobsOf(image).filter((d) => !this.store.blobs.has(d));
  }

  /** Blobs moved aside as corrupt (not stored again since), with the images that need them and the apps on those images. */
  quarantine(): { digest: string; path: string; at: number; images: { tenant: string; name: string; digest: string }[]; apps: { tenant: string; name: string }[] }[] {
    const found = this.store.blobs.quarantined();
    if (found.length === 0) return [];
    const images = this.state.tenants.list().flatMap((t) => this.state.images.list(t.id).map((i) => ({ t, i })));
    return found.map((q) => {
      const users = images.filter(({ i }) => blobsOf(i).includes(q.digest));
      const apps = users.flatMap(({ t, i }) => this.state.apps.list(t.id).filter((a) => a.imageDigest === i.digest).map((a) => ({ tenant: t.name, name: a.name })));
      return { ...q, images: users.map(({ t, i }) => ({ tenant: t.name, name: i.name, digest: i.digest })), apps };
    });
  }

  /** Starts the apps that could not start for want of a blob, now that their blobs are all here again. */
  private async restartHealed(): Promise<void> {
    for (const appId of [...this.problems.keys()]) {
      const app = this.state.apps.get(appId);
      const image = app && this.state.images.get(app.tenantId, app.imageDigest);
      if (!app || !image) {
        this.problems.delete(appId);
        continue;
      }
      if (this.manager.deployment(appId) || this.missingBlobs(image).length > 0) continue;
      try {
        await this.startStored(app);
        this.hooks.event?.(appId, `started again: the blobs of image ${image.digest} are back`);
      } catch (err) {
        this.problems.set(appId, (err as Error).message);
      }
    }
  }

  /** Deletes an image no app uses, and the blobs no other image records. */
  async deleteImage(tenant: TenantRecord, image: ImageRecord): Promise<void> {
    const users = this.state.images.usedByApps(tenant.id, image.digest);
    if (users.length > 0) throw new ControlError("image_in_use", `Image ${image.digest} is used by app(s) ${users.join(", ")}.`);
    await this.state.deleteImage(tenant.id, image.digest);
    dropUnreferencedBlobs(this.state.images, this.store.blobs, image);
  }

  /**
   * Deploys an app or updates it (zero-downtime: the new revision starts
   * before traffic moves). The record and its routes are claimed first (a
   * conflict changes nothing); if the revision cannot start, the previous
   * record is restored and the old revision keeps serving.
   */
  async deployApp(tenant: TenantRecord, name: string, req: DeployRequest, caller: { admin: boolean } = { admin: false }): Promise<{ app: AppRecord; created: boolean }> {
    const { store, state, manager } = this;
    const image = state.images.resolve(tenant.id, req.image);
    if (!image) throw new ControlError("image_not_found", `No image ${JSON.stringify(req.image)} in tenant ${tenant.name}; upload it first.`);
    const quotas = manager.quotasOf(tenant.id);
    const existing = state.apps.findByName(tenant.id, name);
    if (!existing && state.apps.count(tenant.id) >= quotas.maxApps) {
      throw new ControlError("quota_exceeded", `Tenant ${tenant.name} has ${quotas.maxApps} apps, its quota.`);
    }
    const settings = mergeSettings(existing?.config, req);
    const config: AppConfig = { ...resolveAppConfig(image.config, { ...settings, image: req.image }, tenant.name, name, { maxTimeoutMs: manager.maxTimeoutMs, domain: this.domain }), settings };
    checkRouteHosts(config.routes, tenant, { admin: caller.admin, domain: this.domain, domains: state.domains });
    if (config.abi === "reactor") {
      const why = checkReactorExports(image.info.exports);
      if (why) throw new ControlError("invalid_config", why);
    }
    try {
      await state.ensureBlobs(blobsOf(image));
    } catch (err) {
      throw new ControlError("image_not_found", `The blobs of image ${image.digest} cannot be read: ${(err as Error).message}`);
    }
    const bytes = store.blobs.get(image.digest);
    if (!bytes) throw new ControlError("image_not_found", `The blob of image ${image.digest} is missing on this node.`);
    let grants: ReturnType<typeof imageGrants>;
    try {
      grants = imageGrants(store.blobs, image);
    } catch (err) {
      throw new ControlError("image_not_found", (err as Error).message);
    }
    const instanceBytes = instanceMemoryBytes(config.limits, grants);
    if (instanceBytes > quotas.memoryMiB * 1024 * 1024) {
      const dirs = instanceBytes > config.limits.maxMemoryBytes ? ` plus ${formatSize(config.limits.memDirBytes)} for its writable in-memory directories (limits.memDirBytes)` : "";
      throw new ControlError("quota_exceeded", `limits.maxMemoryBytes ${formatSize(config.limits.maxMemoryBytes)}${dirs} is above tenant ${tenant.name}'s memory quota (${quotas.memoryMiB} MiB).`);
    }
    let rec: AppRecord;
    try {
      rec = await state.putApp(tenant.id, name, image.digest, config, existing?.revision ?? 0);
    } catch (err) {
      if (err instanceof RouteConflict) throw new ControlError("route_conflict", `Route ${err.route.host}${err.route.path} belongs to another app.`);
      if (err instanceof RevisionConflict) throw new ControlError("app_changed", `App ${name} changed while this deploy was checked (${err.message}); deploy again.`);
      throw err;
    }
    try {
      if (this.hooks.rollout) await this.hooks.rollout(rec);
      else await manager.deploy(rec, { digest: image.digest, bytes }, grants);
    } catch (err) {
      if (existing) await state.putApp(tenant.id, name, existing.imageDigest, existing.config);
      else await state.deleteApp(rec.id);
      if (err instanceof RunnerError) throw new ControlError("invalid_module", `The app failed to start: ${err.message}`);
      if (err instanceof Refusal) {
        if (err.code === "tenant_cpu_exhausted") throw new ControlError("tenant_cpu_exhausted", err.message, err.retryAfter);
        throw new ControlError("quota_exceeded", err.message);
      }
      throw err;
    }
    this.problems.delete(rec.id);
    this.hooks.event?.(rec.id, `deployed revision ${rec.revision} of image ${image.name} (${image.digest})`);
    return { app: rec, created: !existing };
  }

  /** Deletes an app: its routes go at once, its in-flight requests finish first. */
  async deleteApp(app: AppRecord): Promise<void> {
    await this.state.deleteApp(app.id);
    await this.manager.undeploy(app.id);
  }

  /** Takes the tenant's routes on `host` out of its apps: a new revision of each, started like a deploy. */
  private async dropRoutes(tenant: TenantRecord, host: string, why: string): Promise<void> {
    for (const app of this.state.apps.list(tenant.id)) {
      const gone = app.config.routes.filter((r) => r.host === host);
      if (gone.length === 0) continue;
      const config = { ...app.config, routes: app.config.routes.filter((r) => r.host !== host) };
      // ...and from the settings a redeploy keeps, or the next redeploy would ask for the host again.
      if (config.settings?.routes) config.settings = { ...config.settings, routes: config.settings.routes.filter((r) => r.host !== host) };
      const rec = await this.state.putApp(tenant.id, app.name, app.imageDigest, config, app.revision);
      if (this.manager.deployment(app.id)) {
        const bytes = this.store.blobs.get(app.imageDigest);
        const image = this.state.images.get(tenant.id, app.imageDigest);
        if (bytes) await this.manager.deploy(rec, { digest: app.imageDigest, bytes }, image ? imageGrants(this.store.blobs, image) : {});
      }
      this.hooks.event?.(app.id, `routes ${gone.map((r) => r.host + r.path).join(", ")} removed: ${why} (revision ${rec.revision})`);
    }
  }

  /**
   * Starts a stored revision on this node (or rolls the running one over to
   * it), its blobs fetched first when the control state is a cluster's.
   */
  async startStored(app: AppRecord): Promise<void> {
    const { store, state, manager } = this;
    const image = state.images.get(app.tenantId, app.imageDigest);
    await state.ensureBlobs(image ? blobsOf(image) : [app.imageDigest]);
    const bytes = store.blobs.get(app.imageDigest);
    if (!bytes) throw new Error(`blob ${app.imageDigest} is missing`);
    await manager.deploy(app, { digest: app.imageDigest, bytes }, image ? imageGrants(store.blobs, image) : {});
    this.problems.delete(app.id);
  }

  /**
   * Starts every stored app again (after a restart), exactly as stored. An
   * app that cannot start is skipped, with the reason in its log, the node's
   * log and `problem()`; the others start. A blob that fails verification
   * quarantines its image: the blob is moved aside (BlobStore), and every app
   * on it waits until the image is uploaded again (or, in a cluster, fetched).
   */
  async restore(): Promise<void> {
    const { state, manager } = this;
    for (const t of state.tenants.list()) manager.setTenant(t);
    for (const app of state.apps.list()) {
      const tenant = state.tenants.find(app.tenantId)?.name ?? app.tenantId;
      try {
        await this.startStored(app);
      } catch (err) {
        const image = state.images.get(app.tenantId, app.imageDigest);
        const missing = image ? this.missingBlobs(image) : [app.imageDigest];
        let why: string;
        if (err instanceof CorruptBlob) {
          why = `image ${app.imageDigest} is quarantined: ${err.message}; upload the image again to restore the app`;
          this.hooks.warn?.({ tenant, app: app.name, image: app.imageDigest, blob: err.digest, quarantinedTo: err.quarantinedTo }, "image quarantined: a blob is corrupt on disk; its apps are not started");
        } else if (missing.length > 0) {
          why = `image ${app.imageDigest} is quarantined: blob(s) ${missing.join(", ")} missing on this node; upload the image again to restore the app`;
          this.hooks.warn?.({ tenant, app: app.name, image: app.imageDigest, missing }, "image quarantined: blobs are missing; its apps are not started");
        } else {
          why = (err as Error).message;
          this.hooks.warn?.({ tenant, app: app.name, err }, "app failed to start on restart");
        }
        this.problems.set(app.id, why);
        this.hooks.event?.(app.id, `not started after restart: ${why}`);
      }
    }
  }
}

/** Every blob an image needs: its module and its bundled files. */
function blobsOf(image: Pick<ImageRecord, "digest" | "dirs">): string[] {
  return [image.digest, ...image.dirs.flatMap((d) => Object.values(d.files))];
}
