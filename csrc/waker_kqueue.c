/* The kqueue waker, after gnet's poller_kqueue_wakeup*.go: an EVFILT_USER event
 * triggered with NOTE_TRIGGER where the platform has it (macOS, FreeBSD,
 * DragonFly, NetBSD 10, libkqueue), otherwise a nonblocking pipe whose read end
 * is registered for EVFILT_READ (OpenBSD, older NetBSD). Defining
 * NETPOLL_KQUEUE_PIPE_WAKER forces the pipe, so that path can be tested too. */
#include "selector.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/event.h>
#include <sys/time.h>
#include <unistd.h>

#if defined(EVFILT_USER) && defined(NOTE_TRIGGER) && !defined(NETPOLL_KQUEUE_PIPE_WAKER)
#define USE_EVFILT_USER 1
#else
#define USE_EVFILT_USER 0
#endif

#if USE_EVFILT_USER

/* gnet's ident. User events live in their own filter, so ident 0 never
 * collides with fd 0 registered for EVFILT_READ. */
#define WAKER_IDENT 0

int np_waker_open(np_waker *waker, int selector_fd, const char **failed_syscall) {
  struct kevent ev;
  /* EV_CLEAR: one report per trigger, with nothing to drain. */
  EV_SET(&ev, WAKER_IDENT, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, 0);
  waker->read_fd = waker->write_fd = -1;
  if (kevent(selector_fd, &ev, 1, NULL, 0, NULL) < 0) {
    *failed_syscall = "kevent add";
    return -errno;
  }
  return 0;
}

int np_waker_wake(np_waker *waker, int selector_fd) {
  (void)waker;
  struct kevent ev;
  EV_SET(&ev, WAKER_IDENT, EVFILT_USER, 0, NOTE_TRIGGER, 0, 0);
  for (;;) {
    if (kevent(selector_fd, &ev, 1, NULL, 0, NULL) >= 0) return 0;
    /* The change is applied before EINTR could be returned, but retrying a
     * trigger is harmless (gnet retries too). */
    if (errno != EINTR) return -errno;
  }
}

void np_waker_drain(np_waker *waker) { (void)waker; }

void np_waker_close(np_waker *waker) {
  /* The user event goes away with the kqueue. */
  waker->read_fd = waker->write_fd = -1;
}

#else

static int set_flags(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
  int fdfl = fcntl(fd, F_GETFD);
  if (fdfl < 0 || fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0) return -errno;
  return 0;
}

int np_waker_open(np_waker *waker, int selector_fd, const char **failed_syscall) {
  int fds[2];
  waker->read_fd = waker->write_fd = -1;
  /* pipe + fcntl rather than pipe2, which not every BSD of interest has. */
  if (pipe(fds) < 0) {
    *failed_syscall = "pipe";
    return -errno;
  }
  waker->read_fd = fds[0];
  waker->write_fd = fds[1];
  int err = set_flags(fds[0]);
  if (err == 0) err = set_flags(fds[1]);
  if (err < 0) {
    *failed_syscall = "fcntl";
    np_waker_close(waker);
    return err;
  }
  struct kevent ev;
  /* Level-triggered, as gnet registers it: the selector drains it when it reports. */
  EV_SET(&ev, (uintptr_t)waker->read_fd, EVFILT_READ, EV_ADD, 0, 0, 0);
  if (kevent(selector_fd, &ev, 1, NULL, 0, NULL) < 0) {
    err = -errno;
    *failed_syscall = "kevent add";
    np_waker_close(waker);
    return err;
  }
  return 0;
}

int np_waker_wake(np_waker *waker, int selector_fd) {
  (void)selector_fd;
  const char byte = 'x';
  for (;;) {
    if (write(waker->write_fd, &byte, 1) == 1) return 0;
    if (errno == EINTR) continue;
    /* A full pipe is a pending wake already. */
    if (errno == EAGAIN) return 0;
    return -errno;
  }
}

void np_waker_drain(np_waker *waker) {
  char buf[64];
  for (;;) {
    ssize_t n = read(waker->read_fd, buf, sizeof buf);
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    return;  /* EAGAIN: empty */
  }
}

void np_waker_close(np_waker *waker) {
  if (waker->read_fd >= 0) close(waker->read_fd);
  if (waker->write_fd >= 0) close(waker->write_fd);
  waker->read_fd = waker->write_fd = -1;
}

#endif
