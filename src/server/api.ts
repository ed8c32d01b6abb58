import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type {} from "@fastify/swagger"; // route `summary`/`tags` typings
import type { NodeStore, TenantQuotas, TenantRecord, TokenRecord, ImageRecord, AppRecord, ImageConfig, ControlState } from "../store/index.js";
import { TenantExists } from "../store/index.js";
import type { ResourceManager, Deployer, DeployRequest, IncomingImage } from "../manager/index.js";
import { TIERS } from "../sandbox/tiers/tier.js";
import { QUOTA_KEYS, domainView, type DomainView } from "../manager/index.js";
import { ApiError } from "./errors.js";
import { LIMIT_NAMES, LimitOptionError, parseLimits } from "../limits.js";
import { VARIABLE_RE } from "../image/manifest.js";
import type { VariableInfo } from "../store/variables.js";
import { authenticate, requireAdmin, tenantFor, type Principal } from "./auth.js";
import type { StatsRecorder } from "./stats.js";
import type { ImageSource } from "./image-source.js";
import type { Cluster } from "../cluster/index.js";

/**
 * The control-plane API: routes, request validation (schemas), and the
 * mapping of the manager's refusals to the error catalogue. What an
 * operation does lives in the manager (Deployer, ResourceManager).
 */
export interface ApiContext {
  /** Node-local data (logs, usage, blob cache); reads of the control state (its SQLite, or a cluster's replicated cache). */
  store: NodeStore;
  /** Every change of tenants, tokens, images and apps goes through here (one node's SQLite, or the cluster). */
  state: ControlState;
  manager: ResourceManager;
  deployer: Deployer;
  stats: StatsRecorder;
  images: ImageSource;
  /** Per-app denied host calls seen so far (name -> count). */
  deniedCalls: Map<string, Record<string, number>>;
  gatewayUrl: () => string;
  nodeInfo: () => Record<string, unknown>;
  /** Largest image upload, bytes. */
  maxImageBytes: number;
  /** Set when the node is a member of a cluster: app views show where the app runs. */
  cluster?: Pick<Cluster, "replicasOf" | "placementOf" | "info" | "logs">;
}

const NAME_RE = "^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$";
const nameSchema = { type: "string", pattern: NAME_RE, description: "lower-case letters, digits and inner dashes, 1-40 characters" } as const;

const quotaProps = Object.fromEntries(QUOTA_KEYS.map((k) => [k, k === "minTier" ? { type: "string", enum: [...TIERS] } : { type: "integer", minimum: 0 }]));
const quotasSchema = { type: "object", additionalProperties: false, properties: quotaProps } as const;
const routeSchema = {
  type: "object",
  additionalProperties: false,
  required: ["path"],
  properties: { host: { type: "string", maxLength: 253 }, path: { type: "string", maxLength: 1024 } },
} as const;
// The one limits vocabulary (src/limits.ts): numbers in the field's unit, strings in the size/duration
// grammar ("64MiB", "5s"), null for unlimited. Unknown names are not dropped here: resolveAppConfig
// refuses them by name (invalid_config), so an old field name never silently does nothing.
const limitsSchema = {
  type: "object",
  description: "the app's limits (docs/limits.md): a number in the field's unit, a string such as \"64MiB\" or \"5s\", or null for unlimited",
  properties: Object.fromEntries(LIMIT_NAMES.map((n) => [n, { type: ["number", "string", "null"] }])),
} as const;
const envSchema = { type: "object", additionalProperties: { type: "string" }, maxProperties: 256 } as const;
const argsSchema = { type: "array", items: { type: "string" }, maxItems: 256 } as const;
const stringList = { type: "array", items: { type: "string", maxLength: 512 }, maxItems: 64 } as const;
/** Host extensions granted (docs/extensions.md); each list given replaces the image's. */
const extensionsSchema = {
  type: "object",
  additionalProperties: false,
  properties: { grants: stringList, allowedOutboundHosts: stringList, keyValueStores: stringList, allowedServices: stringList, variables: stringList },
} as const;
const imageConfigSchema = {
  type: "object",
  additionalProperties: false,
  properties: { abi: { enum: ["wagi", "reactor", "service"] }, env: envSchema, args: argsSchema, routes: { type: "array", items: routeSchema, maxItems: 64 }, limits: limitsSchema, extensions: extensionsSchema },
} as const;

