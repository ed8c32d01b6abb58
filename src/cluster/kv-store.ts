/**
 * uniwasm:kv in a cluster: the data lives in one JetStream KV bucket, so an
 * app sees the same keys whichever node runs it. Each write is optimistic on
 * the key's revision (create when absent, update on the revision read), so
 * increment and compare-and-set stay atomic across nodes, and a plain set's
 * size change is exact.
 *
 * Keys: `d.<tenant>.<store, hex>.<key, hex>` (hex keeps byte order, so a
 * sorted listing is in the key's byte order) and `u.<tenant>` for the
 * tenant's bytes in use (keys + values), updated after each write with its
 * own optimistic loop. Limits of this backend: keys of at most 1,500 bytes
 * and values of at most the servers' max_payload less 4 KiB; a listing reads
 * all of a store's keys (fine for small stores); a node that dies between a
 * write and its usage update leaves the tenant's count off by that write.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { KV, KvEntry } from "@nats-io/kv";
import { Errno } from "../kernel/abi.js";
import { WasiError } from "../kernel/errors.js";
import type { KvBackend, KvQuotas } from "../store/index.js";
import { openBucket } from "./kv.js";

export const KV_DATA_BUCKET = "uniwasm-kv";
const MAX_KEY_BYTES = 1500;
const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const TRIES = 50;

const hex = (b: Uint8Array | string): string => Buffer.from(typeof b === "string" ? Buffer.from(b) : b).toString("hex");
const bytes = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/** A refusal NATS gives when the revision moved (someone else wrote the key first). */
function isConflict(err: unknown): boolean {
  const m = (err as Error).message ?? "";
  return /wrong last sequence|key exists/i.test(m);
}

/** Guests see this, so it says what happened without NATS's own text (subjects, streams). */
function unreachable(_err: unknown): WasiError {
  return new WasiError(Errno.IO, "the cluster's key-value store cannot be reached now");
}

export class JetStreamKv implements KvBackend {
  private constructor(
    private readonly kv: KV,
    private readonly maxValueBytes: number,
  ) {}

  static async open(nc: NatsConnection, replicas: number): Promise<JetStreamKv> {
    const kv = await openBucket(nc, KV_DATA_BUCKET, { replicas });
    return new JetStreamKv(kv, Math.max(0, (nc.info?.max_payload ?? 1024 * 1024) - 4096));
  }

  private dataKey(tenant: string, store: string, key: Uint8Array): string {
    return `d.${tenant}.${hex(store)}.${hex(key)}`;
  }

  private async read(k: string): Promise<KvEntry | null> {
    try {
      const e = await this.kv.get(k);
      return e && e.operation === "PUT" ? e : null;
    } catch (err) {
      throw unreachable(err);
    }
  }

  /** Writes `value` where the key holds `cur` (null: absent); false when someone wrote it first. */
  private async writeAt(k: string, value: Uint8Array, cur: KvEntry | null): Promise<boolean> {
    try {
      // A deleted key keeps a marker: update on its revision; never seen: create.
      if (cur) await this.kv.update(k, value, cur.revision);
      else await this.kv.create(k, value);
      return true;
    } catch (err) {
      if (isConflict(err)) return false;
      throw unreachable(err);
    }
  }

  usage(tenant: string): Promise<number> {
    return this.read(`u.${tenant}`).then((e) => (e ? Number(e.string()) : 0));
  }

  private async addUsage(tenant: string, delta: number): Promise<void> {
    if (delta === 0) return;
    const k = `u.${tenant}`;
    for (let i = 0; i < TRIES; i++) {
      const cur = await this.read(k);
      const next = Math.max(0, (cur ? Number(cur.string()) : 0) + delta);
      if (await this.writeAt(k, new TextEncoder().encode(String(next)), cur)) return;
    }
  }

  private async check(tenant: string, key: Uint8Array, value: Uint8Array, old: KvEntry | null, quotas: KvQuotas): Promise<number> {
    const maxKey = Math.min(quotas.maxKeyBytes, MAX_KEY_BYTES);
    if (key.length > maxKey) throw new WasiError(Errno.NAMETOOLONG, `the key is ${key.length} bytes; ${quotas.maxKeyBytes > MAX_KEY_BYTES ? "keys in a cluster are at most" : "the tenant's kv quota allows"} ${maxKey}`);
    const maxValue = Math.min(quotas.maxValueBytes, this.maxValueBytes);
    if (value.length > maxValue) throw new WasiError(Errno.FBIG, `the value is ${value.length} bytes; ${quotas.maxValueBytes > this.maxValueBytes ? "values in a cluster are at most" : "the tenant's kv quota allows"} ${maxValue}`);
    const grows = value.length - (old ? old.length : -key.length);
    if (grows > 0) {
      const used = await this.usage(tenant);
      if (used + grows > quotas.maxTotalBytes) {
        throw new WasiError(Errno.DQUOT, `the tenant's kv data would be ${used + grows} bytes; its quota is ${quotas.maxTotalBytes} (delete keys or raise kvMaxTotalBytes)`);
      }
    }
    return grows;
  }

