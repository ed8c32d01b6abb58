// The shop's catalogue: products from a read-only file bundled in its image
// (/data/products.txt), stock counts in the tenant's shared KV store
// "inventory" (shared with checkout, which takes stock at checkout).
//   GET /            the products, one per line: sku, price, stock, name
//   service call "get SKU"   SKU|name|price_cents|stock, or 404
#include "uniwasm_kv.h"
#include "uniwasm_log.h"
#include "wagi.h"

struct product {
  char sku[32], name[64];
  long price, opening;
};
static struct product products[64];
static int count;

static void load_products(void) {
  FILE *f = fopen("/data/products.txt", "r");
  if (!f) return;
  char line[256];
  while (count < 64 && fgets(line, sizeof line, f)) {
    if (line[0] == '#' || line[0] == '\n') continue;
    struct product *p = &products[count];
    if (sscanf(line, "%31[^|]|%63[^|]|%ld|%ld", p->sku, p->name, &p->price, &p->opening) == 4) count++;
  }
  fclose(f);
}

// Current stock; the first reader puts the opening stock in (atomically: only when absent).
static long stock(uniwasm_kv_store inv, const struct product *p) {
  char key[48], value[32];
  snprintf(key, sizeof key, "stock:%s", p->sku);
  if (kv_get_str(inv, key, value, sizeof value) == UNIWASM_ENOENT) {
    snprintf(value, sizeof value, "%ld", p->opening);
    uniwasm_kv_compare_and_set(inv, key, strlen(key), "", UNIWASM_KV_ABSENT, value, strlen(value));
    kv_get_str(inv, key, value, sizeof value);
  }
  return atol(value);
}

int main(void) {
  load_products();
  uniwasm_kv_store inv;
  uniwasm_errno e = uniwasm_kv_open("inventory", 9, &inv);
  if (e) {
    respond(500, 0);
    printf("cannot open the inventory store: %s\n", errno_name(e));
    return 0;
  }
  char *body = read_body(0);
  if (service_caller()) {
    char sku[32];
    if (sscanf(body, "get %31s", sku) == 1) {
      for (int i = 0; i < count; i++)
        if (!strcmp(products[i].sku, sku)) {
          respond(200, 0);
          printf("%s|%s|%ld|%ld\n", sku, products[i].name, products[i].price, stock(inv, &products[i]));
          log_line(UNIWASM_LOG_DEBUG, "%s asked for %s", service_caller(), sku);
          return 0;
        }
      respond(404, 0);
      printf("no product %s\n", sku);
      return 0;
    }
    respond(400, 0);
    printf("expected: get SKU\n");
    return 0;
  }
  respond(200, 0);
  for (int i = 0; i < count; i++)
    printf("%-5s %6.2f  stock %3ld  %s\n", products[i].sku, products[i].price / 100.0, stock(inv, &products[i]), products[i].name);
  return 0;
}