const tenantParams = { type: "object", required: ["tenant"], properties: { tenant: { type: "string" } } } as const;
const sec = [{ bearer: [] as string[] }];

function tenantView(t: TenantRecord, manager: ResourceManager) {
  return { id: t.id, name: t.name, weight: t.weight, quotas: manager.quotasOf(t.id), quotaOverrides: t.quotas, createdAt: new Date(t.createdAt).toISOString() };
}
function tokenView(t: TokenRecord) {
  return { id: t.id, name: t.name, scope: t.scope, tenantId: t.tenantId, prefix: t.prefix, createdAt: new Date(t.createdAt).toISOString(), lastUsedAt: t.lastUsedAt ? new Date(t.lastUsedAt).toISOString() : null };
}
/** `missing`: the image's blobs this node lacks (a quarantined image, see Deployer.restore). */
function imageView(i: ImageRecord, missing: readonly string[] = []) {
  return {
    digest: i.digest,
    name: i.name,
    size: i.size,
    source: i.source,
    config: i.config,
    signedBy: i.signedBy,
    surface: i.info,
    capabilities: i.capabilities,
    dirs: i.dirs.map((d) => ({ guest: d.guest, readonly: d.readonly, files: Object.keys(d.files).sort() })),
    quarantined: missing.length > 0 ? { missingBlobs: [...missing], fix: "upload the image again" } : null,
    createdAt: new Date(i.createdAt).toISOString(),
  };
}

