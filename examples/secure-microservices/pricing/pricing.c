// The shop's pricing: quotes a list of "SKU QTY" lines with the catalogue's
// prices and one rule (three or more of a product: 10% off that line), and
// counts its quotes in its own KV store.
//   service call (or POST /) with "SKU QTY" lines   "SKU QTY UNIT LINE" lines, then "total CENTS"
#include "uniwasm_kv.h"
#include "uniwasm_service.h"
#include "wagi.h"

int main(void) {
  char *body = read_body(0);
  char out[4096];
  size_t used = 0;
  long total = 0;
  for (char *line = strtok(body, "\n"); line; line = strtok(0, "\n")) {
    char sku[32], ask[64], answer[256];
    long qty;
    if (sscanf(line, "%31s %ld", sku, &qty) != 2 || qty <= 0) continue;
    uint32_t status;
    snprintf(ask, sizeof ask, "get %s", sku);
    uniwasm_errno e = call_service("catalogue", ask, &status, answer, sizeof answer);
    if (e || status != 200) {
      respond(e ? 502 : status, 0);
      printf("catalogue: %s\n", e ? errno_name(e) : answer);
      return 0;
    }
    long price = 0;
    char *p = strchr(answer, '|');
    if (p) p = strchr(p + 1, '|');
    if (p) price = atol(p + 1);
    long line_total = price * qty;
    if (qty >= 3) line_total -= line_total / 10;
    total += line_total;
    used += snprintf(out + used, sizeof out - used, "%s %ld %ld %ld\n", sku, qty, price, line_total);
    if (used >= sizeof out) used = sizeof out - 1;
  }
  int64_t quotes = 0;
  uniwasm_kv_increment(UNIWASM_KV_DEFAULT, "quotes", 6, 1, &quotes);
  respond(200, 0);
  printf("%stotal %ld\nquote %lld\n", out, total, (long long)quotes);
  return 0;
}
