/**
 * Key-value data of the uniwasm:kv extension, in SQLite: the node's database
 * (migration 5: rows die with their tenant, and an app's own store with the
 * app), or a standalone file / `:memory:` database for `uniwasm run`/`call`.
 *
 * A store is `app:<app id>` (one app's own) or `shared:<name>` (the tenant's
 * store of that name). Each tenant's total bytes (keys + values) are kept
 * by triggers in kv_usage, so a quota check is one row read.
 */
import { Errno } from "../kernel/abi.js";
import { WasiError } from "../kernel/errors.js";
import { openDatabase, type Db } from "./database.js";
import type { Migration } from "./migrations.js";
import { kvSchema } from "./kv-schema.js";

export interface KvQuotas {
  /** Longest key, bytes. */
  maxKeyBytes: number;
  /** Largest value, bytes. */
  maxValueBytes: number;
  /** Keys plus values over all of a tenant's stores, bytes. */
  maxTotalBytes: number;
}

export const DEFAULT_KV_QUOTAS: Readonly<KvQuotas> = Object.freeze({ maxKeyBytes: 1024, maxValueBytes: 1024 * 1024, maxTotalBytes: 64 * 1024 * 1024 });

/** A standalone KV database (the command line's `--kv FILE`). */
export const STANDALONE_KV_MIGRATIONS: readonly Migration[] = [{ version: 1, name: "uniwasm:kv data", sql: kvSchema(false) }];

const buf = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/** The smallest key greater than every key starting with `prefix` (undefined: none, all 0xff). */
function prefixEnd(prefix: Uint8Array): Buffer | undefined {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return undefined;
}

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

type Awaitable<T> = T | Promise<T>;

/**
 * The operations behind uniwasm:kv's provider: this SQLite store, or (in a
 * cluster) a JetStream KV bucket, whose answers come as promises (fine for
 * guests in executors, which wait for their provider by parking).
 */
export interface KvBackend {
  get(tenant: string, store: string, key: Uint8Array): Awaitable<Uint8Array | null>;
  set(tenant: string, store: string, appId: string | null, key: Uint8Array, value: Uint8Array, quotas: KvQuotas): Awaitable<void>;
  delete(tenant: string, store: string, key: Uint8Array): Awaitable<void>;
  list(tenant: string, store: string, prefix: Uint8Array, offset: number, maxBytes: number): Awaitable<{ keys: Uint8Array[]; next: number; firstSize?: number }>;
  increment(tenant: string, store: string, appId: string | null, key: Uint8Array, delta: bigint, quotas: KvQuotas): Awaitable<bigint>;
  compareAndSet(tenant: string, store: string, appId: string | null, key: Uint8Array, expected: Uint8Array | null, value: Uint8Array, quotas: KvQuotas): Awaitable<boolean>;
}

export class KvStore implements KvBackend {
  private readonly q;

  constructor(readonly db: Db) {
    this.q = {
      get: db.prepare("SELECT value FROM kv WHERE tenant_id = ? AND store = ? AND key = ?").pluck(),
      put: db.prepare("INSERT INTO kv (tenant_id, store, app_id, key, value) VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant_id, store, key) DO UPDATE SET value = excluded.value"),
      del: db.prepare("DELETE FROM kv WHERE tenant_id = ? AND store = ? AND key = ?"),
      usage: db.prepare("SELECT bytes FROM kv_usage WHERE tenant_id = ?").pluck(),
      range: db.prepare("SELECT key FROM kv WHERE tenant_id = ? AND store = ? AND key >= ? AND key < ? ORDER BY key LIMIT ? OFFSET ?").pluck(),
      from: db.prepare("SELECT key FROM kv WHERE tenant_id = ? AND store = ? AND key >= ? ORDER BY key LIMIT ? OFFSET ?").pluck(),
    };
  }

  /** Opens a standalone database (a file, or ":memory:"). */
  static open(path: string): KvStore {
    return new KvStore(openDatabase(path, STANDALONE_KV_MIGRATIONS));
  }

  get(tenant: string, store: string, key: Uint8Array): Uint8Array | null {
    const v = this.q.get.get(tenant, store, buf(key)) as Buffer | undefined;
    return v === undefined ? null : new Uint8Array(v);
  }

  /** The tenant's bytes in use (keys + values). */
  usage(tenant: string): number {
    return (this.q.usage.get(tenant) as number | undefined) ?? 0;
  }

