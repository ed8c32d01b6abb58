/* {{name}}: a reactor HTTP handler (the uniwasm reactor ABI, docs/abi-reactor.md).
 * One warm instance serves many requests: _initialize runs once, then the
 * node calls uniwasm_http_handle for each request, so state such as `served`
 * survives between requests. The request arrives in memory as
 *   u32 meta_len | meta_len bytes of NAME=VALUE\0 CGI variables | the body
 * and the response is written to stdout in CGI form (headers, empty line,
 * body), flushed before returning 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned served; /* lives as long as the instance */

__attribute__((export_name("uniwasm_alloc"))) void *uniwasm_alloc(int size) { return malloc(size); }
__attribute__((export_name("uniwasm_free"))) void uniwasm_free(void *p) { free(p); }

/* The value of NAME in the request's NAME=VALUE\0 block, or "". */
static const char *meta_get(const char *meta, unsigned len, const char *name) {
  size_t n = strlen(name);
  for (const char *s = meta; s < meta + len; s += strlen(s) + 1)
    if (!strncmp(s, name, n) && s[n] == '=') return s + n + 1;
  return "";
}

static void handle(const char *method, const char *path, const unsigned char *body, size_t body_len) {
  served++;
  if (!strcmp(path, "/echo")) {
    printf("Content-Type: application/octet-stream\n\n");
    fwrite(body, 1, body_len, stdout);
    return;
  }
  printf("Content-Type: text/plain\n\n");
  printf("Hello from {{name}}, answering %s %s (request %u of this warm instance).\n", method, path, served);
}

__attribute__((export_name("uniwasm_http_handle"))) int uniwasm_http_handle(unsigned char *req, int len) {
  unsigned meta_len = req[0] | req[1] << 8 | req[2] << 16 | (unsigned)req[3] << 24;
  const char *meta = (const char *)req + 4;
  handle(meta_get(meta, meta_len, "REQUEST_METHOD"), meta_get(meta, meta_len, "PATH_INFO"), req + 4 + meta_len, len - 4 - meta_len);
  fflush(stdout);
  return 0;
}
