/*
 * uniwasm host extensions: what every extension header shares.
 *
 * Extensions beyond WASI are imported from their own modules ("uniwasm:kv",
 * "uniwasm:log", ...) and linked only when the host grants them
 * (capabilities.extensions in uniwasm.toml, or --ext on the command line).
 * An import that is not granted still links, to a stub that returns
 * UNIWASM_ENOTCAPABLE; under --strict the module is refused instead.
 *
 * Every function with a status returns 0 (UNIWASM_ESUCCESS) or an errno with
 * WASI's numbering (the same values as __WASI_ERRNO_* in <wasi/api.h>).
 * A pointer or length outside memory is always UNIWASM_EFAULT, never a crash
 * of the host. Variable-size results follow one pattern: *len_out receives
 * the size, and when the buffer is smaller the call returns UNIWASM_ENOBUFS
 * and writes nothing, so the caller can grow its buffer and ask again.
 *
 * The ABI of each extension: docs/extensions.md.
 */
#ifndef UNIWASM_H
#define UNIWASM_H

#include <stddef.h>
#include <stdint.h>

typedef int32_t uniwasm_errno;

#define UNIWASM_IMPORT(module, name) __attribute__((import_module(module), import_name(name)))

#define UNIWASM_ESUCCESS 0
#define UNIWASM_E2BIG 1
#define UNIWASM_EACCES 2
#define UNIWASM_EAGAIN 6
#define UNIWASM_EBADF 8
#define UNIWASM_ECANCELED 11
#define UNIWASM_ECONNREFUSED 14
#define UNIWASM_ECONNRESET 15
#define UNIWASM_EDQUOT 19
#define UNIWASM_EFAULT 21
#define UNIWASM_EFBIG 22
#define UNIWASM_EHOSTUNREACH 23
#define UNIWASM_EILSEQ 25
#define UNIWASM_EINVAL 28
#define UNIWASM_EIO 29
#define UNIWASM_ELOOP 32
#define UNIWASM_EMFILE 33
#define UNIWASM_ENAMETOOLONG 37
#define UNIWASM_ENOBUFS 42
#define UNIWASM_ENOENT 44
#define UNIWASM_EOVERFLOW 61
#define UNIWASM_ETIMEDOUT 73
#define UNIWASM_ENOTCAPABLE 76

#endif
