/**
 * `uniwasm:kv`: a key-value store per app, and named stores shared by the
 * apps of one tenant that are each granted the name. Keys and values are
 * bytes. The ABI (docs/extensions.md, guest/c/uniwasm_kv.h):
 *
 *   open(name_ptr, name_len, store_out) -> errno                     [uniwasm:kv/read]
 *   get(store, key_ptr, key_len, buf_ptr, buf_cap, len_out) -> errno  [uniwasm:kv/read]
 *   list(store, prefix_ptr, prefix_len, cursor, buf_ptr, buf_cap, used_out, next_out) -> errno [read]
 *   set(store, key_ptr, key_len, val_ptr, val_len) -> errno           [uniwasm:kv/write]
 *   delete(store, key_ptr, key_len) -> errno                          [uniwasm:kv/write]
 *   increment(store, key_ptr, key_len, delta: i64, value_out) -> errno [uniwasm:kv/write]
 *   compare_and_set(store, key_ptr, key_len, old_ptr, old_len, new_ptr, new_len) -> errno [write]
 *
 * Store 0 is the app's own store, always there; `open("default")` returns
 * it too; `open(NAME)` opens a tenant-shared store the app is granted.
 * Quotas (key size, value size, the tenant's total) are the provider's: it
 * knows the tenant; the ABI half caps what it copies out of the guest.
 */
import { Errno } from "../abi.js";
import { WasiError } from "../errors.js";
import { defineExtension } from "../extensions.js";
import { HandleTable, readBytes, readString, writeResult } from "./abi-helpers.js";

/** What the store behind uniwasm:kv does; one provider per instance, scoped to its app and tenant. */
export interface KvProvider {
  /** The id of a store: "default" is the app's own; another name a shared store the app is granted (else ExtensionDenied EACCES). */
  open(name: string): number;
  get(store: number, key: Uint8Array): Uint8Array | null;
  /** EFBIG / ENAMETOOLONG / EDQUOT for the tenant's quotas. */
  set(store: number, key: Uint8Array, value: Uint8Array): void;
  delete(store: number, key: Uint8Array): void;
  /** Keys with the prefix in byte order from position `cursor`, as many as fit in `maxBytes` encoded (4 + key length each). */
  list(store: number, prefix: Uint8Array, cursor: number, maxBytes: number): { keys: Uint8Array[]; next: number; firstSize?: number };
  /** Adds `delta` to the decimal integer stored at the key (absent = 0) and returns the new value. */
  increment(store: number, key: Uint8Array, delta: bigint): bigint;
  /** Sets the value when the current one equals `expected` (null: the key must be absent); false when it did not. */
  compareAndSet(store: number, key: Uint8Array, expected: Uint8Array | null, value: Uint8Array): boolean;
  /**
   * The largest value and key it will store, when it knows: a longer one is
   * refused (EFBIG, ENAMETOOLONG) before it is copied out of the guest, and
   * from an executor, before it crosses to the provider's thread (the
   * provider still checks what it gets).
   */
  readonly maxValueBytes?: number;
  readonly maxKeyBytes?: number;
}

/** Caps of the ABI half (what it copies from the guest); the provider's quotas are usually lower. */
export const KV_LIMITS = Object.freeze({
  maxKeyBytes: 64 * 1024,
  maxValueBytes: 64 * 1024 * 1024,
  maxStoreNameBytes: 128,
  openStores: 16,
});

interface KvState {
  stores: HandleTable<number>;
  /** The provider's id of the app's own store (store 0), once opened. */
  own: number | undefined;
}

function storeId(ctx: { state: KvState; provider: KvProvider }, handle: number): number {
  if (handle === 0) return (ctx.state.own ??= ctx.provider.open("default"));
  return ctx.state.stores.get(handle);
}

const key = (ctx: { memory: import("../memory.js").GuestMemory; provider: KvProvider }, ptr: number, len: number): Uint8Array => {
  const k = readBytes(ctx.memory, ptr, len, Math.min(KV_LIMITS.maxKeyBytes, ctx.provider.maxKeyBytes ?? Infinity), "the key", Errno.NAMETOOLONG);
  if (k.length === 0) throw new WasiError(Errno.INVAL, "a key cannot be empty");
  return k;
};

const ABSENT = 0xffffffff;

/** The longest value worth copying out of the guest: the ABI's cap, or the provider's own when lower. */
const maxValue = (p: KvProvider): number => Math.min(KV_LIMITS.maxValueBytes, p.maxValueBytes ?? Infinity);

