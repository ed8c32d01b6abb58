// The shop's checkout: reads the customer's cart, has pricing quote it,
// takes the stock from the "inventory" store it shares with the catalogue
// (atomically, rolled back when a product runs out), authorises the payment
// with a secret only it is granted (uniwasm:variables "payment_key"), clears
// the cart and keeps the order in its own KV store.
//   POST /checkout/CUSTOMER   places the order
//   GET  /checkout            the orders so far
#include <ctype.h>
#include "uniwasm_kv.h"
#include "uniwasm_log.h"
#include "uniwasm_service.h"
#include "uniwasm_variables.h"
#include "wagi.h"

static void print_order(const char *key, size_t len, void *ctx) {
  (void)ctx;
  char k[64], v[1024];
  if (len >= sizeof k) return;
  memcpy(k, key, len);
  k[len] = 0;
  if (kv_get_str(UNIWASM_KV_DEFAULT, k, v, sizeof v) == 0) printf("%s: %s\n", k, v);
}

// FNV-1a: the payment reference is a digest of the secret and the order, never the secret.
static unsigned long long fnv(const char *a, const char *b) {
  unsigned long long h = 1469598103934665603ull;
  for (const char *s = a; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  for (const char *s = b; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

int main(void) {
  read_body(0);
  const char *path = env_or("PATH_INFO", "");
  if (*path == '/') path++;
  if (!strcmp(env_or("REQUEST_METHOD", "GET"), "GET")) {
    respond(200, 0);
    kv_each(UNIWASM_KV_DEFAULT, "order:", print_order, 0);
    return 0;
  }
  char customer[40];
  snprintf(customer, sizeof customer, "%s", path);
  for (const char *c = customer; *c; c++)
    if (!islower((unsigned char)*c) && !isdigit((unsigned char)*c)) customer[0] = 0;
  if (!customer[0]) {
    respond(404, 0);
    printf("use POST /checkout/CUSTOMER\n");
    return 0;
  }

  char ask[64], cart[2048], quote[4096];
  uint32_t status;
  snprintf(ask, sizeof ask, "show %s", customer);
  uniwasm_errno e = call_service("cart", ask, &status, cart, sizeof cart);
  if (e || status != 200) return respond(502, 0), printf("cart: %s\n", e ? errno_name(e) : cart), 0;
  if (!cart[0]) return respond(400, 0), printf("the cart of %s is empty\n", customer), 0;
  e = call_service("pricing", cart, &status, quote, sizeof quote);
  if (e || status != 200) return respond(502, 0), printf("pricing: %s\n", e ? errno_name(e) : quote), 0;
  const char *t = strstr(quote, "total ");
  long total = t ? atol(t + 6) : 0;

  // Take the stock, line by line; give back what was taken when one runs out.
  uniwasm_kv_store inv;
  if ((e = uniwasm_kv_open("inventory", 9, &inv))) return respond(500, 0), printf("inventory: %s\n", errno_name(e)), 0;
  char skus[32][32];
  long qtys[32];
  int n = 0;
  char copy[2048];
  snprintf(copy, sizeof copy, "%s", cart);
  for (char *line = strtok(copy, "\n"); line && n < 32; line = strtok(0, "\n"))
    if (sscanf(line, "%31s %ld", skus[n], &qtys[n]) == 2) n++;
  for (int i = 0; i < n; i++) {
    char key[48];
    int64_t left = 0;
    snprintf(key, sizeof key, "stock:%s", skus[i]);
    uniwasm_kv_increment(inv, key, strlen(key), -qtys[i], &left);
    if (left < 0) {
      for (int j = i; j >= 0; j--) {
        snprintf(key, sizeof key, "stock:%s", skus[j]);
        uniwasm_kv_increment(inv, key, strlen(key), qtys[j], &left);
      }
      log_line(UNIWASM_LOG_WARN, "order of %s refused: %s is out of stock", customer, skus[i]);
      return respond(409, 0), printf("out of stock: %s\n", skus[i]), 0;
    }
  }

  char key_buf[128];
  size_t key_len = 0;
  if ((e = uniwasm_variables_get("payment_key", 11, key_buf, sizeof key_buf - 1, &key_len))) {
    log_line(UNIWASM_LOG_ERROR, "no payment key: %s", errno_name(e));
    return respond(503, 0), printf("payments are not configured\n"), 0;
  }
  key_buf[key_len] = 0;
  int64_t id = 0;
  uniwasm_kv_increment(UNIWASM_KV_DEFAULT, "orders", 6, 1, &id);
  char order_key[32], order[1024];
  snprintf(order_key, sizeof order_key, "order:%04lld", (long long)id);
  snprintf(order, sizeof order, "%s paid %ld.%02ld", customer, total / 100, total % 100);
  kv_set_str(UNIWASM_KV_DEFAULT, order_key, order);
  call_service("cart", (snprintf(ask, sizeof ask, "clear %s", customer), ask), &status, cart, sizeof cart);
  log_line(UNIWASM_LOG_INFO, "order %lld: %s", (long long)id, order);
  respond(200, 0);
  printf("order %lld for %s\n%spayment PAY-%016llx\n", (long long)id, customer, quote, fnv(key_buf, order_key));
  return 0;
}
