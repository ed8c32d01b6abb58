/*
 * file_times: set file access and modification times to the nanosecond, or
 * leave one untouched, for uniwasm's host filesystem (src/kernel/fs-host.ts).
 *
 * Node's fs.utimes/futimes take seconds as a double, which cannot hold a
 * nanosecond timestamp (2^53 ns is 104 days), and has no way to leave one of
 * the two times as it is. utimensat(2)/futimens(2) take a timespec per time
 * and the markers UTIME_OMIT (leave it) and UTIME_NOW (the kernel's clock).
 *
 * Each time argument is a BigInt (nanoseconds since the epoch), null (leave
 * it: UTIME_OMIT) or true (now: UTIME_NOW). A failure throws an Error whose
 * `code` is the errno name ("ENOENT", ...), as Node's own fs errors do.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CHECK(call)                                                        \
  do {                                                                     \
    if ((call) != napi_ok) {                                               \
      napi_throw_error(env, NULL, "file_times: N-API call failed: " #call); \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

static bool to_timespec(napi_env env, napi_value v, struct timespec *ts) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return false;
  if (t == napi_null || t == napi_undefined) {
    ts->tv_sec = 0;
    ts->tv_nsec = UTIME_OMIT;
    return true;
  }
  if (t == napi_boolean) {
    bool now = false;
    napi_get_value_bool(env, v, &now);
    if (!now) return false;
    ts->tv_sec = 0;
    ts->tv_nsec = UTIME_NOW;
    return true;
  }
  if (t == napi_bigint) {
    uint64_t ns = 0;
    bool lossless = false;
    if (napi_get_value_bigint_uint64(env, v, &ns, &lossless) != napi_ok || !lossless) return false;
    ts->tv_sec = (time_t)(ns / 1000000000ull);
    ts->tv_nsec = (long)(ns % 1000000000ull);
    return true;
  }
  return false;
}

static napi_value throw_errno(napi_env env, const char *call, int err) {
  const char *name = strerrorname_np(err);
  char code[32];
  if (name == NULL) {
    snprintf(code, sizeof code, "E%d", err);
    name = code;
  }
  char msg[160];
  snprintf(msg, sizeof msg, "%s, %s", name, call);
  napi_value jcode, jmsg, error;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &jcode);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &jmsg);
  napi_create_error(env, jcode, jmsg, &error);
  napi_set_named_property(env, error, "code", jcode);
  napi_throw(env, error);
  return NULL;
}

/* futimens(fd, atime, mtime) */
static napi_value js_futimens(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd = -1;
  struct timespec ts[2];
  if (argc < 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || !to_timespec(env, argv[1], &ts[0]) || !to_timespec(env, argv[2], &ts[1])) {
    napi_throw_type_error(env, NULL, "futimens(fd: number, atime: bigint | null | true, mtime: bigint | null | true)");
    return NULL;
  }
  if (futimens(fd, ts) != 0) return throw_errno(env, "futimens", errno);
  return NULL;
}

/* utimensat(path, atime, mtime, nofollow): relative to the current directory, like Node's path calls. */
static napi_value js_utimensat(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char path[4200];
  size_t len = 0;
  struct timespec ts[2];
  bool nofollow = false;
  if (argc < 4 || napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len) != napi_ok || len >= sizeof path - 1 ||
      !to_timespec(env, argv[1], &ts[0]) || !to_timespec(env, argv[2], &ts[1]) || napi_get_value_bool(env, argv[3], &nofollow) != napi_ok) {
    napi_throw_type_error(env, NULL, "utimensat(path: string, atime: bigint | null | true, mtime: bigint | null | true, nofollow: boolean)");
    return NULL;
  }
  if (utimensat(AT_FDCWD, path, ts, nofollow ? AT_SYMLINK_NOFOLLOW : 0) != 0) return throw_errno(env, "utimensat", errno);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value f;
  if (napi_create_function(env, "futimens", NAPI_AUTO_LENGTH, js_futimens, NULL, &f) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "futimens", f) != napi_ok) return NULL;
  if (napi_create_function(env, "utimensat", NAPI_AUTO_LENGTH, js_utimensat, NULL, &f) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "utimensat", f) != napi_ok) return NULL;
  return exports;
}
