/*
 * Small helpers shared by the C reference programs: a monotonic clock, argument
 * parsing, and a bound on how long any program may run (each one must stop by
 * itself, whatever happens to the driver).
 */
#ifndef NETPOLL_BENCH_COMMON_H
#define NETPOLL_BENCH_COMMON_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static inline double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU seconds this process has used (user + system, all threads). */
static inline double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static inline long arg_long(int argc, char **argv, int i, long fallback) {
  if (i >= argc) return fallback;
  char *end;
  long v = strtol(argv[i], &end, 10);
  if (*end != '\0') {
    fprintf(stderr, "bad number: %s\n", argv[i]);
    exit(2);
  }
  return v;
}

static inline void die(const char *what) {
  fprintf(stderr, "%s: %s\n", what, strerror(errno));
  exit(1);
}

/* SIGALRM's default action ends the process: the hard stop if the driver vanishes. */
static inline void stop_after(unsigned seconds) { alarm(seconds); }

#endif