  private checkWrite(tenant: string, store: string, key: Uint8Array, value: Uint8Array, quotas: KvQuotas): void {
    if (key.length > quotas.maxKeyBytes) throw new WasiError(Errno.NAMETOOLONG, `the key is ${key.length} bytes; the tenant's kv quota allows ${quotas.maxKeyBytes}`);
    if (value.length > quotas.maxValueBytes) throw new WasiError(Errno.FBIG, `the value is ${value.length} bytes; the tenant's kv quota allows ${quotas.maxValueBytes}`);
    const old = this.q.get.get(tenant, store, buf(key)) as Buffer | undefined;
    const grows = value.length - (old ? old.length : -key.length);
    const used = this.usage(tenant);
    if (grows > 0 && used + grows > quotas.maxTotalBytes) {
      throw new WasiError(Errno.DQUOT, `the tenant's kv data would be ${used + grows} bytes; its quota is ${quotas.maxTotalBytes} (delete keys or raise kvMaxTotalBytes)`);
    }
  }

  set(tenant: string, store: string, appId: string | null, key: Uint8Array, value: Uint8Array, quotas: KvQuotas): void {
    this.db.transaction(() => {
      this.checkWrite(tenant, store, key, value, quotas);
      this.q.put.run(tenant, store, appId, buf(key), buf(value));
    })();
  }

  delete(tenant: string, store: string, key: Uint8Array): void {
    this.q.del.run(tenant, store, buf(key));
  }

  /**
   * Keys with `prefix` in byte order, from position `offset`, as many as fit
   * in `maxBytes` when each is encoded as 4 + its length. `next` is the
   * offset to continue from, 0 when there are no more; `firstSize` the
   * encoded size of the next key when not even it fits.
   */
  list(tenant: string, store: string, prefix: Uint8Array, offset: number, maxBytes: number): { keys: Uint8Array[]; next: number; firstSize?: number } {
    const page = 256;
    const keys: Uint8Array[] = [];
    let used = 0;
    const end = prefixEnd(prefix);
    for (let at = offset; ; at += page) {
      const rows = (end ? this.q.range.all(tenant, store, buf(prefix), end, page, at) : this.q.from.all(tenant, store, buf(prefix), page, at)) as Buffer[];
      for (const k of rows) {
        if (used + 4 + k.length > maxBytes) {
          return keys.length === 0 ? { keys, next: offset, firstSize: 4 + k.length } : { keys, next: offset + keys.length };
        }
        keys.push(new Uint8Array(k));
        used += 4 + k.length;
      }
      if (rows.length < page) return { keys, next: 0 };
    }
  }

  /** Adds `delta` to the decimal integer at the key (absent = 0), atomically; returns the new value. */
  increment(tenant: string, store: string, appId: string | null, key: Uint8Array, delta: bigint, quotas: KvQuotas): bigint {
    return this.db.transaction((): bigint => {
      const old = this.q.get.get(tenant, store, buf(key)) as Buffer | undefined;
      let current = 0n;
      if (old) {
        const text = old.toString("latin1");
        if (!/^-?\d{1,19}$/.test(text)) throw new WasiError(Errno.INVAL, "the value is not a decimal integer");
        current = BigInt(text);
      }
      const next = current + delta;
      if (next < I64_MIN || next > I64_MAX) throw new WasiError(Errno.OVERFLOW, "the sum does not fit in a signed 64-bit integer");
      const value = Buffer.from(next.toString(), "latin1");
      this.checkWrite(tenant, store, key, value, quotas);
      this.q.put.run(tenant, store, appId, buf(key), value);
      return next;
    })();
  }

  /** Sets the value when the current one equals `expected` (null: absent); false when it did not. */
  compareAndSet(tenant: string, store: string, appId: string | null, key: Uint8Array, expected: Uint8Array | null, value: Uint8Array, quotas: KvQuotas): boolean {
    return this.db.transaction((): boolean => {
      const old = this.q.get.get(tenant, store, buf(key)) as Buffer | undefined;
      if (expected === null ? old !== undefined : old === undefined || !old.equals(buf(expected))) return false;
      this.checkWrite(tenant, store, key, value, quotas);
      this.q.put.run(tenant, store, appId, buf(key), buf(value));
      return true;
    })();
  }

  close(): void {
    this.db.close();
  }
}
