// fd_write / fd_read throughput guest. Usage: io PATH [MIB]
// Writes MIB MiB (default 64) to PATH in 64 KiB write() calls, closes it,
// reads it back in 64 KiB read() calls, and prints
// "<write_ns> <read_ns> <bytes_written> <bytes_read>" on stdout, timed inside
// the guest with CLOCK_MONOTONIC so that instance start-up is not counted.
// Each phase includes its open() and close(). Exit 1 on any I/O error.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (64 * 1024)

static unsigned char buf[CHUNK];

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: io PATH [MIB]\n");
    return 1;
  }
  const char *path = argv[1];
  long long mib = argc > 2 ? atoll(argv[2]) : 64;
  long long want = mib * 1024 * 1024;
  for (int i = 0; i < CHUNK; i++) buf[i] = (unsigned char)(i * 31 + 7);

  long long t0 = now_ns();
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) { perror("open for writing"); return 1; }
  long long written = 0;
  while (written < want) {
    ssize_t n = write(fd, buf, CHUNK);
    if (n <= 0) { perror("write"); return 1; }
    written += n;
  }
  if (close(fd) != 0) { perror("close"); return 1; }
  long long t1 = now_ns();

  fd = open(path, O_RDONLY);
  if (fd < 0) { perror("open for reading"); return 1; }
  long long got = 0;
  for (;;) {
    ssize_t n = read(fd, buf, CHUNK);
    if (n < 0) { perror("read"); return 1; }
    if (n == 0) break;
    got += n;
  }
  if (close(fd) != 0) { perror("close"); return 1; }
  long long t2 = now_ns();

  if (got != written) {
    fprintf(stderr, "read back %lld bytes, wrote %lld\n", got, written);
    return 1;
  }
  printf("%lld %lld %lld %lld\n", t1 - t0, t2 - t1, written, got);
  return 0;
}
