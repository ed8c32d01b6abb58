/*
 * uniwasm:variables — named configuration values and secrets set per app by
 * its operator (the node's API; --var on the command line), readable only
 * for the names the app is granted (uniwasm.toml: variables = ["api_url"]).
 * Grant: "uniwasm:variables".
 */
#ifndef UNIWASM_VARIABLES_H
#define UNIWASM_VARIABLES_H

#include "uniwasm.h"

/* ENOENT: granted but not set. EACCES: not granted. ENOBUFS: *len_out > buf_cap. EINVAL: not a name ([a-z][a-z0-9_]*). */
UNIWASM_IMPORT("uniwasm:variables", "get")
uniwasm_errno uniwasm_variables_get(const char *name, size_t name_len, char *buf, size_t buf_cap, size_t *len_out);

#endif
