/*
 * The round-trip floor of any cross-thread design whose threads sleep in the kernel
 * while they wait: two threads, each blocked in epoll_wait on its own eventfd, pass
 * one wake back and forth. A remote trigger and a MessagePort round trip both pay
 * these two wakes (the owner's and the caller's) plus their own work; this is the
 * part no queue design removes, only busy-waiting would.
 *
 *   pingpong <measure_ms> <warmup_ms>
 * prints one JSON line: {"samples":…,"p50_us":…,"p99_us":…}
 */
#include <pthread.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "common.h"

struct side {
  int ep;
  int fd;
};

static int to_owner, to_caller;

static struct side side_of(int fd) {
  struct side s = {epoll_create1(EPOLL_CLOEXEC), fd};
  if (s.ep < 0) die("epoll_create1");
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
  if (epoll_ctl(s.ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
  return s;
}

static void wait_on(struct side *s) {
  struct epoll_event ev;
  while (epoll_wait(s->ep, &ev, 1, -1) != 1) {
    if (errno != EINTR) die("epoll_wait");
  }
  uint64_t v;
  if (read(s->fd, &v, sizeof v) != sizeof v) die("read");
}

static void signal_fd(int fd) {
  uint64_t one = 1;
  if (write(fd, &one, sizeof one) != sizeof one) die("write");
}

static void *owner(void *arg) {
  (void)arg;
  struct side s = side_of(to_owner);
  for (;;) {
    wait_on(&s);
    signal_fd(to_caller);
  }
  return NULL;
}

static int by_value(const void *a, const void *b) {
  double d = *(const double *)a - *(const double *)b;
  return (d > 0) - (d < 0);
}

int main(int argc, char **argv) {
  long measure_ms = arg_long(argc, argv, 1, 1000);
  long warmup_ms = arg_long(argc, argv, 2, 200);
  stop_after((unsigned)((measure_ms + warmup_ms) / 1000 + 30));
  to_owner = eventfd(0, EFD_CLOEXEC);
  to_caller = eventfd(0, EFD_CLOEXEC);
  if (to_owner < 0 || to_caller < 0) die("eventfd");
  pthread_t thread;
  if (pthread_create(&thread, NULL, owner, NULL) != 0) die("pthread_create");
  struct side caller = side_of(to_caller);
  size_t cap = 1 << 16, n = 0;
  double *samples = malloc(cap * sizeof *samples);
  if (samples == NULL) die("malloc");
  double start = now_s(), warm_end = start + (double)warmup_ms / 1e3, end = warm_end + (double)measure_ms / 1e3;
  for (;;) {
    double t0 = now_s();
    signal_fd(to_owner);
    wait_on(&caller);
    double t1 = now_s();
    if (t1 >= end) break;
    if (t1 < warm_end) continue;
    if (n == cap) {
      cap *= 2;
      samples = realloc(samples, cap * sizeof *samples);
      if (samples == NULL) die("realloc");
    }
    samples[n++] = (t1 - t0) * 1e6;
  }
  qsort(samples, n, sizeof *samples, by_value);
  printf("{\"samples\":%zu,\"p50_us\":%.3f,\"p99_us\":%.3f}\n", n, n ? samples[n / 2] : 0.0, n ? samples[n * 99 / 100] : 0.0);
  return 0;
}
