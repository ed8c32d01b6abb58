// Media processing at the edge: an uploaded PGM (P5, grey) or PPM (P6,
// colour) image, 8 bits per sample, is resized or filtered and sent back in
// the same format. Pure computation: the image grants nothing but stdio.
// Paths are relative to the app's route (the demo: media.cameras.localhost/):
//   POST /resize?width=W[&height=H]   box-filter downscale (or nearest-neighbour upscale);
//                                     height defaults to keep the aspect ratio
//   POST /gray                        PPM -> PGM (Rec. 601 luma)
//   POST /blur[?radius=R]             box blur, R = 1..8 (default 2)
//   POST /edges                       Sobel edge magnitude, as a PGM
//   GET  /                            this help
#include "wagi.h"

struct image {
  int w, h, ch; // ch: 1 (PGM) or 3 (PPM)
  unsigned char *px;
};

static int fail(int status, const char *msg) {
  respond(status, 0);
  printf("%s\n", msg);
  return 0;
}

// Skips whitespace and # comments in a PNM header; returns the next number or -1.
static long header_number(const unsigned char **p, const unsigned char *end) {
  for (;;) {
    while (*p < end && (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')) (*p)++;
    if (*p < end && **p == '#') {
      while (*p < end && **p != '\n') (*p)++;
      continue;
    }
    break;
  }
  long n = -1;
  while (*p < end && **p >= '0' && **p <= '9' && n < 100000) n = (n < 0 ? 0 : n * 10) + (*(*p)++ - '0');
  return n;
}

static const char *parse(const unsigned char *buf, size_t len, struct image *img) {
  if (len < 2 || buf[0] != 'P' || (buf[1] != '5' && buf[1] != '6')) return "expected a binary PGM (P5) or PPM (P6) image";
  const unsigned char *p = buf + 2, *end = buf + len;
  long w = header_number(&p, end), h = header_number(&p, end), max = header_number(&p, end);
  if (w < 1 || h < 1 || w > 4096 || h > 4096) return "width and height must be 1 to 4096";
  if (max != 255) return "only 8-bit images (maxval 255)";
  if (p >= end) return "truncated header";
  p++; // the single whitespace byte before the samples
  img->w = (int)w, img->h = (int)h, img->ch = buf[1] == '6' ? 3 : 1;
  if ((size_t)(end - p) < (size_t)w * h * img->ch) return "truncated image data";
  img->px = (unsigned char *)p;
  return 0;
}

static struct image make(int w, int h, int ch) {
  struct image o = {w, h, ch, malloc((size_t)w * h * ch)};
  return o;
}

static void emit(const struct image *o) {
  printf("Content-Type: %s\n\n", o->ch == 3 ? "image/x-portable-pixmap" : "image/x-portable-graymap");
  printf("P%c\n%d %d\n255\n", o->ch == 3 ? '6' : '5', o->w, o->h);
  fwrite(o->px, 1, (size_t)o->w * o->h * o->ch, stdout);
}

// Each output pixel averages the input box it covers (exact area weights along
// integer box edges: good enough for thumbnails); upscaling picks the nearest.
static struct image resize(const struct image *in, int w, int h) {
  struct image o = make(w, h, in->ch);
  for (int y = 0; y < h; y++) {
    int y0 = (int)((long)y * in->h / h), y1 = (int)((long)(y + 1) * in->h / h);
    if (y1 <= y0) y1 = y0 + 1;
    for (int x = 0; x < w; x++) {
      int x0 = (int)((long)x * in->w / w), x1 = (int)((long)(x + 1) * in->w / w);
      if (x1 <= x0) x1 = x0 + 1;
      for (int c = 0; c < in->ch; c++) {
        unsigned long sum = 0;
        for (int yy = y0; yy < y1; yy++)
          for (int xx = x0; xx < x1; xx++) sum += in->px[((size_t)yy * in->w + xx) * in->ch + c];
        unsigned long n = (unsigned long)(y1 - y0) * (x1 - x0);
        o.px[((size_t)y * w + x) * in->ch + c] = (unsigned char)((sum + n / 2) / n);
      }
    }
  }
  return o;
}

static struct image gray(const struct image *in) {
  if (in->ch == 1) return *in;
  struct image o = make(in->w, in->h, 1);
  for (size_t i = 0; i < (size_t)in->w * in->h; i++) {
    const unsigned char *s = in->px + i * 3;
    o.px[i] = (unsigned char)((299 * s[0] + 587 * s[1] + 114 * s[2] + 500) / 1000);
  }
  return o;
}

// Separable box blur with edge clamping: a horizontal then a vertical pass.
static struct image blur(const struct image *in, int r) {
  struct image tmp = make(in->w, in->h, in->ch), o = make(in->w, in->h, in->ch);
  int n = 2 * r + 1;
  for (int y = 0; y < in->h; y++)
    for (int x = 0; x < in->w; x++)
      for (int c = 0; c < in->ch; c++) {
        int sum = 0;
        for (int k = -r; k <= r; k++) {
          int xx = x + k < 0 ? 0 : x + k >= in->w ? in->w - 1 : x + k;
          sum += in->px[((size_t)y * in->w + xx) * in->ch + c];
        }
        tmp.px[((size_t)y * in->w + x) * in->ch + c] = (unsigned char)((sum + n / 2) / n);
      }
  for (int y = 0; y < in->h; y++)
    for (int x = 0; x < in->w; x++)
      for (int c = 0; c < in->ch; c++) {
        int sum = 0;
        for (int k = -r; k <= r; k++) {
          int yy = y + k < 0 ? 0 : y + k >= in->h ? in->h - 1 : y + k;
          sum += tmp.px[((size_t)yy * in->w + x) * in->ch + c];
        }
        o.px[((size_t)y * in->w + x) * in->ch + c] = (unsigned char)((sum + n / 2) / n);
      }
  free(tmp.px);
  return o;
}

static struct image edges(const struct image *in) {
  struct image g = gray(in), o = make(in->w, in->h, 1);
  for (int y = 0; y < g.h; y++)
    for (int x = 0; x < g.w; x++) {
#define P(dx, dy) (int)g.px[(size_t)(y + (dy) < 0 ? 0 : y + (dy) >= g.h ? g.h - 1 : y + (dy)) * g.w + (x + (dx) < 0 ? 0 : x + (dx) >= g.w ? g.w - 1 : x + (dx))]
      int gx = -P(-1, -1) - 2 * P(-1, 0) - P(-1, 1) + P(1, -1) + 2 * P(1, 0) + P(1, 1);
      int gy = -P(-1, -1) - 2 * P(0, -1) - P(1, -1) + P(-1, 1) + 2 * P(0, 1) + P(1, 1);
#undef P
      int m = (abs(gx) + abs(gy)) / 4;
      o.px[(size_t)y * g.w + x] = (unsigned char)(m > 255 ? 255 : m);
    }
  return o;
}

// The value of NAME in a query string "a=1&b=2", or fallback.
static long query_number(const char *name, long fallback) {
  const char *q = env_or("QUERY_STRING", "");
  size_t n = strlen(name);
  for (const char *p = q; *p;) {
    if (!strncmp(p, name, n) && p[n] == '=') return atol(p + n + 1);
    p = strchr(p, '&');
    if (!p) break;
    p++;
  }
  return fallback;
}

int main(void) {
  const char *op = env_or("PATH_INFO", "");
  if (*op == '/') op++;
  if (strcmp(env_or("REQUEST_METHOD", "GET"), "POST") != 0)
    return fail(*op ? 405 : 200, "POST a binary PGM/PPM to /resize?width=W[&height=H], /gray, /blur[?radius=R] or /edges");
  size_t len;
  unsigned char *body = (unsigned char *)read_body(&len);
  struct image in, out;
  const char *problem = parse(body, len, &in);
  if (problem) return fail(400, problem);
  if (!strcmp(op, "resize")) {
    long w = query_number("width", 0), h = query_number("height", 0);
    if (w < 1 || w > 4096) return fail(400, "resize needs width=1..4096");
    if (h == 0) h = ((long)in.h * w + in.w / 2) / in.w;
    if (h < 1) h = 1;
    if (h > 4096) return fail(400, "height must be 1..4096");
    out = resize(&in, (int)w, (int)h);
  } else if (!strcmp(op, "gray")) {
    out = gray(&in);
  } else if (!strcmp(op, "blur")) {
    long r = query_number("radius", 2);
    if (r < 1 || r > 8) return fail(400, "radius must be 1..8");
    out = blur(&in, (int)r);
  } else if (!strcmp(op, "edges")) {
    out = edges(&in);
  } else {
    return fail(404, "operations: resize, gray, blur, edges");
  }
  emit(&out);
  return 0;
}
