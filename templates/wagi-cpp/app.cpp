// {{name}}: a WAGI handler in C++ (CGI over WASI). The node runs this ordinary
// WASI command once per request: the request's CGI variables are its
// environment, the query's &-separated words its arguments, the body its stdin.
// It prints headers, an empty line, then the body.
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <string>

static std::string env(const char *name) {
  const char *v = std::getenv(name);
  return v ? v : "";
}

int main(int argc, char **argv) {
  if (env("PATH_INFO") == "/echo") {
    std::string body((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    std::cout << "Content-Type: text/plain\n\n" << body;
    return 0;
  }
  std::string who = argc > 1 ? argv[1] : "world";
  std::cout << "Content-Type: text/plain\n\n"
            << "Hello, " << who << "! This is {{name}} (C++), answering " << env("REQUEST_METHOD") << " " << env("PATH_INFO") << ".\n";
  return 0;
}
