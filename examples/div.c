/* A program that traps: integer division by zero. uniwasm prints the trap and
 * the wasm backtrace with function names (from the module's name section).
 *
 *   npx uniwasm run examples/div.wasm        # exit status 134: trap
 *   npx uniwasm run examples/div.wasm 5      # prints 2
 *
 * Build it keeping the name section: compile with -O2, link without -O
 * (given -O, clang runs wasm-opt after linking, which drops the names):
 *
 *   clang --target=wasm32-wasi -O2 -c -o div.o examples/div.c
 *   clang --target=wasm32-wasi -o examples/div.wasm div.o
 */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) int divide(int a, int b) { return a / b; }

int main(int argc, char **argv) {
  int by = argc > 1 ? atoi(argv[1]) : 0;
  printf("%d\n", divide(10, by));
  return 0;
}
