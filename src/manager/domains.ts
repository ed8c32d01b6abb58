import { randomBytes } from "node:crypto";
import { Resolver } from "node:dns/promises";
import type { ControlReads, ControlState, DomainRecord, RouteSpec, TenantRecord } from "../store/index.js";
import { DomainTaken } from "../store/index.js";
import { ControlError } from "./refusal.js";

/**
 * Who may route which host. A tenant owns its own names, `<tenant>.<domain>`
 * and every `*.<tenant>.<domain>` (`domain` is the node's, "localhost" by
 * default), and the custom hosts it owns: assigned by an admin, or claimed and
 * proved with a DNS TXT record. Names under the node's domain are never
 * claimable (they are tenants' own), and `*` (any host) is routed by admins
 * only: a tenant can never answer for another tenant's hosts.
 */

/** Where a tenant proves control of a custom host: a TXT record at this name... */
export const CHALLENGE_LABEL = "_uniwasm-challenge";
/** ...whose value is this prefix followed by the claim's token. */
export const CHALLENGE_PREFIX = "uniwasm-verify=";

const HOST_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** A DNS host name: lower-case labels of letters, digits and inner dashes, joined by dots. */
export function isHostName(host: string): boolean {
  return host.length <= 253 && HOST_RE.test(host);
}

/** True when `host` is `<tenant>.<domain>` or under it. */
export function inTenantZone(host: string, tenantName: string, domain: string): boolean {
  const zone = `${tenantName}.${domain}`;
  return host === zone || host.endsWith(`.${zone}`);
}

/** True when `host` is the node's domain or under it (tenants' own names: never a custom domain). */
export function inNodeZone(host: string, domain: string): boolean {
  return host === domain || host.endsWith(`.${domain}`);
}

/** Whether the tenant owns `host` (not `*`, which no tenant owns). */
export function ownsHost(tenant: Pick<TenantRecord, "id" | "name">, host: string, domain: string, domains: ControlReads["domains"]): boolean {
  if (inTenantZone(host, tenant.name, domain)) return true;
  if (inNodeZone(host, domain)) return false;
  return domains.owner(host)?.tenantId === tenant.id;
}

/** Throws host_not_owned for the first route the tenant may not take (`*` only with `admin`). */
export function checkRouteHosts(routes: readonly RouteSpec[], tenant: Pick<TenantRecord, "id" | "name">, opts: { admin: boolean; domain: string; domains: ControlReads["domains"] }): void {
  for (const r of routes) {
    if (r.host === "*") {
      if (opts.admin) continue;
      throw new ControlError("host_not_owned", `Route *${r.path} answers for every host; only an admin may deploy it. Route a host of tenant ${tenant.name} instead (e.g. its own ${tenant.name}.${opts.domain} names).`);
    }
    if (!ownsHost(tenant, r.host, opts.domain, opts.domains)) {
      throw new ControlError(
        "host_not_owned",
        `Tenant ${tenant.name} does not own host ${r.host}: a tenant routes its own names (${tenant.name}.${opts.domain} and *.${tenant.name}.${opts.domain}) and custom domains it owns (an admin assigns one, or the tenant claims and verifies it: POST /v1/tenants/${tenant.name}/domains).`,
      );
    }
  }
}

/** Looks TXT records up: each record's strings, as node:dns returns them. */
export type TxtLookup = (name: string) => Promise<string[][]>;

/** TXT lookups through the system resolver, or through `servers` ("127.0.0.1:5353"). */
export function dnsTxtLookup(servers?: readonly string[]): TxtLookup {
  const resolver = new Resolver({ timeout: 3000, tries: 2 });
  if (servers && servers.length > 0) resolver.setServers([...servers]);
  return (name) => resolver.resolveTxt(name);
}

export interface DomainView extends DomainRecord {
  status: "verified" | "pending";
  /** For pending claims: the TXT record that proves control. */
  challenge?: { type: "TXT"; name: string; value: string };
}

export function domainView(d: DomainRecord): DomainView {
  const v: DomainView = { ...d, status: d.verifiedAt !== null ? "verified" : "pending" };
  if (d.verifiedAt === null) v.challenge = { type: "TXT", name: `${CHALLENGE_LABEL}.${d.host}`, value: CHALLENGE_PREFIX + d.token };
  return v;
}

/**
 * Custom domains: an admin assigns a host to a tenant (owned at once), or a
 * tenant claims one (pending, with a token) and proves control by publishing
 * `_uniwasm-challenge.<host> TXT "uniwasm-verify=<token>"`, then asks to
 * verify. A pending claim reserves nothing (several tenants may claim one
 * host; a squatter blocks nobody); a host has at most one owner, and moving it
 * between tenants takes removing it first. Removing a domain removes the
 * tenant's routes on it (`dropRoutes`).
 */
