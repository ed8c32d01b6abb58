/*
 * uniwasm:service — call another app of the same tenant by name, through
 * the node's manager (no network). The input is the callee's request body
 * (a POST to "/"); the callee answers as to an HTTP request. Each callee is
 * a grant (uniwasm.toml: allowed_services = ["billing"]); calls nest at most
 * 4 apps deep and never in a cycle. Grant: "uniwasm:service".
 */
#ifndef UNIWASM_SERVICE_H
#define UNIWASM_SERVICE_H

#include "uniwasm.h"

typedef uint32_t uniwasm_service_response;

/*
 * On success *status_out is the callee's status (a failed callee is 502,
 * one past its deadline 504, a refused call 429/503) and *response_out its
 * answer. Errors: ENOENT (no such app), EACCES (not granted, or a name of
 * another tenant), ELOOP (a cycle, or too deep), EMFILE (8 open).
 */
UNIWASM_IMPORT("uniwasm:service", "call")
uniwasm_errno uniwasm_service_call(const char *app, size_t app_len, const void *input, size_t input_len, uint32_t *status_out, uniwasm_service_response *response_out);

/* The next chunk of the answer; *len_out = 0 at the end. */
UNIWASM_IMPORT("uniwasm:service", "response_read")
uniwasm_errno uniwasm_service_response_read(uniwasm_service_response response, void *buf, size_t buf_cap, size_t *len_out);

UNIWASM_IMPORT("uniwasm:service", "response_close")
uniwasm_errno uniwasm_service_response_close(uniwasm_service_response response);

#endif
