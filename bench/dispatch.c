/*
 * The dispatch baseline: a plain C epoll_wait loop over N always-ready,
 * level-triggered pipe read ends (one byte waits in each, never read), counting
 * delivered events. The same fds, event-list size and counting work that the
 * JavaScript benchmark does, minus everything between the kernel and a JS callback.
 *
 *   dispatch <fds> <measure_ms> <warmup_ms>
 * prints one JSON line: {"events":…,"seconds":…,"rate":…,"cpu_seconds":…}
 */
#include <fcntl.h>
#include <sys/epoll.h>

#include "common.h"

#define EVENT_LIST_SIZE 1024 /* netpoll's MaxPollEventsCap: the largest batch it reads */

int main(int argc, char **argv) {
  long nfds = arg_long(argc, argv, 1, 100);
  long measure_ms = arg_long(argc, argv, 2, 1000);
  long warmup_ms = arg_long(argc, argv, 3, 200);
  stop_after((unsigned)((measure_ms + warmup_ms) / 1000 + 30));

  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  for (long i = 0; i < nfds; i++) {
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) die("pipe2");
    if (write(p[1], "x", 1) != 1) die("write");
    struct epoll_event ev = {.events = EPOLLIN | EPOLLPRI, .data.fd = p[0]};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) < 0) die("epoll_ctl");
  }

  static struct epoll_event list[EVENT_LIST_SIZE];
  volatile long sink = 0; /* the "callback": touch each event's fd and mask */
  unsigned long events = 0, mark_events = 0;
  double start = now_s(), mark = 0, end = 0, cpu_mark = 0, cpu_end = 0;
  int measuring = 0;
  for (unsigned long iter = 0;; iter++) {
    int n = epoll_wait(ep, list, EVENT_LIST_SIZE, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) sink += list[i].data.fd + (long)list[i].events;
    events += (unsigned long)n;
    if ((iter & 63) == 0) {
      double t = now_s();
      if (!measuring && t - start >= warmup_ms / 1e3) {
        measuring = 1;
        mark = t;
        cpu_mark = cpu_s();
        mark_events = events;
      } else if (measuring && t - mark >= measure_ms / 1e3) {
        end = t;
        cpu_end = cpu_s();
        break;
      }
    }
  }
  double seconds = end - mark;
  unsigned long counted = events - mark_events;
  printf("{\"events\":%lu,\"seconds\":%.6f,\"rate\":%.1f,\"cpu_seconds\":%.6f}\n", counted, seconds, counted / seconds,
         cpu_end - cpu_mark);
  return 0;
}
