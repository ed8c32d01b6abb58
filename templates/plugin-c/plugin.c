/* {{name}}: a plugin, a function a Node program calls in uniwasm's sandbox
 * (host.mjs shows how). It follows the reactor call ABI (src/sandbox/README.md
 * in uniwasm): bytes in as (ptr, len) in memory the host got from
 * uniwasm_alloc, bytes out as an i64 (ptr << 32) | len the host copies out and
 * hands back to uniwasm_free. The plugin sees nothing but what it is given.
 *
 * It also answers HTTP (the reactor HTTP ABI), running the same function on
 * the request body, so `uniwasm dev` can serve it to try it out. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((export_name("uniwasm_alloc"))) void *uniwasm_alloc(int size) { return malloc(size ? size : 1); }
__attribute__((export_name("uniwasm_free"))) void uniwasm_free(void *p) { free(p); }

/* The plugin's work: counts vowels and returns a small JSON document. */
static size_t count_vowels(const unsigned char *in, size_t len, char *out, size_t cap) {
  unsigned vowels = 0;
  for (size_t i = 0; i < len; i++)
    if (strchr("aeiouAEIOU", in[i]) && in[i]) vowels++;
  return (size_t)snprintf(out, cap, "{\"plugin\":\"{{name}}\",\"bytes\":%zu,\"vowels\":%u}\n", len, vowels);
}

__attribute__((export_name("count_vowels"))) uint64_t count_vowels_export(const unsigned char *in, int len) {
  char *out = malloc(128);
  size_t n = count_vowels(in, (size_t)len, out, 128);
  return (uint64_t)(uintptr_t)out << 32 | n;
}

__attribute__((export_name("uniwasm_http_handle"))) int uniwasm_http_handle(unsigned char *req, int len) {
  unsigned meta_len = req[0] | req[1] << 8 | req[2] << 16 | (unsigned)req[3] << 24;
  char out[128];
  size_t n = count_vowels(req + 4 + meta_len, (size_t)len - 4 - meta_len, out, sizeof out);
  printf("Content-Type: application/json\n\n");
  fwrite(out, 1, n, stdout);
  fflush(stdout);
  return 0;
}
