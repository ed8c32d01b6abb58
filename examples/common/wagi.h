/*
 * Small helpers shared by the examples' guests: WAGI handlers (CGI over WASI:
 * request metadata in the environment, the body on stdin, a CGI response on
 * stdout) that use uniwasm's host extensions through guest/c.
 *
 * Header-only: every function is static, so a guest imports only the host
 * functions it really calls, and its manifest grants only those.
 * Include the extension headers a guest uses (uniwasm_kv.h, ...) before this
 * one: the helpers for an extension exist only when its header was included.
 * Build: clang --target=wasm32-wasi -I guest/c -I examples/common ...
 */
#ifndef EXAMPLES_WAGI_H
#define EXAMPLES_WAGI_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uniwasm.h"

/* The request body, NUL-terminated (*len_out gets its length). */
static inline char *read_body(size_t *len_out) {
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap + 1);
  for (;;) {
    if (len == cap) {
      cap *= 2;
      buf = realloc(buf, cap + 1);
    }
    size_t n = fread(buf + len, 1, cap - len, stdin);
    if (n == 0) break;
    len += n;
  }
  buf[len] = 0;
  if (len_out) *len_out = len;
  return buf;
}

static inline const char *env_or(const char *name, const char *fallback) {
  const char *v = getenv(name);
  return v ? v : fallback;
}

/* Starts a response: a status line and a text body follows. */
static inline void respond(int status, const char *content_type) {
  if (status != 200) printf("Status: %d\n", status);
  printf("Content-Type: %s\n\n", content_type ? content_type : "text/plain");
}

/* The caller when this request is a service call (set by the node, never by a client). */
static inline const char *service_caller(void) { return getenv("X_UNIWASM_CALLER"); }

/* The name of a WASI errno, for people reading a response. */
static inline const char *errno_name(int e) {
  switch (e) {
    case 0: return "ok";
    case UNIWASM_EACCES: return "EACCES";
    case UNIWASM_EBADF: return "EBADF";
    case UNIWASM_EDQUOT: return "EDQUOT";
    case UNIWASM_EFAULT: return "EFAULT";
    case UNIWASM_EFBIG: return "EFBIG";
    case UNIWASM_EHOSTUNREACH: return "EHOSTUNREACH";
    case UNIWASM_EINVAL: return "EINVAL";
    case UNIWASM_ELOOP: return "ELOOP";
    case UNIWASM_ENAMETOOLONG: return "ENAMETOOLONG";
    case UNIWASM_ENOENT: return "ENOENT";
    case UNIWASM_ENOTCAPABLE: return "ENOTCAPABLE";
    case 63: return "EPERM";
    case 54: return "ENOTDIR";
    case 31: return "EISDIR";
    case 69: return "EROFS";
    default: return "errno";
  }
}

#ifdef UNIWASM_LOG_H
/* One printf-style line into the app's log (uniwasm:log). */
static inline void log_line(int level, const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n > (int)sizeof line - 1) n = sizeof line - 1;
  uniwasm_log_write(level, line, (size_t)n);
}
#endif

#ifdef UNIWASM_KV_H
/* A value as a NUL-terminated string in buf (cut to cap-1 bytes); returns the errno. */
static inline uniwasm_errno kv_get_str(uniwasm_kv_store store, const char *key, char *buf, size_t cap) {
  size_t len = 0;
  uniwasm_errno e = uniwasm_kv_get(store, key, strlen(key), buf, cap - 1, &len);
  if (e == 0) buf[len] = 0;
  else buf[0] = 0;
  return e;
}

static inline uniwasm_errno kv_set_str(uniwasm_kv_store store, const char *key, const char *value) {
  return uniwasm_kv_set(store, key, strlen(key), value, strlen(value));
}

/*
 * Calls fn(key, key_len, ctx) for every key starting with prefix, in byte
 * order (uniwasm:kv list pages through them with a cursor). Returns the errno.
 */
static inline uniwasm_errno kv_each(uniwasm_kv_store store, const char *prefix, void (*fn)(const char *, size_t, void *), void *ctx) {
  char buf[2048];
  uint32_t cursor = 0;
  do {
    size_t used = 0;
    uint32_t next = 0;
    uniwasm_errno e = uniwasm_kv_list(store, prefix, strlen(prefix), cursor, buf, sizeof buf, &used, &next);
    if (e) return e;
    for (size_t at = 0; at + 4 <= used;) {
      uint32_t n;
      memcpy(&n, buf + at, 4);
      fn(buf + at + 4, n, ctx);
      at += 4 + n;
    }
    cursor = next;
  } while (cursor != 0);
  return 0;
}
#endif

#ifdef UNIWASM_SERVICE_H
/*
 * Calls another app of this tenant with `input` as its request body; its
 * answer goes to out (NUL-terminated, cut to cap-1 bytes) and its HTTP status
 * to *status. Returns the errno of the call itself (EACCES: not granted).
 */
static inline uniwasm_errno call_service(const char *app, const char *input, uint32_t *status, char *out, size_t cap) {
  uniwasm_service_response r;
  *status = 0;
  out[0] = 0;
  uniwasm_errno e = uniwasm_service_call(app, strlen(app), input, strlen(input), status, &r);
  if (e) return e;
  size_t len = 0, got = 0;
  while (len < cap - 1 && uniwasm_service_response_read(r, out + len, cap - 1 - len, &got) == 0 && got > 0) len += got;
  out[len] = 0;
  uniwasm_service_response_close(r);
  return 0;
}
#endif

#endif
