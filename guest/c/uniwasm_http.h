/*
 * uniwasm:http — outbound HTTP, to the destinations the app lists in
 * allowed_outbound_hosts only (Spin's form: "https://api.example.com", and
 * "*" as a host label or port). Loopback, private and
 * link-local addresses are refused unless listed literally; redirects are
 * followed by the host and checked again; bodies are capped; the exchange
 * has a timeout. Grant: "uniwasm:http".
 *
 * The response is buffered by the host: read it in chunks, then close it.
 */
#ifndef UNIWASM_HTTP_H
#define UNIWASM_HTTP_H

#include "uniwasm.h"

typedef uint32_t uniwasm_http_response;

/*
 * headers: "Name: value" lines separated by "\n" (may be empty).
 * On success *status_out is the HTTP status and *response_out a response.
 * Errors: EACCES (destination not allowed), EINVAL (bad method, URL or
 * header), EFBIG (a body over its cap), ETIMEDOUT, ECONNREFUSED,
 * EHOSTUNREACH (no such host), ELOOP (too many redirects), EMFILE (8 open).
 */
UNIWASM_IMPORT("uniwasm:http", "send")
uniwasm_errno uniwasm_http_send(const char *method, size_t method_len, const char *url, size_t url_len, const char *headers, size_t headers_len,
                                const void *body, size_t body_len, uint32_t *status_out, uniwasm_http_response *response_out);

/* The response headers as "name: value\n" lines; ENOBUFS when *len_out > buf_cap. */
UNIWASM_IMPORT("uniwasm:http", "response_headers")
uniwasm_errno uniwasm_http_response_headers(uniwasm_http_response response, char *buf, size_t buf_cap, size_t *len_out);

/* The next chunk of the body; *len_out = 0 at the end. */
UNIWASM_IMPORT("uniwasm:http", "response_read")
uniwasm_errno uniwasm_http_response_read(uniwasm_http_response response, void *buf, size_t buf_cap, size_t *len_out);

UNIWASM_IMPORT("uniwasm:http", "response_close")
uniwasm_errno uniwasm_http_response_close(uniwasm_http_response response);

#endif
