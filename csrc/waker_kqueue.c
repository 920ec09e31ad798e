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

/* gnet uses ident 0. User events live in their own filter, so no ident collides
 * with an fd registered for EVFILT_READ; the waker's own address makes the ident
 * unique among the process's live pollers too, so np_waker_registered, asking a
 * kqueue that may be another poller's, can only find ours. */
int np_waker_open(np_waker *waker, int selector_fd, const char **failed_syscall) {
  struct kevent ev;
  waker->ident = (uintptr_t)waker;
  /* EV_CLEAR: one report per trigger, with nothing to drain. */
  EV_SET(&ev, waker->ident, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, 0);
  waker->read_fd = waker->write_fd = -1;
  if (kevent(selector_fd, &ev, 1, NULL, 0, NULL) < 0) {
    *failed_syscall = "kevent add";
    return -errno;
  }
  return 0;
}

int np_waker_wake(np_waker *waker, int selector_fd) {
  struct kevent ev;
  EV_SET(&ev, waker->ident, EVFILT_USER, 0, NOTE_TRIGGER, 0, 0);
  for (;;) {
    if (kevent(selector_fd, &ev, 1, NULL, 0, NULL) >= 0) return 0;
    /* The change is applied before EINTR could be returned, but retrying a
     * trigger is harmless (gnet retries too). */
    if (errno != EINTR) return -errno;
  }
}

void np_waker_drain(np_waker *waker) { (void)waker; }

/* A bare change (no flags, NOTE_FFNOP, the udata it was added with): on our kqueue
 * it neither triggers nor clears the event, and a pending trigger stays pending;
 * any other kqueue has no user event with this ident and answers ENOENT. */
int np_waker_registered(const np_waker *waker, int fd) {
  struct kevent ev;
  EV_SET(&ev, waker->ident, EVFILT_USER, 0, 0, 0, 0);
  for (;;) {
    if (kevent(fd, &ev, 1, NULL, 0, NULL) >= 0) return 1;
    if (errno != EINTR) return 0;
  }
}

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
  waker->ident = 0;
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

/* EV_ENABLE of the read filter of our pipe (level-triggered, enabled, added with
 * udata 0): on our kqueue the kernel only evaluates it again, which a level-
 * triggered filter reports anyway; any other kqueue does not have our pipe and
 * answers ENOENT. */
int np_waker_registered(const np_waker *waker, int fd) {
  struct kevent ev;
  EV_SET(&ev, (uintptr_t)waker->read_fd, EVFILT_READ, EV_ENABLE, 0, 0, 0);
  for (;;) {
    if (kevent(fd, &ev, 1, NULL, 0, NULL) >= 0) return 1;
    if (errno != EINTR) return 0;
  }
}

void np_waker_close(np_waker *waker) {
  if (waker->read_fd >= 0) close(waker->read_fd);
  if (waker->write_fd >= 0) close(waker->write_fd);
  waker->read_fd = waker->write_fd = -1;
}

#endif
