/* The kqueue selector (macOS, FreeBSD, OpenBSD, NetBSD; Linux through
 * libkqueue, for testing), after gnet's poller_kqueue_default.go.
 *
 * Where kqueue and epoll differ in what a caller can observe, this file makes
 * kqueue behave as selector_epoll.c does (docs/backends.md has the table):
 *   - ADD of a registered fd fails with EEXIST (EV_ADD would silently modify);
 *   - MOD of an unregistered fd fails with ENOENT (EV_ADD would register it);
 *   - MOD replaces the interest set and the trigger mode, and reports current
 *     readiness again, as EPOLL_CTL_MOD does;
 *   - DEL removes both filters;
 *   - regular files and directories are refused with EPERM.
 * kqueue cannot be asked what is registered, so the core remembers which
 * filters it added per fd. That record can go stale in one way only: closing an
 * fd removes its filters behind our back. So wherever the record says
 * "registered", the kernel has the last word. */
#include "selector.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/event.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* gnet's defs_poller_kqueue.go. */
#define MAX_POLL_EVENTS_CAP 512

static const np_backend_info kqueue_info = {
  .name = "kqueue",
  .init_poll_events_cap = 64,
  .max_poll_events_cap = MAX_POLL_EVENTS_CAP,
  .min_poll_events_cap = 16,
  .max_async_tasks_at_one_time = 128,
  .read_events = EVFILT_READ,
  .write_events = EVFILT_WRITE,
  /* As gnet defines it. Filters are not masks, so this equals EVFILT_READ (-1). */
  .read_write_events = EVFILT_READ | EVFILT_WRITE,
  .err_events = EV_EOF | EV_ERROR,
  .events_are_filters = 1,
  /* gnet's names: ModRead deletes the write filter, ModReadWrite adds it. */
  .syscall_add = "kevent add",
  .syscall_mod_read = "kevent delete",
  .syscall_mod_read_write = "kevent add",
  .syscall_del = "kevent delete",
  .syscall_wait = "kevent wait",
};

const np_backend_info *np_backend(void) { return &kqueue_info; }

/* Which filters the core added for an fd. */
enum { REG_READ = 1, REG_WRITE = 2 };

typedef struct kq_state {
  struct kevent events[MAX_POLL_EVENTS_CAP];
  unsigned char *reg;  /* REG_* bits, indexed by fd; grown on demand */
  size_t reg_len;
} kq_state;

int np_selector_open(np_selector *sel, const char **failed_syscall) {
  sel->fd = -1;
  sel->waker.read_fd = sel->waker.write_fd = -1;
#ifdef __linux__
  /* libkqueue hands out the write end of a pipe, which never turns readable. */
  sel->pollable = 0;
#else
  sel->pollable = 1;
#endif
  sel->raw = calloc(1, sizeof(kq_state));
  if (sel->raw == NULL) {
    *failed_syscall = "malloc";
    return -ENOMEM;
  }
  sel->fd = kqueue();
  if (sel->fd < 0) {
    int err = -errno;
    *failed_syscall = "kqueue";
    np_selector_close(sel);
    return err;
  }
  /* Not every platform has kqueue1/kqueuex; fcntl does the same everywhere
   * (and a kqueue is not inherited across fork anyway). */
  if (fcntl(sel->fd, F_SETFD, FD_CLOEXEC) < 0) {
    int err = -errno;
    *failed_syscall = "fcntl";
    np_selector_close(sel);
    return err;
  }
  int err = np_waker_open(&sel->waker, sel->fd, failed_syscall);
  if (err < 0) {
    np_selector_close(sel);
    return err;
  }
  return 0;
}

static unsigned reg_get(const kq_state *st, int fd) {
  return (size_t)fd < st->reg_len ? st->reg[fd] : 0;
}

/* Records `bits` for fd; only fails (ENOMEM) when it must grow the record. The
 * record is bounded by the highest fd registered, which the kernel bounds. */
static int reg_set(kq_state *st, int fd, unsigned bits) {
  if ((size_t)fd >= st->reg_len) {
    if (bits == 0) return 0;
    size_t len = st->reg_len ? st->reg_len : 64;
    while (len <= (size_t)fd) len *= 2;
    unsigned char *reg = realloc(st->reg, len);
    if (reg == NULL) return -ENOMEM;
    memset(reg + st->reg_len, 0, len - st->reg_len);
    st->reg = reg;
    st->reg_len = len;
  }
  st->reg[fd] = (unsigned char)bits;
  return 0;
}

