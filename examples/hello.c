/* The smallest uniwasm guest: a WASI command that greets and echoes its
 * arguments, one per line.
 *
 *   clang --target=wasm32-wasi -O2 -o examples/hello.wasm examples/hello.c
 *   npx uniwasm run examples/hello.wasm one "two words"
 */
#include <stdio.h>

int main(int argc, char **argv) {
    printf("Hello from uniwasm!\n");
    for (int i = 1; i < argc; i++) printf("arg %d: %s\n", i, argv[i]);
    return 0;
}
