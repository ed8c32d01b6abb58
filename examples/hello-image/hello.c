// uniwasm image example: everything this program can touch is listed in
// uniwasm.toml. It greets whoever its arguments name, in the language its
// environment says, reading the greeting from a file bundled in the image.
// The same program answers the manifest's HTTP trigger: on a node it runs as a
// WAGI handler (REQUEST_METHOD is set, the query's words are its arguments),
// so it prints a Content-Type header and an empty line before the greeting.
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  if (getenv("REQUEST_METHOD")) printf("Content-Type: text/plain; charset=utf-8\n\n");
  const char *lang = getenv("LANGUAGE");
  char path[128];
  snprintf(path, sizeof path, "/static/%s.txt", lang ? lang : "en");
  FILE *f = fopen(path, "r");
  if (!f) {
    perror(path);
    return 1;
  }
  char greeting[64] = {0};
  if (!fgets(greeting, sizeof greeting, f)) greeting[0] = 0;
  fclose(f);
  greeting[strcspn(greeting, "\n")] = 0;
  for (int i = 1; i < argc; i++) printf("%s, %s!\n", greeting, argv[i]);
  if (argc < 2) printf("%s, world!\n", greeting);
  return 0;
}