export function registerApi(app: FastifyInstance, ctx: ApiContext): void {
  const { store, state, manager, deployer } = ctx;

  const principal = (req: FastifyRequest): Principal => {
    if (!req.principal) req.principal = authenticate(store, req);
    return req.principal;
  };
  const tenantOf = (req: FastifyRequest) => tenantFor(store, principal(req), (req.params as { tenant: string }).tenant);
  const appOf = (req: FastifyRequest) => {
    const t = tenantOf(req);
    const name = (req.params as { app: string }).app;
    const a = store.apps.findByName(t.id, name);
    if (!a) throw new ApiError("app_not_found", `No app ${JSON.stringify(name)} in tenant ${t.name}.`);
    return { tenant: t, app: a };
  };
  const appView = (a: AppRecord, t: TenantRecord) => {
    const d = manager.deployment(a.id);
    const image = store.images.get(t.id, a.imageDigest);
    const problem = d ? undefined : deployer.problem(a.id);
    const gw = ctx.gatewayUrl();
    return {
      id: a.id,
      name: a.name,
      tenant: t.name,
      image: a.imageDigest,
      imageName: image?.name ?? null,
      revision: a.revision,
      config: a.config,
      status: ctx.cluster ? clusterStatus(ctx.cluster, a) : d ? (d.draining ? "draining" : "running") : problem ? (image && deployer.missingBlobs(image).length > 0 ? "quarantined" : "failed") : "stopped",
      problem: problem ?? null,
      ...(ctx.cluster ? clusterView(ctx.cluster, a) : {}),
      urls: a.config.routes.map((r) => (r.host === "*" ? `${gw}${r.path}` : `${gw}${r.path}  (Host: ${r.host})`)),
      surface: image?.info.wasiCalls ?? [],
      deniedCalls: ctx.deniedCalls.get(a.id) ?? {},
      // Where this node runs its guests (src/manager/placement.ts): the serving thread or executors, and why;
      // the tier (src/sandbox/tiers/tier.ts): the wall around those executors, and what chose it.
      execution: d ? { placement: d.placement.placement, why: d.placement.why, tier: d.tier.tier, tierWhy: d.tier.why } : null,
      createdAt: new Date(a.createdAt).toISOString(),
      updatedAt: new Date(a.updatedAt).toISOString(),
    };
  };

  // Every /v1 route authenticates before anything else (including body parsing errors).
  app.addHook("onRequest", async (req) => {
    if (req.url.startsWith("/v1/") || req.url === "/metrics" || req.url.startsWith("/metrics?")) principal(req);
  });

  // ---- identity and node ----
  app.get("/v1/whoami", { schema: { summary: "Who this token is", tags: ["auth"], security: sec } }, async (req) => {
    const p = principal(req);
    const tenant = p.scope === "tenant" ? store.tenants.find(p.tenantId) : undefined;
    return { scope: p.scope, token: tokenView(p.token), tenant: tenant ? { id: tenant.id, name: tenant.name } : null };
  });

  app.get("/v1/node", { schema: { summary: "Node status, budgets and executors (admin)", tags: ["node"], security: sec } }, async (req) => {
    requireAdmin(principal(req));
    return ctx.nodeInfo();
  });

  app.get("/v1/cluster", { schema: { summary: "The cluster this node is a member of: members, the scheduler, placements (admin)", tags: ["node"], security: sec } }, async (req) => {
    requireAdmin(principal(req));
    if (!ctx.cluster) throw new ApiError("not_found", "This node is not a member of a cluster (start it with --cluster).");
    return ctx.cluster.info();
  });

  // ---- tenants ----
  app.get("/v1/tenants", { schema: { summary: "List tenants (a tenant token sees only its own)", tags: ["tenants"], security: sec } }, async (req) => {
    const p = principal(req);
    const list = p.scope === "admin" ? store.tenants.list() : [store.tenants.find(p.tenantId)!];
    return { tenants: list.map((t) => tenantView(t, manager)) };
  });

  app.post(
    "/v1/tenants",
    {
      schema: {
        summary: "Create a tenant and its first token (admin)",
        tags: ["tenants"],
        security: sec,
        body: { type: "object", additionalProperties: false, required: ["name"], properties: { name: nameSchema, quotas: quotasSchema, weight: { type: "integer", minimum: 1, maximum: 100 } } },
      },
    },
    async (req, reply) => {
      requireAdmin(principal(req));
      const body = req.body as { name: string; quotas?: Partial<TenantQuotas>; weight?: number };
      if (store.tenants.nameTaken(body.name)) throw new ApiError("tenant_exists", `A tenant named ${body.name} exists.`);
      let t: TenantRecord;
      try {
        t = await state.createTenant(body.name, body.quotas ?? {}, body.weight ?? 1);
      } catch (err) {
        if (err instanceof TenantExists) throw new ApiError("tenant_exists", `A tenant named ${body.name} exists.`);
        throw err;
      }
      manager.setTenant(t);
      const { token, secret } = await state.createToken("tenant", t.id, "default");
      reply.code(201);
      return { tenant: tenantView(t, manager), token: { ...tokenView(token), secret } };
    },
  );

  app.get("/v1/tenants/:tenant", { schema: { summary: "One tenant", tags: ["tenants"], security: sec, params: tenantParams } }, async (req) => tenantView(tenantOf(req), manager));

  app.patch(
    "/v1/tenants/:tenant",
    {
      schema: {
        summary: "Change a tenant's quotas or weight (admin)",
        tags: ["tenants"],
        security: sec,
        params: tenantParams,
        body: { type: "object", additionalProperties: false, properties: { quotas: quotasSchema, weight: { type: "integer", minimum: 1, maximum: 100 } } },
      },
    },
    async (req) => {
      const p = principal(req);
      const t = tenantOf(req);
      requireAdmin(p);
      const updated = (await state.updateTenant(t.id, req.body as { quotas?: Partial<TenantQuotas>; weight?: number }))!;
      // A raised minimum tier applies before the call answers: the tenant's apps on a weaker tier have moved.
      await manager.setTenant(updated).tierRaised;
      return tenantView(updated, manager);
    },
  );

  app.delete("/v1/tenants/:tenant", { schema: { summary: "Delete a tenant and everything it owns (admin)", tags: ["tenants"], security: sec, params: tenantParams } }, async (req, reply) => {
    const p = principal(req);
    const t = tenantOf(req);
    requireAdmin(p);
    await manager.removeTenant(t.id);
    await state.deleteTenant(t.id);
    reply.code(204);
  });

  // ---- tokens ----
  app.get("/v1/tenants/:tenant/tokens", { schema: { summary: "List a tenant's tokens (never their secrets)", tags: ["tokens"], security: sec, params: tenantParams } }, async (req) => ({
    tokens: store.tokens.listForTenant(tenantOf(req).id).map(tokenView),
  }));

  app.post(
    "/v1/tenants/:tenant/tokens",
    {
      schema: {
        summary: "Create a tenant token; the secret is shown only in this response",
        tags: ["tokens"],
        security: sec,
        params: tenantParams,
        body: { type: "object", additionalProperties: false, required: ["name"], properties: { name: { type: "string", minLength: 1, maxLength: 64 } } },
      },
    },
    async (req, reply) => {
      const t = tenantOf(req);
      const { token, secret } = await state.createToken("tenant", t.id, (req.body as { name: string }).name);
      reply.code(201);
      return { ...tokenView(token), secret };
    },
  );

  app.delete(
    "/v1/tenants/:tenant/tokens/:token",
    { schema: { summary: "Revoke a tenant token", tags: ["tokens"], security: sec, params: { type: "object", required: ["tenant", "token"], properties: { tenant: { type: "string" }, token: { type: "string" } } } } },
    async (req, reply) => {
      const t = tenantOf(req);
      const id = (req.params as { token: string }).token;
      const tok = store.tokens.get(id);
      if (!tok || tok.tenantId !== t.id) throw new ApiError("token_not_found", `No token ${id} in tenant ${t.name}.`);
      await state.deleteToken(id);
      reply.code(204);
    },
  );

  app.get("/v1/admin-tokens", { schema: { summary: "List admin tokens (admin)", tags: ["tokens"], security: sec } }, async (req) => {
    requireAdmin(principal(req));
    return { tokens: store.tokens.listAdmin().map(tokenView) };
  });

  app.post(
    "/v1/admin-tokens",
    { schema: { summary: "Create an admin token (admin)", tags: ["tokens"], security: sec, body: { type: "object", additionalProperties: false, required: ["name"], properties: { name: { type: "string", minLength: 1, maxLength: 64 } } } } },
    async (req, reply) => {
      requireAdmin(principal(req));
      const { token, secret } = await state.createToken("admin", null, (req.body as { name: string }).name);
      reply.code(201);
      return { ...tokenView(token), secret };
    },
  );

  app.delete("/v1/admin-tokens/:token", { schema: { summary: "Revoke an admin token (admin)", tags: ["tokens"], security: sec, params: { type: "object", required: ["token"], properties: { token: { type: "string" } } } } }, async (req, reply) => {
    const p = principal(req);
    requireAdmin(p);
    const id = (req.params as { token: string }).token;
    const tok = store.tokens.get(id);
    if (!tok || tok.scope !== "admin") throw new ApiError("token_not_found", `No admin token ${id}.`);
    if (store.tokens.countAdmin() === 1) throw new ApiError("forbidden", "Refusing to revoke the last admin token.");
    await state.deleteToken(id);
    reply.code(204);
  });

  // ---- images ----
  const imageParams = { type: "object", required: ["tenant", "digest"], properties: { tenant: { type: "string" }, digest: { type: "string" } } } as const;

  app.get("/v1/tenants/:tenant/images", { schema: { summary: "List images", tags: ["images"], security: sec, params: tenantParams } }, async (req) => ({
    images: store.images.list(tenantOf(req).id).map((i) => imageView(i, deployer.missingBlobs(i))),
  }));

  app.post(
    "/v1/tenants/:tenant/images",
    {
      bodyLimit: ctx.maxImageBytes,
      schema: {
        summary: "Upload an image: raw module (Content-Type application/wasm, ?name=&abi=), JSON {name, module (base64), config}, or an image tarball (application/x-tar, built by `uniwasm build`/`save`)",
        tags: ["images"],
        security: sec,
        params: tenantParams,
        querystring: { type: "object", properties: { name: { type: "string", maxLength: 128 }, abi: { enum: ["wagi", "reactor", "service"] } } },
      },
    },
    async (req, reply) => {
      const t = tenantOf(req);
      const ctype = String(req.headers["content-type"] ?? "").split(";")[0]!.trim();
      let incoming: IncomingImage;
      if (ctype === "application/wasm") {
        const q = req.query as { name?: string; abi?: ImageConfig["abi"] };
        incoming = { module: req.body as Buffer, name: q.name ?? "unnamed", config: q.abi ? { abi: q.abi } : {}, source: "upload", signedBy: null };
      } else if (ctype === "application/json") {
        const b = req.body as { name?: unknown; module?: unknown; config?: unknown };
        if (typeof b !== "object" || b === null || typeof b.module !== "string") throw new ApiError("bad_request", "JSON upload needs {name, module: <base64 of the .wasm>, config?}.");
        const name = typeof b.name === "string" && b.name.length > 0 && b.name.length <= 128 ? b.name : "unnamed";
        incoming = { module: Buffer.from(b.module, "base64"), name, config: validateImageConfig(b.config ?? {}), source: "upload", signedBy: null };
      } else if (ctype === "application/x-tar") {
        const loaded = await ctx.images.fromTarball(req.body as Buffer);
        incoming = { module: loaded.module, name: loaded.name, config: loaded.config, source: `image:${loaded.digest}`, signedBy: loaded.signedBy, dirs: loaded.dirs ?? [] };
        if (loaded.capabilities) incoming.capabilities = loaded.capabilities;
      } else {
        throw new ApiError("unsupported_media_type", `Upload with Content-Type application/wasm, application/json or application/x-tar, not ${ctype || "none"}.`);
      }
      ctx.images.checkPolicy(incoming.signedBy);
      const rec = await deployer.ingestImage(t, incoming);
      reply.code(201);
      return imageView(rec);
    },
  );

  app.post(
    "/v1/tenants/:tenant/images/pull",
    { schema: { summary: "Pull an image from an OCI registry by reference", tags: ["images"], security: sec, params: tenantParams, body: { type: "object", additionalProperties: false, required: ["ref"], properties: { ref: { type: "string", maxLength: 512 }, insecure: { type: "boolean" } } } } },
    async (req, reply) => {
      const t = tenantOf(req);
      const body = req.body as { ref: string; insecure?: boolean };
      const loaded = await ctx.images.pull(body.ref, { insecure: body.insecure === true });
      ctx.images.checkPolicy(loaded.signedBy);
      const rec = await deployer.ingestImage(t, {
        module: loaded.module,
        name: loaded.name,
        config: loaded.config,
        source: `oci:${body.ref}`,
        signedBy: loaded.signedBy,
        dirs: loaded.dirs ?? [],
        ...(loaded.capabilities ? { capabilities: loaded.capabilities } : {}),
      });
      reply.code(201);
      return imageView(rec);
    },
  );

  const imageOf = (req: FastifyRequest) => {
    const t = tenantOf(req);
    const ref = (req.params as { digest: string }).digest;
    const img = store.images.resolve(t.id, ref);
    if (!img) throw new ApiError("image_not_found", `No image ${JSON.stringify(ref)} in tenant ${t.name}.`);
    return { tenant: t, image: img };
  };

  app.get("/v1/tenants/:tenant/images/:digest", { schema: { summary: "One image (digest, digest prefix or name)", tags: ["images"], security: sec, params: imageParams } }, async (req) => {
    const { image } = imageOf(req);
    return imageView(image, deployer.missingBlobs(image));
  });

  app.delete("/v1/tenants/:tenant/images/:digest", { schema: { summary: "Delete an image no app uses", tags: ["images"], security: sec, params: imageParams } }, async (req, reply) => {
    const { tenant, image } = imageOf(req);
    await deployer.deleteImage(tenant, image);
    reply.code(204);
  });

  // ---- domains ----
  const domainParams = { type: "object", required: ["tenant", "host"], properties: { tenant: { type: "string" }, host: { type: "string", maxLength: 253 } } } as const;

  app.get("/v1/tenants/:tenant/domains", { schema: { summary: "Custom domains: owned, and pending claims with the TXT record that proves them", tags: ["domains"], security: sec, params: tenantParams } }, async (req) => ({
    domains: deployer.domains.list(tenantOf(req)).map(domainJson),
  }));

  app.post(
    "/v1/tenants/:tenant/domains",
    {
      schema: {
        summary: "Claim a custom domain (a tenant: pending until its DNS TXT record is verified) or assign one (admin: owned at once)",
        tags: ["domains"],
        security: sec,
        params: tenantParams,
        body: { type: "object", additionalProperties: false, required: ["host"], properties: { host: { type: "string", minLength: 1, maxLength: 253 } } },
      },
    },
    async (req, reply) => {
      const t = tenantOf(req);
      const { domain, created } = await deployer.domains.claim(t, (req.body as { host: string }).host, { admin: principal(req).scope === "admin" });
      reply.code(created ? 201 : 200);
      return domainJson(domain);
    },
  );

  app.get("/v1/tenants/:tenant/domains/:host", { schema: { summary: "One domain claim", tags: ["domains"], security: sec, params: domainParams } }, async (req) => {
    const t = tenantOf(req);
    return domainJson(domainView(deployer.domains.get(t, (req.params as { host: string }).host)));
  });

  app.post("/v1/tenants/:tenant/domains/:host/verify", { schema: { summary: "Verify a claim: the node looks up its _uniwasm-challenge TXT record", tags: ["domains"], security: sec, params: domainParams } }, async (req) => {
    const t = tenantOf(req);
    return domainJson(await deployer.domains.verify(t, (req.params as { host: string }).host));
  });

  app.delete("/v1/tenants/:tenant/domains/:host", { schema: { summary: "Drop a domain (the tenant's routes on it go too)", tags: ["domains"], security: sec, params: domainParams } }, async (req, reply) => {
    const t = tenantOf(req);
    await deployer.domains.remove(t, (req.params as { host: string }).host);
    reply.code(204);
  });

  // ---- apps ----
  const appParams = { type: "object", required: ["tenant", "app"], properties: { tenant: { type: "string" }, app: { type: "string" } } } as const;

  app.get("/v1/tenants/:tenant/apps", { schema: { summary: "List apps", tags: ["apps"], security: sec, params: tenantParams } }, async (req) => {
    const t = tenantOf(req);
    return { apps: store.apps.list(t.id).map((a) => appView(a, t)) };
  });

  app.put(
    "/v1/tenants/:tenant/apps/:app",
    {
      schema: {
        summary: "Deploy an app, or update it with zero-downtime rollover",
        tags: ["apps"],
        security: sec,
        params: { ...appParams, properties: { tenant: { type: "string" }, app: nameSchema } },
        body: {
          type: "object",
          additionalProperties: false,
          required: ["image"],
          properties: {
            image: { type: "string", description: "digest, digest prefix or image name" },
            abi: { enum: ["wagi", "reactor", "service"] },
            routes: { type: "array", items: routeSchema, maxItems: 64 },
            env: envSchema,
            args: argsSchema,
            limits: limitsSchema,
            scale: { type: "object", additionalProperties: false, properties: { minInstances: { type: "integer" }, maxInstances: { type: "integer" }, idleTimeoutMs: { type: "integer" } } },
            replicas: { anyOf: [{ type: "integer" }, { const: "all" }], description: 'in a cluster: how many nodes run the app, or "all"' },
            extensions: extensionsSchema,
          },
        },
      },
    },
    async (req, reply) => {
      const t = tenantOf(req);
      const { app: rec, created } = await deployer.deployApp(t, (req.params as { app: string }).app, req.body as DeployRequest, { admin: principal(req).scope === "admin" });
      reply.code(created ? 201 : 200);
      return appView(rec, t);
    },
  );

  app.get("/v1/tenants/:tenant/apps/:app", { schema: { summary: "One app", tags: ["apps"], security: sec, params: appParams } }, async (req) => {
    const { tenant, app: a } = appOf(req);
    return appView(a, tenant);
  });

  app.delete("/v1/tenants/:tenant/apps/:app", { schema: { summary: "Delete an app (its in-flight requests finish first)", tags: ["apps"], security: sec, params: appParams } }, async (req, reply) => {
    const { app: a } = appOf(req);
    await deployer.deleteApp(a);
    ctx.deniedCalls.delete(a.id);
    reply.code(204);
  });

  // ---- variables (uniwasm:variables): a secret's value is write-only ----
  const variableParams = { type: "object", required: ["tenant", "app", "name"], properties: { tenant: { type: "string" }, app: { type: "string" }, name: { type: "string" } } } as const;
  const variableView = (v: VariableInfo) => ({ name: v.name, secret: v.secret, ...(v.secret ? {} : { value: v.value }), updatedAt: new Date(v.updatedAt).toISOString() });

  app.get("/v1/tenants/:tenant/apps/:app/variables", { schema: { summary: "An app's variables (secrets by name only, never their values)", tags: ["apps"], security: sec, params: appParams } }, async (req) => {
    const { app: a } = appOf(req);
    return { variables: store.variables.list(a.id).map(variableView) };
  });

  app.put(
    "/v1/tenants/:tenant/apps/:app/variables/:name",
    {
      schema: {
        summary: "Set a variable the app's guest may read when granted (uniwasm:variables); secret: true makes the value write-only",
        tags: ["apps"],
        security: sec,
        params: variableParams,
        body: { type: "object", additionalProperties: false, required: ["value"], properties: { value: { type: "string", maxLength: 65536 }, secret: { type: "boolean" } } },
      },
    },
    async (req) => {
      const { app: a } = appOf(req);
      const name = (req.params as { name: string }).name;
      if (!VARIABLE_RE.test(name)) throw new ApiError("invalid_config", `${JSON.stringify(name.slice(0, 80))} is not a variable name ([a-z][a-z0-9_]*, at most 64 characters).`);
      const body = req.body as { value: string; secret?: boolean };
      if (body.value.includes("\0")) throw new ApiError("invalid_config", `Variable ${name} must not contain NUL.`);
      await state.setVariable(a.id, name, body.value, body.secret === true);
      store.logs.append(a.id, "event", `variable ${name} set${body.secret ? " (secret)" : ""}`);
      return variableView(store.variables.list(a.id).find((v) => v.name === name)!);
    },
  );

  app.delete("/v1/tenants/:tenant/apps/:app/variables/:name", { schema: { summary: "Delete a variable", tags: ["apps"], security: sec, params: variableParams } }, async (req, reply) => {
    const { app: a } = appOf(req);
    const name = (req.params as { name: string }).name;
    if (!(await state.deleteVariable(a.id, name))) throw new ApiError("variable_not_found", `App ${a.name} has no variable ${JSON.stringify(name.slice(0, 80))}.`);
    store.logs.append(a.id, "event", `variable ${name} deleted`);
    reply.code(204);
  });

  app.get(
    "/v1/tenants/:tenant/apps/:app/logs",
    {
      schema: {
        summary: "An app's guest output and platform events; follow=true streams them as Server-Sent Events",
        tags: ["logs"],
        security: sec,
        params: appParams,
        querystring: { type: "object", properties: { tail: { type: "integer", minimum: 0, maximum: 10000 }, after: { type: "integer", minimum: 0 }, follow: { type: "boolean" } } },
      },
    },
    async (req, reply) => {
      const { app: a } = appOf(req);
      const q = req.query as { tail?: number; after?: number; follow?: boolean };
      // In a cluster, lines come from every node (`after` is a node's own sequence: this node's lines only).
      const all = q.after === undefined ? ctx.cluster?.logs : undefined;
      const backlog: { seq: number }[] = all ? await all.tail(a.id, q.tail ?? 100) : q.after !== undefined ? store.logs.read(a.id, { afterSeq: q.after }) : store.logs.read(a.id, { tail: q.tail ?? 100 });
      if (!q.follow) return { logs: backlog };
      const subscribe = all
        ? (fn: (entries: { seq: number }[]) => void) => all.follow(a.id, fn)
        : (fn: (entries: { seq: number }[]) => void) => store.logs.subscribe((entries) => fn(entries.filter((e) => e.appId === a.id)));
      return followLogs(req, reply, subscribe, backlog);
    },
  );

  // ---- instances ----
  app.get(
    "/v1/tenants/:tenant/instances",
    { schema: { summary: "Live instances (warm reactors, running commands, services)", tags: ["instances"], security: sec, params: tenantParams, querystring: { type: "object", properties: { app: { type: "string" } } } } },
    async (req) => {
      const t = tenantOf(req);
      const appName = (req.query as { app?: string }).app;
      const list = manager.instances(t.id).filter((i) => !appName || i.appName === appName);
      return { instances: list.map((i) => ({ ...i, startedAt: new Date(i.startedAt).toISOString(), lastUsedAt: new Date(i.lastUsedAt).toISOString() })) };
    },
  );

  app.delete(
    "/v1/tenants/:tenant/instances/:instance",
    { schema: { summary: "Stop an instance (a busy one stops after its request)", tags: ["instances"], security: sec, params: { type: "object", required: ["tenant", "instance"], properties: { tenant: { type: "string" }, instance: { type: "string" } } } } },
    async (req, reply) => {
      const t = tenantOf(req);
      const id = (req.params as { instance: string }).instance;
      if (!(await manager.stopInstance(t.id, id))) throw new ApiError("instance_not_found", `No stoppable instance ${id} in tenant ${t.name}.`);
      reply.code(202);
      return { stopping: id };
    },
  );

  // ---- usage and stats ----
  app.get("/v1/tenants/:tenant/usage", { schema: { summary: "Usage per day and live resource use against quotas", tags: ["usage"], security: sec, params: tenantParams } }, async (req) => {
    const t = tenantOf(req);
    return { tenant: t.name, live: manager.tenantUsage(t.id), days: store.usage.list(t.id) };
  });

  app.get("/v1/tenants/:tenant/stats", { schema: { summary: "Per-second request rate and latency of the last minutes (for the dashboard)", tags: ["usage"], security: sec, params: tenantParams } }, async (req) => {
    const t = tenantOf(req);
    return { tenant: t.name, series: ctx.stats.series(t.id), apps: ctx.stats.appTotals(t.id) };
  });
}

