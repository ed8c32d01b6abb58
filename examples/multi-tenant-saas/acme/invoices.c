// Tenant acme's customer code: totals an invoice. Lines "QTY UNIT_CENTS
// DESCRIPTION" in, the total with 20% VAT out; the invoice number comes from
// the app's own KV store.
//   POST /  "2 1250 widgets\n1 999 gadget"   ->  "invoice 7: 2 lines, net 34.99, VAT 7.00, total 41.99"
#include "uniwasm_kv.h"
#include "wagi.h"

int main(void) {
  char *body = read_body(0);
  long net = 0;
  int lines = 0;
  for (char *line = strtok(body, "\n"); line; line = strtok(0, "\n")) {
    long qty, cents;
    if (sscanf(line, "%ld %ld", &qty, &cents) != 2 || qty < 1 || qty > 100000 || cents < 0 || cents > 100000000) {
      respond(400, 0);
      printf("line %d: expected \"QTY UNIT_CENTS DESCRIPTION\"\n", lines + 1);
      return 0;
    }
    net += qty * cents;
    lines++;
  }
  if (!lines) {
    respond(400, 0);
    printf("POST invoice lines: QTY UNIT_CENTS DESCRIPTION\n");
    return 0;
  }
  long vat = (net * 20 + 50) / 100;
  int64_t number = 0;
  uniwasm_errno e = uniwasm_kv_increment(UNIWASM_KV_DEFAULT, "invoices", 8, 1, &number);
  if (e) {
    respond(503, 0);
    printf("cannot number the invoice: %s\n", errno_name(e));
    return 0;
  }
  respond(200, 0);
  printf("invoice %lld: %d lines, net %ld.%02ld, VAT %ld.%02ld, total %ld.%02ld\n", (long long)number, lines, net / 100, net % 100, vat / 100, vat % 100,
         (net + vat) / 100, (net + vat) % 100);
  return 0;
}
