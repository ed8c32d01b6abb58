// Data aggregation at the edge: sensors post readings, the app keeps rolling
// statistics per sensor in its own KV store, and sends a summary to the one
// outbound collector it is allowed to reach (allowed_outbound_hosts; the URL
// comes from the app's env COLLECTOR_URL).
// Paths are relative to the app's route (the demo: telemetry.sensors.localhost/):
//   POST /  "SENSOR VALUE" lines   records readings: "recorded N readings"
//   GET  /                         per sensor: count, min, max, mean, rolling mean of the last 8
//   POST /flush                    POSTs that summary (JSON) to the collector, answers its status
// KV: "sensor/NAME" = "count min max sum r1 ... r8" (the last readings, newest
// first), updated with compare-and-set so concurrent requests lose no reading.
#include <ctype.h>
#include "uniwasm_http.h"
#include "uniwasm_kv.h"
#include "uniwasm_log.h"
#include "wagi.h"

enum { WINDOW = 8 };

struct stats {
  long count;
  double min, max, sum, recent[WINDOW];
};

static int fail(int status, const char *msg) {
  respond(status, 0);
  printf("%s\n", msg);
  return 0;
}

static int valid_sensor(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 32) return 0;
  for (; *s; s++)
    if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '-') return 0;
  return 1;
}

static void decode(const char *v, struct stats *s) {
  memset(s, 0, sizeof *s);
  char *p;
  s->count = strtol(v, &p, 10);
  s->min = strtod(p, &p), s->max = strtod(p, &p), s->sum = strtod(p, &p);
  for (int i = 0; i < WINDOW && i < s->count; i++) s->recent[i] = strtod(p, &p);
}

static void encode(const struct stats *s, char *out, size_t cap) {
  int n = snprintf(out, cap, "%ld %.6g %.6g %.17g", s->count, s->min, s->max, s->sum);
  for (int i = 0; i < WINDOW && i < s->count; i++) n += snprintf(out + n, cap - n, " %.6g", s->recent[i]);
}

static double rolling_mean(const struct stats *s) {
  int n = s->count < WINDOW ? (int)s->count : WINDOW;
  double sum = 0;
  for (int i = 0; i < n; i++) sum += s->recent[i];
  return n ? sum / n : 0;
}

// Adds one reading, retrying when another request changed the sensor in between.
static uniwasm_errno record(const char *sensor, double value) {
  char key[64], old[512], next[512];
  snprintf(key, sizeof key, "sensor/%s", sensor);
  for (int attempt = 0; attempt < 16; attempt++) {
    struct stats s;
    size_t old_len = UNIWASM_KV_ABSENT;
    uniwasm_errno e = kv_get_str(UNIWASM_KV_DEFAULT, key, old, sizeof old);
    if (e == 0) old_len = strlen(old), decode(old, &s);
    else if (e == UNIWASM_ENOENT) memset(&s, 0, sizeof s);
    else return e;
    if (s.count == 0 || value < s.min) s.min = value;
    if (s.count == 0 || value > s.max) s.max = value;
    s.sum += value;
    memmove(s.recent + 1, s.recent, sizeof s.recent - sizeof s.recent[0]);
    s.recent[0] = value;
    s.count++;
    encode(&s, next, sizeof next);
    e = uniwasm_kv_compare_and_set(UNIWASM_KV_DEFAULT, key, strlen(key), old, old_len, next, strlen(next));
    if (e != UNIWASM_ECANCELED) return e;
  }
  return UNIWASM_ECANCELED;
}

// The summary, as text lines or as one JSON object, into out.
struct summary {
  char *out;
  size_t cap, len;
  int json, sensors;
};

