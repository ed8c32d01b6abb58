/* {{name}}: a WAGI handler (CGI over WASI). The node runs this ordinary WASI
 * command once per request, in a fresh instance: the request's CGI variables
 * (REQUEST_METHOD, PATH_INFO, QUERY_STRING, CONTENT_TYPE, HTTP_*) are its
 * environment, the query's &-separated words its arguments, the body its
 * stdin. It prints headers, an empty line, then the body. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *env(const char *name) {
  const char *v = getenv(name);
  return v ? v : "";
}

static void hello(int argc, char **argv) {
  printf("Content-Type: text/plain\n\n");
  printf("Hello, %s! This is {{name}}, answering %s %s.\n", argc > 1 ? argv[1] : "world", env("REQUEST_METHOD"), env("PATH_INFO"));
}

static void echo(void) {
  printf("Content-Type: %s\n\n", *env("CONTENT_TYPE") ? env("CONTENT_TYPE") : "application/octet-stream");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) fwrite(buf, 1, n, stdout);
}

int main(int argc, char **argv) {
  if (!strcmp(env("PATH_INFO"), "/echo")) echo();
  else hello(argc, argv);
  return 0;
}
