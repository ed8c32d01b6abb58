/* A first HTTP app: a WAGI handler (CGI over WASI). The node runs this
 * ordinary WASI command once per request, with the request's CGI variables
 * (REQUEST_METHOD, PATH_INFO, QUERY_STRING, HTTP_*) as its environment, the
 * query's &-separated words as its arguments and the body on stdin; it prints
 * headers, an empty line, then the body.
 *
 *   clang --target=wasm32-wasi -O2 -o examples/hello-http.wasm examples/hello-http.c
 *   npx uniwasm deploy examples/hello-http.wasm --tenant acme --name hello
 *   curl -H 'Host: hello.acme.localhost' 'http://127.0.0.1:7080/?you'
 */
#include <stdio.h>
#include <stdlib.h>

static const char *env(const char *name) {
  const char *v = getenv(name);
  return v ? v : "";
}

int main(int argc, char **argv) {
  printf("Content-Type: text/plain\n\n");
  printf("Hello, %s!\n", argc > 1 ? argv[1] : "world");
  printf("(%s %s, answered by a WebAssembly instance)\n", env("REQUEST_METHOD"), env("PATH_INFO"));
  return 0;
}
