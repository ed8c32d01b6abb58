// Another tenant's app ("rival"), the target the hostile cart reaches for:
// it keeps secrets in its own KV store and in a store shared in its tenant,
// named "vault".
//   POST / "put KEY VALUE"   stores a secret
//   GET  /                   how many secrets, and a digest of them (to see they are untouched)
#include "uniwasm_kv.h"
#include "wagi.h"

static unsigned long long digest = 1469598103934665603ull;
static int entries;

static void fold(const char *key, size_t len, void *ctx) {
  char k[128], v[512];
  (void)ctx;
  if (len >= sizeof k) return;
  memcpy(k, key, len);
  k[len] = 0;
  kv_get_str(*(uniwasm_kv_store *)ctx, k, v, sizeof v);
  for (const char *s = k; *s; s++) digest = (digest ^ (unsigned char)*s) * 1099511628211ull;
  for (const char *s = v; *s; s++) digest = (digest ^ (unsigned char)*s) * 1099511628211ull;
  entries++;
}

int main(void) {
  char *body = read_body(0);
  uniwasm_kv_store own = UNIWASM_KV_DEFAULT, shared;
  if (uniwasm_kv_open("vault", 5, &shared)) return respond(500, 0), printf("no vault store\n"), 0;
  char key[64], value[256];
  if (!strcmp(env_or("REQUEST_METHOD", "GET"), "POST")) {
    if (sscanf(body, "put %63s %255s", key, value) != 2) return respond(400, 0), printf("expected: put KEY VALUE\n"), 0;
    kv_set_str(own, key, value);
    kv_set_str(shared, key, value);
  }
  kv_each(own, "", fold, &own);
  kv_each(shared, "", fold, &shared);
  respond(200, 0);
  printf("vault: %d entries, digest %016llx\n", entries, digest);
  return 0;
}
