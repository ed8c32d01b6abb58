/*
 * uniwasm:log — structured log lines into the app's logs (the node's
 * `uniwasm logs APP`; stderr as "[level] line" on the command line).
 * Grant: "uniwasm:log".
 *
 * A line is UTF-8 (invalid bytes become U+FFFD); control characters are
 * escaped, so one call is always one line; beyond 4096 bytes it is cut.
 * Flood bound per instance: 1000 lines at once, then 100 lines/s; a line
 * beyond it is dropped and the call returns UNIWASM_EDQUOT.
 */
#ifndef UNIWASM_LOG_H
#define UNIWASM_LOG_H

#include "uniwasm.h"

#define UNIWASM_LOG_DEBUG 0
#define UNIWASM_LOG_INFO 1
#define UNIWASM_LOG_WARN 2
#define UNIWASM_LOG_ERROR 3

/* Errors: EINVAL (level not 0-3), EFAULT, EDQUOT (dropped by the flood bound). */
UNIWASM_IMPORT("uniwasm:log", "write")
uniwasm_errno uniwasm_log_write(int32_t level, const char *msg, size_t msg_len);

#endif