/* Applies `n` changes in one call. The kernel applies them in order and stops
 * at the first that fails (no event list is given), returning its error. */
static int apply(int kq, struct kevent *changes, int n) {
  for (;;) {
    if (kevent(kq, changes, n, NULL, 0, NULL) >= 0) return 0;
    /* Changes are applied before a wait could be interrupted; EINTR here is
     * not expected, but retrying an idempotent prefix is harmless. */
    if (errno != EINTR) return -errno;
  }
}

static int apply_one(int kq, int fd, short filter, unsigned short flags) {
  struct kevent change;
  EV_SET(&change, (uintptr_t)fd, filter, flags, 0, 0, 0);
  return apply(kq, &change, 1);
}

/* Whether `filter` is registered for fd: 1, 0, or -errno (EBADF for a closed fd).
 * EV_ENABLE without EV_ADD fails with ENOENT for a missing filter and leaves an
 * enabled one as it is (some kernels re-check its readiness, as
 * EPOLL_CTL_MOD would). */
static int probe(int kq, int fd, short filter) {
  int err = apply_one(kq, fd, filter, EV_ENABLE);
  if (err == 0) return 1;
  return err == -ENOENT ? 0 : err;
}

/* What the kernel really has for fd, for when a batch failed halfway. */
static void resync(np_selector *sel, int fd) {
  unsigned bits = 0;
  if (probe(sel->fd, fd, EVFILT_READ) == 1) bits |= REG_READ;
  if (probe(sel->fd, fd, EVFILT_WRITE) == 1) bits |= REG_WRITE;
  (void)reg_set(sel->raw, fd, bits);
}

/* Whether fd is open: 0 or -EBADF, for errors epoll would give for a closed fd. */
static int fd_open(int fd) {
  return fcntl(fd, F_GETFD) < 0 ? -errno : 0;
}

static int filters_of(unsigned interest) {
  return ((interest & NP_INTEREST_READ) ? REG_READ : 0) | ((interest & NP_INTEREST_WRITE) ? REG_WRITE : 0);
}

/* Adds EV_DELETE changes for the filters in `bits`, then EV_ADD for those in `add`. */
static int build_changes(struct kevent *ch, int fd, unsigned del, unsigned add, unsigned short add_flags) {
  int n = 0;
  if (del & REG_READ) EV_SET(&ch[n++], (uintptr_t)fd, EVFILT_READ, EV_DELETE, 0, 0, 0);
  if (del & REG_WRITE) EV_SET(&ch[n++], (uintptr_t)fd, EVFILT_WRITE, EV_DELETE, 0, 0, 0);
  if (add & REG_READ) EV_SET(&ch[n++], (uintptr_t)fd, EVFILT_READ, add_flags, 0, 0, 0);
  if (add & REG_WRITE) EV_SET(&ch[n++], (uintptr_t)fd, EVFILT_WRITE, add_flags, 0, 0, 0);
  return n;
}

static int ctl_add(np_selector *sel, int fd, unsigned want, unsigned short flags) {
  kq_state *st = sel->raw;
  unsigned had = reg_get(st, fd);
  if (had) {
    /* Registered, unless the fd was closed since (and maybe reopened). */
    int present = probe(sel->fd, fd, (had & REG_READ) ? EVFILT_READ : EVFILT_WRITE);
    if (present < 0) return present;
    if (present) return -EEXIST;
    (void)reg_set(st, fd, 0);
  }
  /* epoll refuses what is always ready; kqueue would accept it and report it
   * ready forever. Refuse it on both, as epoll does. */
  struct stat sb;
  if (fstat(fd, &sb) < 0) return -errno;
  if (S_ISREG(sb.st_mode) || S_ISDIR(sb.st_mode)) return -EPERM;

  struct kevent ch[2];
  int n = build_changes(ch, fd, 0, want, flags);
  int err = apply(sel->fd, ch, n);
  if (err == 0) err = reg_set(st, fd, want);
  if (err < 0 && n == 2) {
    /* The read filter may have gone in before the write filter failed: an add
     * is all or nothing, as on epoll. */
    (void)apply_one(sel->fd, fd, EVFILT_READ, EV_DELETE);
  }
  return err;
}