function domainJson(d: DomainView) {
  return {
    host: d.host,
    status: d.status,
    method: d.method,
    ...(d.challenge ? { challenge: d.challenge } : {}),
    createdAt: new Date(d.createdAt).toISOString(),
    verifiedAt: d.verifiedAt !== null ? new Date(d.verifiedAt).toISOString() : null,
  };
}

/** In a cluster an app is running when a node runs its current revision, wherever that is. */
function clusterStatus(cluster: NonNullable<ApiContext["cluster"]>, a: AppRecord): string {
  const reps = cluster.replicasOf(a.id).filter((r) => r.revision === a.revision);
  if (reps.some((r) => r.state === "ready")) return "running";
  if (reps.some((r) => r.state === "starting")) return "starting";
  if (reps.length > 0) return "failed";
  return cluster.placementOf(a.id)?.short ? "unplaced" : "starting";
}

/** Where the app runs: one entry per node it is placed on. */
function clusterView(cluster: NonNullable<ApiContext["cluster"]>, a: AppRecord) {
  const p = cluster.placementOf(a.id);
  return {
    replicas: cluster.replicasOf(a.id).map((r) => ({ node: r.node, state: r.state, revision: r.revision, ...(r.message ? { message: r.message } : {}) })),
    placement: { wanted: p?.wanted ?? a.config.replicas ?? 1, ...(p?.short ? { short: p.short } : {}) },
  };
}

