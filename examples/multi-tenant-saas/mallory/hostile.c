// Tenant mallory's "customer code": hostile. Each path is one attack on the
// platform or on the other tenants, and the answer says what it got:
//   /loop      spins forever                     -> ended at the deadline (504)
//   /memory    allocates and touches 1 MiB blocks until refused
//   /output    writes without end                -> cut at the response limit
//   /escape    paths out of its one bundled directory, and out of the sandbox
//   /kv        fills its KV store until the tenant's quota refuses
//   /outbound  HTTP to loopback, private, metadata and this node's own ports
//   /tenants   the other tenants' apps and stores, by every name it can think of
// Its manifest grants the widest outbound wildcard ("*://*:*"), a service
// grant and shared stores named after the other tenants: none of it reaches them.
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <dirent.h>
#include <wasi/api.h>
#include "uniwasm_http.h"
#include "uniwasm_kv.h"
#include "uniwasm_service.h"
#include "wagi.h"

static int attempts, refused;

static void report(const char *what, int err, const char *detail) {
  attempts++;
  if (err) refused++;
  printf("%-48s %s%s%s\n", what, err ? "refused: " : "allowed", err ? errno_name(err) : "", detail ? detail : "");
}

static void spin(void) {
  volatile unsigned long n = 0;
  for (;;) n++;
}

// Kept where the compiler cannot see them unused (it may drop a malloc that is never read).
static char *volatile blocks[4096];

static void memory_bomb(void) {
  int mib = 0;
  while (mib < 4096) {
    char *p = malloc(1 << 20);
    if (!p) break;
    memset(p, 0xAA, 1 << 20); // touch every page: real memory, not a promise
    blocks[mib++] = p;
  }
  printf("memory bomb: malloc refused after %d MiB (the instance's memory limit)\n", mib);
}

static void flood(void) {
  static char block[65536];
  memset(block, 'A', sizeof block);
  for (;;) fwrite(block, 1, sizeof block, stdout);
}

static void try_open(const char *path, int flags) {
  char what[128];
  snprintf(what, sizeof what, "open %.60s%s%s", path, strlen(path) > 60 ? "..." : "", flags & O_WRONLY ? " for writing" : "");
  int fd = open(path, flags, 0644);
  report(what, fd < 0 ? errno : 0, 0);
  if (fd >= 0) close(fd);
}

static void escape(void) {
  try_open("/data/notes.txt", O_RDONLY); // its own file: allowed
  try_open("/etc/passwd", O_RDONLY);
  try_open("/data/../etc/passwd", O_RDONLY);
  try_open("/data/../../../../etc/shadow", O_RDONLY);
  try_open("../../../../etc/passwd", O_RDONLY);
  try_open("/proc/self/environ", O_RDONLY);
  try_open("/data/evil.sh", O_WRONLY | O_CREAT);
  try_open("/data/notes.txt", O_WRONLY | O_TRUNC);
  char long_path[4200] = "/data/";
  for (int i = 0; i < 1000; i++) strcat(long_path, "../");
  strcat(long_path, "etc/passwd");
  try_open(long_path, O_RDONLY);
  __wasi_fd_t fd;
  // The raw call on the preopened descriptor (3 = /data), an absolute and a dot-dot path.
  report("path_open(3, \"../etc/passwd\")", __wasi_path_open(3, 0, "../etc/passwd", 0, __WASI_RIGHTS_FD_READ, 0, 0, &fd), 0);
  report("path_open(3, \"/etc/passwd\")", __wasi_path_open(3, 0, "/etc/passwd", 0, __WASI_RIGHTS_FD_READ, 0, 0, &fd), 0);
  report("path_open(9, \"etc/passwd\") (no such preopen)", __wasi_path_open(9, 0, "etc/passwd", 0, __WASI_RIGHTS_FD_READ, 0, 0, &fd), 0);
  DIR *d = opendir("/");
  report("opendir /", d ? 0 : errno, 0);
  if (d) closedir(d);
}