static int ctl_mod(np_selector *sel, int fd, unsigned want, unsigned short flags) {
  kq_state *st = sel->raw;
  unsigned had = reg_get(st, fd);
  if (!had) {
    int err = fd_open(fd);
    return err < 0 ? err : -ENOENT;
  }
  /* Delete what is there and add what is wanted, in one call: the first delete
   * fails (and nothing is applied) when the fd was closed since it was added,
   * and re-adding sets the trigger mode and reports current readiness again,
   * which is what EPOLL_CTL_MOD does. */
  struct kevent ch[4];
  int n = build_changes(ch, fd, had, want, flags);
  int err = apply(sel->fd, ch, n);
  if (err == 0) return reg_set(st, fd, want);
  /* Usually nothing was applied: the fd was closed since (EBADF), or closed and
   * reopened (ENOENT), as epoll would say. Whatever happened, learn it again. */
  resync(sel, fd);
  return err;
}

static int ctl_del(np_selector *sel, int fd) {
  kq_state *st = sel->raw;
  unsigned had = reg_get(st, fd);
  (void)reg_set(st, fd, 0);
  if (!had) {
    int err = fd_open(fd);
    return err < 0 ? err : -ENOENT;
  }
  struct kevent ch[2];
  int n = build_changes(ch, fd, had, 0, 0);
  int err = apply(sel->fd, ch, n);
  if (err < 0 && err != -ENOENT) return err;
  if (err == -ENOENT) {
    /* The fd was closed since it was added: its filters are gone already. A
     * closed fd gives EBADF as on epoll; a reopened one was never registered. */
    int open_err = fd_open(fd);
    return open_err < 0 ? open_err : -ENOENT;
  }
  return 0;
}

int np_selector_ctl(np_selector *sel, int op, int fd, unsigned interest) {
  if (fd < 0) return -EBADF;
  if (sel->fd < 0 || sel->raw == NULL) return -EBADF;
  if (sel->waker.read_fd >= 0 && fd == sel->waker.read_fd) {
    /* The pipe waker is ours; a user touching it would silently break trigger(). */
    if (op == NP_CTL_ADD) return -EEXIST;
    return op == NP_CTL_DEL ? -ENOENT : -EPERM;
  }
  unsigned short flags = EV_ADD | ((interest & NP_INTEREST_EDGE) ? EV_CLEAR : 0);
  unsigned want = filters_of(interest);
  switch (op) {
    case NP_CTL_ADD: return want ? ctl_add(sel, fd, want, flags) : -EINVAL;
    case NP_CTL_MOD: return want ? ctl_mod(sel, fd, want, flags) : -EINVAL;
    case NP_CTL_DEL: return ctl_del(sel, fd);
    default: return -EINVAL;
  }
}

int np_selector_wait(np_selector *sel, np_event *out, int cap, int timeout_ms, int *woke) {
  kq_state *st = sel->raw;
  struct timespec ts, *tsp = NULL;
  if (cap > MAX_POLL_EVENTS_CAP) cap = MAX_POLL_EVENTS_CAP;
  if (timeout_ms >= 0) {
    ts.tv_sec = timeout_ms / 1000;
    ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
    tsp = &ts;
  }
  *woke = 0;
  int n = kevent(sel->fd, NULL, 0, st->events, cap, tsp);
  if (n < 0) return errno == EINTR ? 0 : -errno;
  int written = 0;
  for (int i = 0; i < n; i++) {
    const struct kevent *ev = &st->events[i];
    if (ev->filter == EVFILT_READ && sel->waker.read_fd >= 0 && ev->ident == (uintptr_t)sel->waker.read_fd) {
      *woke = 1;
      np_waker_drain(&sel->waker);
      continue;
    }
#ifdef EVFILT_USER
    if (ev->filter == EVFILT_USER) {
      *woke = 1;  /* EV_CLEAR: consumed by this very report */
      continue;
    }
#endif
    out[written].fd = (int32_t)ev->ident;
    out[written].event = (int32_t)ev->filter;
    out[written].flags = (int32_t)ev->flags;
    written++;
  }
  return written;
}

void np_selector_close(np_selector *sel) {
  np_waker_close(&sel->waker);
  if (sel->fd >= 0) {
    close(sel->fd);
    sel->fd = -1;
  }
  kq_state *st = sel->raw;
  if (st != NULL) free(st->reg);
  free(st);
  sel->raw = NULL;
}