function validateImageConfig(config: unknown): ImageConfig {
  if (typeof config !== "object" || config === null || Array.isArray(config)) throw new ApiError("invalid_config", "config must be an object");
  const allowed = Object.keys(imageConfigSchema.properties);
  for (const k of Object.keys(config)) if (!allowed.includes(k)) throw new ApiError("invalid_config", `config.${k} is not a known field (allowed: ${allowed.join(", ")})`);
  const c = config as ImageConfig;
  if (c.limits === undefined) return c;
  // Stored as the one limits type (the store reads it back as such), never as the request wrote it.
  try {
    return { ...c, limits: parseLimits(c.limits) };
  } catch (err) {
    if (err instanceof LimitOptionError) throw new ApiError("invalid_config", `config.limits.${err.option} ${err.detail}`);
    throw err;
  }
}

async function followLogs(req: FastifyRequest, reply: FastifyReply, subscribe: (fn: (entries: { seq: number }[]) => void) => () => void, backlog: { seq: number }[]) {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive", "x-accel-buffering": "no" });
  res.write(": following\n\n"); // sends the headers now, so clients see the stream open
  // In a cluster an entry names its node, whose own sequence numbers it carries.
  const send = (e: { seq: number; node?: string }) => res.write(`id: ${e.node ? `${e.node}-${e.seq}` : e.seq}\ndata: ${JSON.stringify(e)}\n\n`);
  backlog.forEach(send);
  const off = subscribe((entries) => entries.forEach(send));
  const ping = setInterval(() => res.write(": keep-alive\n\n"), 15_000);
  const stop = () => {
    clearInterval(ping);
    off();
  };
  req.raw.on("close", stop);
  res.on("close", stop);
}
