// Local ML inference at the edge: a handwritten-digit classifier, a tiny
// multilayer perceptron (64 -> 32 ReLU -> 10) whose weights ship in the
// image as a read-only file (/model/mlp.bin, written by train.mjs beside this
// file), with held-out images bundled as /samples/digits.txt.
// A reactor (docs/abi-reactor.md): a warm instance loads the model once and
// answers many requests, so an inference costs a call, not a boot.
// Paths are relative to the app's route (the demo: digits.vision.localhost/):
//   GET  /              classifies every bundled sample: "#N label L -> D (P%)" and a tally
//   GET  /N             one bundled sample, drawn as 8x8 text
//   POST / "P0 ... P63" 64 pixels 0..16 (an 8x8 image, row by row) -> "digit D (P%)"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

enum { IN = 64, HID = 32, OUT = 10, MAX_SAMPLES = 64 };
static float W1[HID][IN], b1[HID], W2[OUT][HID], b2[OUT];

static void respond(int status) {
  if (status != 200) printf("Status: %d\n", status);
  printf("Content-Type: text/plain\n\n");
}

static void fail(int status, const char *msg) {
  respond(status);
  printf("%s\n", msg);
}

static int model_loaded, sample_count;

static int load_model(void) {
  FILE *f = fopen("/model/mlp.bin", "rb");
  if (!f) return 0;
  char magic[4];
  uint32_t dims[3];
  int ok = fread(magic, 1, 4, f) == 4 && !memcmp(magic, "MLP1", 4) && fread(dims, 4, 3, f) == 3 && dims[0] == IN && dims[1] == HID && dims[2] == OUT &&
           fread(W1, sizeof W1, 1, f) == 1 && fread(b1, sizeof b1, 1, f) == 1 && fread(W2, sizeof W2, 1, f) == 1 && fread(b2, sizeof b2, 1, f) == 1;
  fclose(f);
  return ok;
}

// The class and its softmax probability, for pixels 0..16.
static int classify(const int px[IN], double *prob) {
  double h[HID], z[OUT];
  for (int j = 0; j < HID; j++) {
    double s = b1[j];
    for (int i = 0; i < IN; i++) s += W1[j][i] * (px[i] / 16.0);
    h[j] = s > 0 ? s : 0;
  }
  int best = 0;
  for (int k = 0; k < OUT; k++) {
    double s = b2[k];
    for (int j = 0; j < HID; j++) s += W2[k][j] * h[j];
    z[k] = s;
    if (z[k] > z[best]) best = k;
  }
  double sum = 0;
  for (int k = 0; k < OUT; k++) sum += exp(z[k] - z[best]);
  *prob = 1 / sum;
  return best;
}

// Reads 64 pixel values 0..16 from text; returns how many were read.
static int read_pixels(const char *s, int px[IN]) {
  int n = 0;
  while (n < IN && *s) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s) {
      s++;
      continue;
    }
    if (v < 0 || v > 16) return -1;
    px[n++] = (int)v;
    s = end;
  }
  return n;
}

static struct sample {
  int label, px[IN];
} samples[MAX_SAMPLES];

static int load_samples(void) {
  FILE *f = fopen("/samples/digits.txt", "r");
  if (!f) return 0;
  char line[512];
  int n = 0;
  while (n < MAX_SAMPLES && fgets(line, sizeof line, f)) {
    char *rest;
    samples[n].label = (int)strtol(line, &rest, 10);
    if (read_pixels(rest, samples[n].px) == IN) n++;
  }
  fclose(f);
  return n;
}

static void handle(const char *method, const char *path, const char *body) {
  if (!model_loaded) model_loaded = load_model();
  if (!model_loaded) return fail(500, "cannot read the model /model/mlp.bin");
  if (*path == '/') path++;
  if (!strcmp(method, "POST")) {
    int px[IN];
    if (read_pixels(body, px) != IN) return fail(400, "POST 64 pixel values 0..16 (an 8x8 image, row by row)");
    double p;
    int d = classify(px, &p);
    respond(200);
    printf("digit %d (%.1f%%)\n", d, p * 100);
    return;
  }
  if (!sample_count) sample_count = load_samples();
  int n = sample_count;
  if (n == 0) return fail(500, "cannot read the samples /samples/digits.txt");
  if (*path) {
    int i = atoi(path);
    if (i < 0 || i >= n) return fail(404, "no such sample");
    respond(200);
    for (int y = 0; y < 8; y++) {
      for (int x = 0; x < 8; x++) putchar(" .:-=+*#%@"[samples[i].px[y * 8 + x] * 9 / 16]);
      putchar('\n');
    }
    double p;
    printf("sample %d: label %d, classified %d (%.1f%%)\n", i, samples[i].label, classify(samples[i].px, &p), p * 100);
    return;
  }
  respond(200);
  int correct = 0;
  for (int i = 0; i < n; i++) {
    double p;
    int d = classify(samples[i].px, &p);
    correct += d == samples[i].label;
    printf("#%-2d label %d -> %d (%5.1f%%)%s\n", i, samples[i].label, d, p * 100, d == samples[i].label ? "" : "  WRONG");
  }
  printf("%d/%d bundled samples classified correctly\n", correct, n);
}

// ---- the reactor ABI: the node copies a request in, calls the handler, reads stdout ----

__attribute__((export_name("uniwasm_alloc"))) void *uniwasm_alloc(int size) { return malloc(size); }
__attribute__((export_name("uniwasm_free"))) void uniwasm_free(void *p) { free(p); }

// The value of NAME in the request's NAME=VALUE\0 block, or "".
static const char *meta_get(const char *meta, unsigned len, const char *name) {
  size_t n = strlen(name);
  for (const char *s = meta; s < meta + len; s += strlen(s) + 1)
    if (!strncmp(s, name, n) && s[n] == '=') return s + n + 1;
  return "";
}

// The request: u32 meta_len | meta_len bytes of NAME=VALUE\0 CGI variables | the body.
__attribute__((export_name("uniwasm_http_handle"))) int uniwasm_http_handle(unsigned char *req, int len) {
  unsigned meta_len = req[0] | req[1] << 8 | req[2] << 16 | (unsigned)req[3] << 24;
  const char *meta = (const char *)req + 4;
  size_t body_len = (size_t)len - 4 - meta_len;
  char *body = malloc(body_len + 1);
  memcpy(body, req + 4 + meta_len, body_len);
  body[body_len] = 0;
  handle(meta_get(meta, meta_len, "REQUEST_METHOD"), meta_get(meta, meta_len, "PATH_INFO"), body);
  free(body);
  fflush(stdout);
  return 0;
}