export class DomainRegistry {
  constructor(
    private readonly state: ControlState,
    private readonly domain: string,
    private readonly lookup: TxtLookup,
    /** Takes the tenant's routes on `host` out of its apps (a new revision each). */
    private readonly dropRoutes: (tenant: TenantRecord, host: string, why: string) => Promise<void>,
  ) {}

  list(tenant: TenantRecord): DomainView[] {
    return this.state.domains.list(tenant.id).map(domainView);
  }

  get(tenant: TenantRecord, host: string): DomainRecord {
    const d = this.state.domains.get(host, tenant.id);
    if (!d) throw new ControlError("domain_not_found", `Tenant ${tenant.name} has no claim on ${host}.`);
    return d;
  }

  /** An admin's assignment (owned at once), or a tenant's claim (pending until verified). */
  async claim(tenant: TenantRecord, rawHost: string, opts: { admin: boolean }): Promise<{ domain: DomainView; created: boolean }> {
    const host = this.checkClaimable(tenant, rawHost);
    const owner = this.state.domains.owner(host);
    if (owner && owner.tenantId !== tenant.id) throw new ControlError("domain_taken", `Host ${host} is owned by another tenant; an admin must remove it there first.`);
    const cur = this.state.domains.get(host, tenant.id);
    if (cur && (cur.verifiedAt !== null || !opts.admin)) return { domain: domainView(cur), created: false }; // claiming again changes nothing (the token stays)
    const now = Date.now();
    const rec: DomainRecord = opts.admin
      ? { host, tenantId: tenant.id, method: "admin", token: "", createdAt: cur?.createdAt ?? now, verifiedAt: now }
      : { host, tenantId: tenant.id, method: "dns", token: randomBytes(16).toString("base64url"), createdAt: now, verifiedAt: null };
    return { domain: domainView(await this.put(rec)), created: !cur };
  }

  /** Checks the claim's TXT record; the tenant owns the host when it holds the token. */
  async verify(tenant: TenantRecord, host: string): Promise<DomainView> {
    const d = this.get(tenant, host);
    if (d.verifiedAt !== null) return domainView(d);
    const name = `${CHALLENGE_LABEL}.${host}`;
    const expected = CHALLENGE_PREFIX + d.token;
    let found: string[];
    try {
      found = (await this.lookup(name)).map((chunks) => chunks.join(""));
    } catch (err) {
      const code = (err as { code?: string }).code ?? "";
      found = [];
      if (code !== "ENOTFOUND" && code !== "ENODATA") {
        throw new ControlError("domain_not_verified", `Looking up TXT ${name} failed (${code || (err as Error).message}); try again later.`);
      }
    }
    if (!found.includes(expected)) {
      const seen = found.length > 0 ? `found ${found.map((v) => JSON.stringify(v)).join(", ")}` : "found no TXT record";
      throw new ControlError("domain_not_verified", `To prove control of ${host}, publish TXT ${name} "${expected}" (${seen}), then verify again.`);
    }
    return domainView(await this.put({ ...d, verifiedAt: Date.now() }));
  }

  /** Drops the claim; when the tenant owned the host, its routes on it go too. */
  async remove(tenant: TenantRecord, host: string): Promise<void> {
    const d = this.get(tenant, host);
    if (d.verifiedAt !== null) await this.dropRoutes(tenant, host, `domain ${host} was removed from tenant ${tenant.name}`);
    await this.state.deleteDomain(host, tenant.id);
  }

  private async put(rec: DomainRecord): Promise<DomainRecord> {
    try {
      return await this.state.putDomain(rec);
    } catch (err) {
      if (err instanceof DomainTaken) throw new ControlError("domain_taken", `Host ${rec.host} is owned by another tenant; an admin must remove it there first.`);
      throw err;
    }
  }

  private checkClaimable(tenant: TenantRecord, raw: string): string {
    const host = raw.toLowerCase().replace(/\.$/, "");
    if (!isHostName(host) || !host.includes(".")) {
      throw new ControlError("bad_request", `${JSON.stringify(raw)} is not a host name (letters, digits, dashes and dots, like shop.example.com).`);
    }
    if (inNodeZone(host, this.domain)) {
      const own = inTenantZone(host, tenant.name, this.domain);
      throw new ControlError("host_not_owned", own
        ? `${host} is already tenant ${tenant.name}'s own name (every *.${tenant.name}.${this.domain} is); it needs no claim.`
        : `Names under ${this.domain} are the node's tenants' own names (${tenant.name}'s are *.${tenant.name}.${this.domain}); they cannot be claimed.`);
    }
    return host;
  }
}