static void summarize(const char *key, size_t len, void *ctx) {
  struct summary *sm = ctx;
  char k[64], v[512];
  struct stats s;
  if (len >= sizeof k) return;
  memcpy(k, key, len);
  k[len] = 0;
  if (kv_get_str(UNIWASM_KV_DEFAULT, k, v, sizeof v) != 0) return;
  decode(v, &s);
  const char *name = k + strlen("sensor/");
  const char *fmt = sm->json ? "%s\"%s\":{\"count\":%ld,\"min\":%.6g,\"max\":%.6g,\"mean\":%.4g,\"rolling_mean\":%.4g}"
                             : "%s%-12s count %4ld  min %8.6g  max %8.6g  mean %8.4g  rolling mean %8.4g\n";
  if (sm->len < sm->cap)
    sm->len += snprintf(sm->out + sm->len, sm->cap - sm->len, fmt, sm->json && sm->sensors ? "," : "", name, s.count, s.min, s.max, s.sum / s.count, rolling_mean(&s));
  sm->sensors++;
}

static int flush(void) {
  const char *url = getenv("COLLECTOR_URL");
  if (!url) return fail(500, "COLLECTOR_URL is not set (deploy with --env COLLECTOR_URL=...)");
  static char body[16384];
  struct summary sm = {body, sizeof body, 0, 1, 0};
  sm.len = snprintf(body, sizeof body, "{\"node\":\"%s\",\"sensors\":{", env_or("NODE_NAME", "edge"));
  kv_each(UNIWASM_KV_DEFAULT, "sensor/", summarize, &sm);
  if (sm.len + 3 > sizeof body) return fail(500, "summary too large");
  sm.len += snprintf(body + sm.len, sizeof body - sm.len, "}}");
  uint32_t status = 0;
  uniwasm_http_response r;
  const char *headers = "content-type: application/json";
  uniwasm_errno e = uniwasm_http_send("POST", 4, url, strlen(url), headers, strlen(headers), body, sm.len, &status, &r);
  if (e) {
    log_line(UNIWASM_LOG_WARN, "summary to %s failed: %s", url, errno_name(e));
    respond(502, 0);
    printf("collector %s: %s\n", url, errno_name(e));
    return 0;
  }
  char answer[256];
  size_t got = 0;
  uniwasm_http_response_read(r, answer, sizeof answer - 1, &got);
  answer[got] = 0;
  uniwasm_http_response_close(r);
  int64_t flushes = 0;
  uniwasm_kv_increment(UNIWASM_KV_DEFAULT, "flushes", 7, 1, &flushes);
  log_line(UNIWASM_LOG_INFO, "summary %lld (%d sensors) sent to %s: %u", (long long)flushes, sm.sensors, url, status);
  respond(status == 200 ? 200 : 502, 0);
  printf("summary of %d sensors sent to the collector: %u %s%s", sm.sensors, status, answer, got && answer[got - 1] == '\n' ? "" : "\n");
  return 0;
}

int main(void) {
  const char *path = env_or("PATH_INFO", "");
  int post = !strcmp(env_or("REQUEST_METHOD", "GET"), "POST");
  if (post && !strcmp(path, "/flush")) return flush();
  if (*path && strcmp(path, "/")) return fail(404, "use / or /flush");
  if (!post) {
    static char text[16384];
    struct summary sm = {text, sizeof text, 0, 0, 0};
    kv_each(UNIWASM_KV_DEFAULT, "sensor/", summarize, &sm);
    respond(200, 0);
    fwrite(text, 1, sm.len < sizeof text ? sm.len : sizeof text - 1, stdout);
    printf("%d sensors\n", sm.sensors);
    return 0;
  }
  char *body = read_body(0);
  int n = 0;
  for (char *line = strtok(body, "\n"); line; line = strtok(0, "\n")) {
    char sensor[40];
    double value;
    if (sscanf(line, "%39s %lf", sensor, &value) != 2 || !valid_sensor(sensor)) {
      respond(400, 0);
      printf("line %d: expected \"SENSOR VALUE\" (sensor: a-z 0-9 -, at most 32)\n", n + 1);
      return 0;
    }
    uniwasm_errno e = record(sensor, value);
    if (e) {
      respond(503, 0);
      printf("could not record %s: %s\n", sensor, errno_name(e));
      return 0;
    }
    n++;
  }
  respond(200, 0);
  printf("recorded %d readings\n", n);
  return 0;
}