static void kv_flood(void) {
  static char value[4096];
  memset(value, 'x', sizeof value);
  char key[32];
  int i = 0;
  uniwasm_errno e = 0;
  for (; i < 100000; i++) {
    snprintf(key, sizeof key, "junk/%06d", i);
    e = uniwasm_kv_set(UNIWASM_KV_DEFAULT, key, strlen(key), value, sizeof value);
    if (e) break;
  }
  printf("kv flood: %d values of 4 KiB stored, then %s (the tenant's KV quota)\n", i, errno_name(e));
  static char big[2 << 20];
  printf("kv value of 2 MiB: %s\n", errno_name(uniwasm_kv_set(UNIWASM_KV_DEFAULT, "big", 3, big, sizeof big)));
  static char long_key[4096];
  memset(long_key, 'k', sizeof long_key);
  printf("kv key of 4 KiB: %s\n", errno_name(uniwasm_kv_set(UNIWASM_KV_DEFAULT, long_key, sizeof long_key, "v", 1)));
  // Making room is allowed: the quota counts what is stored, not what was ever written.
  for (int j = 0; j < i; j++) {
    snprintf(key, sizeof key, "junk/%06d", j);
    uniwasm_kv_delete(UNIWASM_KV_DEFAULT, key, strlen(key));
  }
  printf("kv: deleted its %d values again\n", i);
}

static void http(const char *url) {
  char what[128];
  uint32_t status = 0;
  uniwasm_http_response r;
  snprintf(what, sizeof what, "http GET %s", url);
  uniwasm_errno e = uniwasm_http_send("GET", 3, url, strlen(url), "", 0, "", 0, &status, &r);
  if (!e) uniwasm_http_response_close(r);
  char detail[32];
  snprintf(detail, sizeof detail, " (status %u)", status);
  report(what, e, e ? 0 : detail);
}

static void outbound(void) {
  char url[128];
  // This node's own API and gateway (the node tells every request its port).
  snprintf(url, sizeof url, "http://127.0.0.1:%s/v1/tenants", env_or("SERVER_PORT", "80"));
  http(url);
  http("http://localhost:7070/v1/tenants");
  http("http://[::1]:7070/");
  http("http://2130706433:7070/"); // 127.0.0.1 spelled as a number
  http("http://0x7f.1:7070/");
  http("http://169.254.169.254/latest/meta-data/iam/security-credentials/");
  http("http://[fd00:ec2::254]/latest/meta-data/"); // the IPv6 metadata address (a private ULA)
  http("http://10.0.0.1/admin");
  http("http://192.168.1.1/");
  http("http://[::ffff:127.0.0.1]:7070/");
}

static void tenants(void) {
  char answer[128];
  uint32_t status;
  const char *names[] = {"invoices", "acme/invoices", "../acme/invoices", "wordfreq", "globex/wordfreq"};
  for (int i = 0; i < 5; i++) {
    char what[96];
    snprintf(what, sizeof what, "service call %s", names[i]);
    report(what, call_service(names[i], "1 100 stolen", &status, answer, sizeof answer), 0);
  }
  // Store names are scoped by tenant: "acme" here is mallory's own store of that name.
  const char *stores[] = {"acme", "globex", "shared:acme", "app:invoices"};
  for (int i = 0; i < 4; i++) {
    uniwasm_kv_store s;
    char what[96], detail[64] = "";
    uniwasm_errno e = uniwasm_kv_open(stores[i], strlen(stores[i]), &s);
    if (!e) {
      char v[16];
      snprintf(detail, sizeof detail, " (mallory's own store: \"invoices\" %s)", kv_get_str(s, "invoices", v, sizeof v) == UNIWASM_ENOENT ? "absent" : "present");
    }
    snprintf(what, sizeof what, "kv open store \"%s\"", stores[i]);
    report(what, e, e ? 0 : detail);
  }
}

int main(void) {
  const char *attack = env_or("PATH_INFO", "");
  if (*attack == '/') attack++;
  read_body(0);
  if (!strcmp(attack, "loop")) spin();
  respond(200, 0);
  fflush(stdout);
  if (!strcmp(attack, "memory")) memory_bomb();
  else if (!strcmp(attack, "output")) flood();
  else if (!strcmp(attack, "escape")) escape();
  else if (!strcmp(attack, "kv")) kv_flood();
  else if (!strcmp(attack, "outbound")) outbound();
  else if (!strcmp(attack, "tenants")) tenants();
  else printf("attacks: /loop /memory /output /escape /kv /outbound /tenants\n");
  if (attempts) printf("%d attempts: %d refused, %d allowed\n", attempts, refused, attempts - refused);
  return 0;
}
