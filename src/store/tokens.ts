import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Db } from "./database.js";
import { newId } from "./ids.js";
import type { TokenRecord, TokenScope } from "./types.js";

interface Row {
  id: string;
  tenant_id: string | null;
  scope: TokenScope;
  name: string;
  hash: string;
  prefix: string;
  created_at: number;
  last_used_at: number | null;
}

function fromRow(r: Row): TokenRecord {
  return { id: r.id, tenantId: r.tenant_id, scope: r.scope, name: r.name, prefix: r.prefix, createdAt: r.created_at, lastUsedAt: r.last_used_at };
}

/**
 * Secrets are 256 random bits, so a plain sha256 is a sound at-rest hash (no
 * dictionary to attack); the database never holds a usable token.
 */
export function hashToken(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

export const TOKEN_PREFIX = "uw_";

/** A new token's record, secret and hash, not yet stored. */
export function mintToken(scope: TokenScope, tenantId: string | null, name: string): { token: TokenRecord; secret: string; hash: string } {
  const secret = TOKEN_PREFIX + randomBytes(32).toString("base64url");
  const token: TokenRecord = {
    id: newId("tok"),
    tenantId: scope === "admin" ? null : tenantId,
    scope,
    name,
    prefix: secret.slice(0, 10),
    createdAt: Date.now(),
    lastUsedAt: null,
  };
  return { token, secret, hash: hashToken(secret) };
}

export class TokenRepo {
  constructor(private readonly db: Db) {}

  /** Creates a token and returns its secret: the only time the secret exists outside the caller. */
  create(scope: TokenScope, tenantId: string | null, name: string): { token: TokenRecord; secret: string } {
    const minted = mintToken(scope, tenantId, name);
    this.insert(minted.token, minted.hash);
    return { token: minted.token, secret: minted.secret };
  }

  /** Stores a minted token by its hash (the secret never reaches the database, nor a replicated log). */
  insert(token: TokenRecord, hash: string): void {
    this.db
      .prepare("INSERT INTO tokens (id, tenant_id, scope, name, hash, prefix, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
      .run(token.id, token.tenantId, token.scope, token.name, hash, token.prefix, token.createdAt);
  }

  /** Resolves a presented secret to its token, or undefined. */
  verify(secret: string): TokenRecord | undefined {
    const hash = hashToken(secret);
    const row = this.db.prepare("SELECT * FROM tokens WHERE hash = ?").get(hash) as Row | undefined;
    if (!row) return undefined;
    // The lookup is by hash already; the constant-time compare guards against index timing quirks.
    if (!timingSafeEqual(Buffer.from(row.hash, "hex"), Buffer.from(hash, "hex"))) return undefined;
    return fromRow(row);
  }

  touch(id: string, at = Date.now()): void {
    this.db.prepare("UPDATE tokens SET last_used_at = ? WHERE id = ?").run(at, id);
  }

  listForTenant(tenantId: string): TokenRecord[] {
    return (this.db.prepare("SELECT * FROM tokens WHERE tenant_id = ? ORDER BY created_at").all(tenantId) as Row[]).map(fromRow);
  }

  listAdmin(): TokenRecord[] {
    return (this.db.prepare("SELECT * FROM tokens WHERE scope = 'admin' ORDER BY created_at").all() as Row[]).map(fromRow);
  }

  get(id: string): TokenRecord | undefined {
    const row = this.db.prepare("SELECT * FROM tokens WHERE id = ?").get(id) as Row | undefined;
    return row && fromRow(row);
  }

  delete(id: string): boolean {
    return this.db.prepare("DELETE FROM tokens WHERE id = ?").run(id).changes > 0;
  }

  countAdmin(): number {
    return (this.db.prepare("SELECT count(*) AS n FROM tokens WHERE scope = 'admin'").get() as { n: number }).n;
  }
}