export const kvExtension = defineExtension<KvState, KvProvider>({
  name: "uniwasm:kv",
  summary: "A key-value store per app (and stores shared by a tenant's apps), with quotas.",
  needsProvider: true,
  state: () => ({ stores: new HandleTable<number>(KV_LIMITS.openStores, "store"), own: undefined }),
  functions: {
    open: {
      params: [["name_ptr", "i32"], ["name_len", "i32"], ["store_out", "i32"]],
      result: "errno",
      capability: "uniwasm:kv/read",
      summary: "Open a store by name (\"default\": the app's own, store 0); EACCES when not granted.",
      handler: (ctx, namePtr: number, nameLen: number, out: number) => {
        const name = readString(ctx.memory, namePtr, nameLen, KV_LIMITS.maxStoreNameBytes, "the store name");
        ctx.memory.check(out, 4);
        const handle = name === "default" ? 0 : ctx.state.stores.add(ctx.provider.open(name));
        ctx.memory.setU32(out, handle);
        return Errno.SUCCESS;
      },
    },
    get: {
      params: [["store", "i32"], ["key_ptr", "i32"], ["key_len", "i32"], ["buf_ptr", "i32"], ["buf_cap", "i32"], ["len_out", "i32"]],
      result: "errno",
      capability: "uniwasm:kv/read",
      summary: "Read a value: ENOENT when absent, ENOBUFS (and *len_out) when the buffer is too small.",
      handler: (ctx, store: number, kp: number, kl: number, buf: number, cap: number, lenOut: number) => {
        const k = key(ctx, kp, kl);
        ctx.memory.check(lenOut, 4);
        const v = ctx.provider.get(storeId(ctx, store), k);
        if (v === null) throw new WasiError(Errno.NOENT, "no such key");
        return writeResult(ctx.memory, buf, cap, lenOut, v);
      },
    },
    list: {
      params: [["store", "i32"], ["prefix_ptr", "i32"], ["prefix_len", "i32"], ["cursor", "i32"], ["buf_ptr", "i32"], ["buf_cap", "i32"], ["used_out", "i32"], ["next_out", "i32"]],
      result: "errno",
      capability: "uniwasm:kv/read",
      summary: "List keys with a prefix, as (u32 length, bytes) entries; *next_out is the cursor to continue, 0 at the end.",
      handler: (ctx, store: number, pp: number, pl: number, cursor: number, buf: number, cap: number, usedOut: number, nextOut: number) => {
        const prefix = readBytes(ctx.memory, pp, pl, KV_LIMITS.maxKeyBytes, "the prefix", Errno.NAMETOOLONG);
        ctx.memory.check(buf, cap);
        ctx.memory.check(usedOut, 4);
        ctx.memory.check(nextOut, 4);
        const page = ctx.provider.list(storeId(ctx, store), prefix, cursor >>> 0, cap >>> 0);
        if (page.keys.length === 0 && page.next !== 0) {
          ctx.memory.setU32(usedOut, page.firstSize ?? 0);
          return Errno.NOBUFS; // not even the next key fits: *used_out says how much it needs
        }
        let at = buf >>> 0;
        for (const k of page.keys) {
          ctx.memory.setU32(at, k.length);
          ctx.memory.write(at + 4, k);
          at += 4 + k.length;
        }
        ctx.memory.setU32(usedOut, at - (buf >>> 0));
        ctx.memory.setU32(nextOut, page.next);
        return Errno.SUCCESS;
      },
    },
    set: {
      params: [["store", "i32"], ["key_ptr", "i32"], ["key_len", "i32"], ["val_ptr", "i32"], ["val_len", "i32"]],
      result: "errno",
      capability: "uniwasm:kv/write",
      summary: "Write a value: EFBIG over the value quota, ENAMETOOLONG over the key quota, EDQUOT over the tenant's total.",
      handler: (ctx, store: number, kp: number, kl: number, vp: number, vl: number) => {
        const k = key(ctx, kp, kl);
        ctx.provider.set(storeId(ctx, store), k, readBytes(ctx.memory, vp, vl, maxValue(ctx.provider), "the value", Errno.FBIG));
        return Errno.SUCCESS;
      },
    },
    delete: {
      params: [["store", "i32"], ["key_ptr", "i32"], ["key_len", "i32"]],
      result: "errno",
      capability: "uniwasm:kv/write",
      summary: "Delete a key (SUCCESS whether or not it existed).",
      handler: (ctx, store: number, kp: number, kl: number) => {
        ctx.provider.delete(storeId(ctx, store), key(ctx, kp, kl));
        return Errno.SUCCESS;
      },
    },
    increment: {
      params: [["store", "i32"], ["key_ptr", "i32"], ["key_len", "i32"], ["delta", "i64"], ["value_out", "i32"]],
      result: "errno",
      capability: "uniwasm:kv/write",
      summary: "Atomically add to a decimal integer value (absent = 0); EINVAL when not an integer, EOVERFLOW past i64.",
      handler: (ctx, store: number, kp: number, kl: number, delta: bigint, out: number) => {
        const k = key(ctx, kp, kl);
        ctx.memory.check(out, 8);
        const v = ctx.provider.increment(storeId(ctx, store), k, delta);
        ctx.memory.setU64(out, BigInt.asUintN(64, v));
        return Errno.SUCCESS;
      },
    },
    compare_and_set: {
      params: [["store", "i32"], ["key_ptr", "i32"], ["key_len", "i32"], ["old_ptr", "i32"], ["old_len", "i32"], ["new_ptr", "i32"], ["new_len", "i32"]],
      result: "errno",
      capability: "uniwasm:kv/write",
      summary: "Atomically replace the value when it equals old (old_len = -1: when absent); ECANCELED when it did not.",
      handler: (ctx, store: number, kp: number, kl: number, op: number, ol: number, np: number, nl: number) => {
        const k = key(ctx, kp, kl);
        const expected = ol >>> 0 === ABSENT ? null : readBytes(ctx.memory, op, ol, maxValue(ctx.provider), "the old value", Errno.FBIG);
        const value = readBytes(ctx.memory, np, nl, maxValue(ctx.provider), "the value", Errno.FBIG);
        if (!ctx.provider.compareAndSet(storeId(ctx, store), k, expected, value)) throw new WasiError(Errno.CANCELED, "the value was not the expected one");
        return Errno.SUCCESS;
      },
    },
  },
});
