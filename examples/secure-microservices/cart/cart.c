// The shop's carts, in the app's own KV store (one key per customer and
// product: "CUSTOMER/SKU" = quantity). Adding checks the product with the
// catalogue, the one service cart may call.
//   GET  /cart/CUSTOMER              the cart: "SKU QTY" lines
//   POST /cart/CUSTOMER "add SKU N"  adds N of a product the catalogue knows
//   service call "show CUSTOMER"     the cart (any caller of the tenant granted cart)
//   service call "clear CUSTOMER"    empties it: only checkout may, and the node
//                                    names the caller (X_UNIWASM_CALLER)
#include <ctype.h>
#include "uniwasm_kv.h"
#include "uniwasm_log.h"
#include "uniwasm_service.h"
#include "wagi.h"

static int valid_name(const char *s) {
  if (!*s || strlen(s) > 32) return 0;
  for (; *s; s++)
    if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s)) return 0;
  return 1;
}

struct listing {
  size_t prefix_len;
  int lines;
  char keys[64][80]; // to delete after the listing: the list cursor is an offset
};

static void print_line(const char *key, size_t len, void *ctx) {
  struct listing *l = ctx;
  char k[80], v[32];
  if (len >= sizeof k || l->lines >= 64) return;
  memcpy(k, key, len);
  k[len] = 0;
  if (kv_get_str(UNIWASM_KV_DEFAULT, k, v, sizeof v) != 0 || atol(v) <= 0) return;
  printf("%s %s\n", k + l->prefix_len, v);
  memcpy(l->keys[l->lines++], k, len + 1);
}

static void show(const char *customer, int clear) {
  char prefix[40];
  snprintf(prefix, sizeof prefix, "%s/", customer);
  static struct listing l;
  l.prefix_len = strlen(prefix);
  respond(200, 0);
  kv_each(UNIWASM_KV_DEFAULT, prefix, print_line, &l);
  for (int i = 0; clear && i < l.lines && i < 64; i++) uniwasm_kv_delete(UNIWASM_KV_DEFAULT, l.keys[i], strlen(l.keys[i]));
}

int main(void) {
  char *body = read_body(0);
  char customer[40] = "", sku[32] = "";
  long qty = 0;
  const char *caller = service_caller();
  if (caller) {
    if (sscanf(body, "show %39s", customer) == 1 && valid_name(customer)) return show(customer, 0), 0;
    if (sscanf(body, "clear %39s", customer) == 1 && valid_name(customer)) {
      if (strcmp(caller, "checkout") != 0) {
        log_line(UNIWASM_LOG_WARN, "%s may not clear carts", caller);
        respond(403, 0);
        printf("only checkout clears carts\n");
        return 0;
      }
      return show(customer, 1), 0;
    }
    respond(400, 0);
    printf("expected: show CUSTOMER | clear CUSTOMER\n");
    return 0;
  }
  const char *path = env_or("PATH_INFO", "");
  if (*path == '/') path++;
  snprintf(customer, sizeof customer, "%s", path);
  if (!valid_name(customer)) {
    respond(404, 0);
    printf("use /cart/CUSTOMER (lower-case letters and digits)\n");
    return 0;
  }
  if (!strcmp(env_or("REQUEST_METHOD", "GET"), "GET")) return show(customer, 0), 0;
  if (sscanf(body, "add %31s %ld", sku, &qty) != 2 || qty <= 0 || qty > 100 || !valid_name(sku)) {
    respond(400, 0);
    printf("expected: add SKU N (1 to 100)\n");
    return 0;
  }
  char ask[64], answer[256];
  uint32_t status;
  snprintf(ask, sizeof ask, "get %s", sku);
  uniwasm_errno e = call_service("catalogue", ask, &status, answer, sizeof answer);
  if (e || status != 200) {
    respond(e ? 502 : status, 0);
    printf("catalogue: %s\n", e ? errno_name(e) : answer);
    return 0;
  }
  char key[80];
  int64_t now = 0;
  snprintf(key, sizeof key, "%s/%s", customer, sku);
  uniwasm_kv_increment(UNIWASM_KV_DEFAULT, key, strlen(key), qty, &now);
  log_line(UNIWASM_LOG_INFO, "%s added %ld %s", customer, qty, sku);
  show(customer, 0);
  return 0;
}
