import type { FastifyRequest } from "fastify";
import type { ControlReads, TenantRecord, TokenRecord } from "../store/index.js";
import { ApiError } from "./errors.js";

/** Who is calling: an admin token, or a token bound to one tenant. */
export type Principal = { scope: "admin"; token: TokenRecord } | { scope: "tenant"; token: TokenRecord; tenantId: string };

declare module "fastify" {
  interface FastifyRequest {
    principal?: Principal;
  }
}

/** Reads `Authorization: Bearer <token>` and resolves it; throws `unauthorized`. */
export function authenticate(store: ControlReads, req: FastifyRequest): Principal {
  const header = req.headers.authorization;
  const m = typeof header === "string" ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  if (!m) throw new ApiError("unauthorized");
  const token = store.tokens.verify(m[1]!);
  if (!token) throw new ApiError("unauthorized", "Unknown or revoked API token.");
  // last_used_at is advisory; write it at most once a minute per token.
  if (!token.lastUsedAt || Date.now() - token.lastUsedAt > 60_000) store.tokens.touch(token.id);
  return token.scope === "admin" ? { scope: "admin", token } : { scope: "tenant", token, tenantId: token.tenantId! };
}

export function requireAdmin(p: Principal): void {
  if (p.scope !== "admin") throw new ApiError("forbidden", "This route needs an admin token.");
}

/**
 * Resolves the `:tenant` of a path for this principal. Another tenant's name
 * answers exactly like a tenant that does not exist, so a token learns
 * nothing about other tenants.
 */
export function tenantFor(store: ControlReads, p: Principal, idOrName: string): TenantRecord {
  const t = store.tenants.find(idOrName);
  if (!t || (p.scope === "tenant" && t.id !== p.tenantId)) {
    throw new ApiError("tenant_not_found", `No tenant ${JSON.stringify(idOrName)}.`);
  }
  return t;
}