  async get(tenant: string, store: string, key: Uint8Array): Promise<Uint8Array | null> {
    const e = await this.read(this.dataKey(tenant, store, key));
    return e ? new Uint8Array(e.value) : null;
  }

  /**
   * One optimistic read-modify-write: `next` says what to write given the
   * current value (or stops with a result); retried when another node wrote
   * the key first.
   */
  private async update<R>(tenant: string, store: string, key: Uint8Array, quotas: KvQuotas, next: (cur: Uint8Array | null) => { write: Uint8Array; result: R } | { stop: R }): Promise<R> {
    const k = this.dataKey(tenant, store, key);
    for (let i = 0; i < TRIES; i++) {
      const cur = await this.read(k);
      const step = next(cur ? new Uint8Array(cur.value) : null);
      if ("stop" in step) return step.stop;
      const grows = await this.check(tenant, key, step.write, cur, quotas);
      if (await this.writeAt(k, step.write, cur)) {
        await this.addUsage(tenant, grows);
        return step.result;
      }
    }
    throw new WasiError(Errno.AGAIN, "the key changed too often under this write; try again");
  }

  async set(tenant: string, store: string, _appId: string | null, key: Uint8Array, value: Uint8Array, quotas: KvQuotas): Promise<void> {
    await this.update<void>(tenant, store, key, quotas, () => ({ write: value, result: undefined }));
  }

  async delete(tenant: string, store: string, key: Uint8Array): Promise<void> {
    const k = this.dataKey(tenant, store, key);
    for (let i = 0; i < TRIES; i++) {
      const cur = await this.read(k);
      if (!cur) return;
      try {
        await this.kv.delete(k, { previousSeq: cur.revision });
      } catch (err) {
        if (isConflict(err)) continue;
        throw unreachable(err);
      }
      await this.addUsage(tenant, -(key.length + cur.length));
      return;
    }
  }

  async increment(tenant: string, store: string, _appId: string | null, key: Uint8Array, delta: bigint, quotas: KvQuotas): Promise<bigint> {
    return this.update<bigint>(tenant, store, key, quotas, (cur) => {
      let current = 0n;
      if (cur) {
        const text = Buffer.from(cur).toString("latin1");
        if (!/^-?\d{1,19}$/.test(text)) throw new WasiError(Errno.INVAL, "the value is not a decimal integer");
        current = BigInt(text);
      }
      const n = current + delta;
      if (n < I64_MIN || n > I64_MAX) throw new WasiError(Errno.OVERFLOW, "the sum does not fit in a signed 64-bit integer");
      return { write: Buffer.from(n.toString(), "latin1"), result: n };
    });
  }

  async compareAndSet(tenant: string, store: string, _appId: string | null, key: Uint8Array, expected: Uint8Array | null, value: Uint8Array, quotas: KvQuotas): Promise<boolean> {
    return this.update<boolean>(tenant, store, key, quotas, (cur) => {
      const same = expected === null ? cur === null : cur !== null && bytes(cur).equals(bytes(expected));
      return same ? { write: value, result: true } : { stop: false };
    });
  }

  async list(tenant: string, store: string, prefix: Uint8Array, offset: number, maxBytes: number): Promise<{ keys: Uint8Array[]; next: number; firstSize?: number }> {
    const head = `d.${tenant}.${hex(store)}.`;
    const want = hex(prefix);
    const all: string[] = [];
    try {
      for await (const k of await this.kv.keys(`${head}>`)) if (k.startsWith(head + want)) all.push(k.slice(head.length));
    } catch (err) {
      throw unreachable(err);
    }
    all.sort(); // hex of equal bytes sorts as the bytes do
    const keys: Uint8Array[] = [];
    let used = 0;
    for (let i = offset; i < all.length; i++) {
      const k = new Uint8Array(Buffer.from(all[i]!, "hex"));
      if (used + 4 + k.length > maxBytes) return keys.length === 0 ? { keys, next: offset, firstSize: 4 + k.length } : { keys, next: offset + keys.length };
      keys.push(k);
      used += 4 + k.length;
    }
    return { keys, next: 0 };
  }

  /** Deletes every key of the matching stores (an app's own when the app goes, all of a tenant's with it), and their usage. */
  async purge(filter: { tenant: string } | { appStore: string }): Promise<number> {
    const pattern = "tenant" in filter ? `d.${filter.tenant}.>` : `d.*.${hex(filter.appStore)}.>`;
    let n = 0;
    const keys: string[] = [];
    for await (const k of await this.kv.keys(pattern)) keys.push(k);
    for (const k of keys) {
      const cur = await this.read(k);
      if (!cur) continue;
      await this.kv.purge(k).catch(() => undefined);
      const [, tenant, , keyHex] = k.split(".");
      if ("tenant" in filter) continue;
      await this.addUsage(tenant!, -(keyHex!.length / 2 + cur.length));
      n++;
    }
    if ("tenant" in filter) await this.kv.purge(`u.${filter.tenant}`).catch(() => undefined);
    return "tenant" in filter ? keys.length : n;
  }
}
