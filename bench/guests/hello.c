// Start-to-exit guest: the smallest useful C command (wasi-libc start-up,
// one fd_write to stdout, proc_exit). Built by scripts/build-fixtures.sh.
#include <stdio.h>

int main(void) {
  puts("hello from the sandbox");
  return 0;
}
