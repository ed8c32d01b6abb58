// Tenant globex's customer code: the most frequent words of a posted text
// (lower-cased, letters only), and how many documents it has seen (its own
// KV store).
//   POST /  "the cat and the hat"  ->  "document 3: 5 words, 4 distinct; top: the 2, cat 1, and 1"
#include <ctype.h>
#include "uniwasm_kv.h"
#include "wagi.h"

enum { MAX_WORDS = 2048 };
static struct word {
  char text[24];
  int count;
} words[MAX_WORDS];
static int distinct;

static void add(const char *w) {
  for (int i = 0; i < distinct; i++)
    if (!strcmp(words[i].text, w)) return (void)words[i].count++;
  if (distinct == MAX_WORDS) return;
  snprintf(words[distinct].text, sizeof words[distinct].text, "%s", w);
  words[distinct++].count = 1;
}

static int by_count(const void *a, const void *b) {
  const struct word *x = a, *y = b;
  return x->count != y->count ? y->count - x->count : strcmp(x->text, y->text);
}

int main(void) {
  char *body = read_body(0), w[24];
  int total = 0, n = 0;
  for (char *p = body;; p++) {
    if (isalpha((unsigned char)*p)) {
      if (n < (int)sizeof w - 1) w[n++] = (char)tolower((unsigned char)*p);
      continue;
    }
    if (n) w[n] = 0, add(w), total++, n = 0;
    if (!*p) break;
  }
  qsort(words, distinct, sizeof words[0], by_count);
  int64_t doc = 0;
  uniwasm_kv_increment(UNIWASM_KV_DEFAULT, "documents", 9, 1, &doc);
  respond(200, 0);
  printf("document %lld: %d words, %d distinct; top:", (long long)doc, total, distinct);
  for (int i = 0; i < distinct && i < 3; i++) printf("%s %s %d", i ? "," : "", words[i].text, words[i].count);
  printf("\n");
  return 0;
}
