/*
 * uniwasm:kv — a key-value store per app, and named stores shared by the
 * apps of one tenant that are each granted the name (uniwasm.toml:
 * key_value_stores = ["team"]). Keys and values are bytes.
 * Grants: "uniwasm:kv" (all), or "uniwasm:kv/read" (open, get, list) and
 * "uniwasm:kv/write" (set, delete, increment, compare_and_set).
 *
 * Store UNIWASM_KV_DEFAULT (0) is the app's own store, always there.
 * Quotas are per tenant: key size (ENAMETOOLONG), value size (EFBIG), and
 * the total of keys and values over all its stores (EDQUOT).
 */
#ifndef UNIWASM_KV_H
#define UNIWASM_KV_H

#include "uniwasm.h"

typedef uint32_t uniwasm_kv_store;
#define UNIWASM_KV_DEFAULT ((uniwasm_kv_store)0)
/* old_len for compare_and_set: the key must be absent. */
#define UNIWASM_KV_ABSENT ((size_t)0xffffffffu)

/* Opens a store: "default" is store 0; another name a shared store. EACCES: not granted; EMFILE: 16 open. */
UNIWASM_IMPORT("uniwasm:kv", "open")
uniwasm_errno uniwasm_kv_open(const char *name, size_t name_len, uniwasm_kv_store *store_out);

/* Reads a value. ENOENT: absent. ENOBUFS: *len_out > buf_cap (nothing written). EINVAL: empty key. */
UNIWASM_IMPORT("uniwasm:kv", "get")
uniwasm_errno uniwasm_kv_get(uniwasm_kv_store store, const void *key, size_t key_len, void *buf, size_t buf_cap, size_t *len_out);

/*
 * Lists keys starting with `prefix`, from `cursor` (0 first), as entries of
 * (uint32 length, key bytes) packed into buf. *used_out: bytes written;
 * *next_out: the cursor to pass next, 0 when the listing is complete.
 * ENOBUFS: not even the next key fits (*used_out is the size it needs).
 */
UNIWASM_IMPORT("uniwasm:kv", "list")
uniwasm_errno uniwasm_kv_list(uniwasm_kv_store store, const void *prefix, size_t prefix_len, uint32_t cursor, void *buf, size_t buf_cap, size_t *used_out, uint32_t *next_out);

/* Writes a value. ENAMETOOLONG / EFBIG / EDQUOT: the tenant's quotas. */
UNIWASM_IMPORT("uniwasm:kv", "set")
uniwasm_errno uniwasm_kv_set(uniwasm_kv_store store, const void *key, size_t key_len, const void *value, size_t value_len);

/* Deletes a key (success whether or not it existed). */
UNIWASM_IMPORT("uniwasm:kv", "delete")
uniwasm_errno uniwasm_kv_delete(uniwasm_kv_store store, const void *key, size_t key_len);

/* Atomically adds delta to the decimal integer stored at the key (absent = 0). EINVAL: not an integer; EOVERFLOW. */
UNIWASM_IMPORT("uniwasm:kv", "increment")
uniwasm_errno uniwasm_kv_increment(uniwasm_kv_store store, const void *key, size_t key_len, int64_t delta, int64_t *value_out);

/* Atomically replaces the value when it equals old (old_len UNIWASM_KV_ABSENT: when absent). ECANCELED: it did not. */
UNIWASM_IMPORT("uniwasm:kv", "compare_and_set")
uniwasm_errno uniwasm_kv_compare_and_set(uniwasm_kv_store store, const void *key, size_t key_len, const void *old_value, size_t old_len, const void *new_value, size_t new_len);

#endif
