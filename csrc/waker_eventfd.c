/* The eventfd waker (Linux), registered edge-triggered as gnet does, so it is
 * never read on the hot path: every write is a new edge that epoll reports once. */
#include "selector.h"

#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

int np_waker_open(np_waker *waker, int selector_fd, const char **failed_syscall) {
  waker->ident = 0;
  int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd < 0) {
    *failed_syscall = "eventfd";
    return -errno;
  }
  struct epoll_event ev = {0};
  ev.events = EPOLLIN | EPOLLPRI | EPOLLET | EPOLLRDHUP;
  /* The selector's token for the waker: the fd with generation 0, which no user
   * registration has (selector_epoll.c). */
  ev.data.u64 = (uint32_t)efd;
  if (epoll_ctl(selector_fd, EPOLL_CTL_ADD, efd, &ev) < 0) {
    int err = -errno;
    *failed_syscall = "epoll_ctl add";
    close(efd);
    return err;
  }
  waker->read_fd = waker->write_fd = efd;
  return 0;
}

int np_waker_wake(np_waker *waker, int selector_fd) {
  (void)selector_fd;
  uint64_t one = 1, drained;
  for (;;) {
    if (write(waker->write_fd, &one, sizeof one) == (ssize_t)sizeof one) return 0;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      /* The counter is full (after ~2^64 wakes): drain it and write again, as gnet does. */
      if (read(waker->read_fd, &drained, sizeof drained) < 0 && errno != EAGAIN) return -errno;
      continue;
    }
    return -errno;
  }
}

/* Edge-triggered and never read: each write is a new edge, so nothing to drain. */
void np_waker_drain(np_waker *waker) { (void)waker; }

void np_waker_close(np_waker *waker) {
  if (waker->read_fd >= 0) close(waker->read_fd);
  if (waker->write_fd >= 0 && waker->write_fd != waker->read_fd) close(waker->write_fd);
  waker->read_fd = waker->write_fd = -1;
}
