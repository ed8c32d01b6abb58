// Path resolution guest. Usage: paths DIR N
// In the preopened directory DIR, builds a/b/c/d/e/f.txt (once), then times N
// path_filestat_get calls and N open()+close() pairs of that 6-component path,
// and prints "<stat_ns_per_call> <open_ns_per_call>", timed inside the guest
// with CLOCK_MONOTONIC so instance start-up is not counted. Exit 1 on error.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: paths DIR N\n");
    return 1;
  }
  char path[512];
  snprintf(path, sizeof path, "%s", argv[1]);
  const char *parts[] = {"a", "b", "c", "d", "e"};
  for (int i = 0; i < 5; i++) {
    strcat(path, "/");
    strcat(path, parts[i]);
    if (mkdir(path, 0755) != 0 && access(path, F_OK) != 0) { perror(path); return 1; }
  }
  strcat(path, "/f.txt");
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) { perror(path); return 1; }
  close(fd);
  long long n = atoll(argv[2]);
  struct stat st;
  long long t0 = now_ns();
  for (long long i = 0; i < n; i++) {
    if (stat(path, &st) != 0) { perror("stat"); return 1; }
  }
  long long t1 = now_ns();
  for (long long i = 0; i < n; i++) {
    int f = open(path, O_RDONLY);
    if (f < 0) { perror("open"); return 1; }
    close(f);
  }
  long long t2 = now_ns();
  printf("%lld %lld\n", (t1 - t0) / n, (t2 - t1) / n);
  return 0;
}
