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
 *   - regular files and directories are refused with EPERM (by every op).
 * kqueue cannot be asked what is registered, so the core remembers which
 * filters it added per fd, which file the fd was, and the generation of the
 * registration (carried in each kevent's udata, so np_selector_collect can drop
 * events of a registration that is gone). The record can go stale in one way
 * only: closing an fd removes its filters behind our back. MOD and DEL let the
 * kernel have the last word (their own EV_DELETE fails when the filters are
 * gone); ADD answers EEXIST from the record alone, because every way of asking
 * the kernel (EV_ENABLE, a bare change) makes FreeBSD and XNU evaluate the filter
 * again and queue an edge-triggered (EV_CLEAR) event a second time, and a
 * rejected add must change nothing. */
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

#ifdef __linux__
/* libkqueue cannot see a close: the filters of a closed fd stay until deleted,
 * and would then seem to belong to whatever file reuses the number. So there
 * the core also checks, before trusting a record, that the fd still is the file
 * it was (the kernels of the BSDs and macOS drop the filters at close). */
#define FILTERS_SURVIVE_CLOSE 1
#else
#define FILTERS_SURVIVE_CLOSE 0
#endif

typedef struct reg_entry {
  unsigned char filters;  /* REG_* bits; 0: nothing recorded */
  uint32_t gen;           /* the registration's generation, in its kevents' udata */
  dev_t dev;              /* the file the fd was when they were added */
  ino_t ino;
} reg_entry;

typedef struct kq_state {
  struct kevent events[MAX_POLL_EVENTS_CAP];
  reg_entry *reg;  /* indexed by fd; grown on demand */
  size_t reg_len;
  uint32_t next_gen;  /* the last generation handed out */
#ifdef __linux__
  /* libkqueue: which file the kqueue descriptor is (np_selector_owns). */
  dev_t self_dev;
  ino_t self_ino;
#endif
} kq_state;

static void *udata_of(uint32_t gen) { return (void *)(uintptr_t)gen; }

static uint32_t new_gen(kq_state *st) {
  if (++st->next_gen == 0) st->next_gen = 1;  /* 0: the waker's udata */
  return st->next_gen;
}

int np_selector_open(np_selector *sel, const char **failed_syscall) {
  sel->fd = sel->user_fd = -1;
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
  int kq = kqueue();
  if (kq < 0) {
    int err = -errno;
    *failed_syscall = "kqueue";
    np_selector_close(sel);
    return err;
  }
  sel->user_fd = kq;
  /* Not every platform has kqueue1/kqueuex; fcntl does the same everywhere
   * (and a kqueue is not inherited across fork anyway). */
  int err = fcntl(kq, F_SETFD, FD_CLOEXEC) < 0 ? -errno : 0;
#ifdef __linux__
  /* libkqueue knows a kqueue by its number only: a duplicate is no kqueue to it. */
  sel->fd = kq;
  struct stat self;
  if (err == 0 && fstat(kq, &self) < 0) err = -errno;
  if (err == 0) {
    ((kq_state *)sel->raw)->self_dev = self.st_dev;
    ((kq_state *)sel->raw)->self_ino = self.st_ino;
  }
#else
  /* The private duplicate everything else uses (selector.h says why). */
  if (err == 0) {
    sel->fd = fcntl(kq, F_DUPFD_CLOEXEC, 0);
    if (sel->fd < 0) err = -errno;
  }
#endif
  if (err == 0) err = np_waker_open(&sel->waker, sel->fd, failed_syscall);
  else *failed_syscall = "fcntl";
  if (err < 0) {
    /* Just opened, so ours: closed without asking. */
    if (sel->fd >= 0 && sel->fd != kq) close(sel->fd);
    close(kq);
    sel->fd = sel->user_fd = -1;
    np_selector_close(sel);
    return err;
  }
  return 0;
}

/* Whether sel->fd is still the kqueue this selector opened. Elsewhere it is a
 * private duplicate no one else can close; under libkqueue it is the user's own
 * number (libkqueue cannot use a duplicate), which a close behind the poller's
 * back may give to another file, even another poller's kqueue, and libkqueue goes
 * on answering for it. So there every operation checks first (fstat: libkqueue's
 * kqueue descriptor is a pipe's end, a file of its own) and fails with EBADF
 * rather than act on someone else's kqueue. A close racing this check can still
 * slip through: libkqueue is for testing only. */
static int fd_is_ours(const np_selector *sel) {
#ifdef __linux__
  const kq_state *st = sel->raw;
  struct stat sb;
  return fstat(sel->fd, &sb) == 0 && sb.st_dev == st->self_dev && sb.st_ino == st->self_ino;
#else
  (void)sel;
  return 1;
#endif
}

static reg_entry *reg_find(kq_state *st, int fd) {
  if ((size_t)fd >= st->reg_len || st->reg[fd].filters == 0) return NULL;
  return &st->reg[fd];
}

static void reg_clear(kq_state *st, int fd) {
  if ((size_t)fd < st->reg_len) st->reg[fd].filters = 0;
}

/* Records the filters of fd and which file it is; fails (ENOMEM) only when it
 * must grow. The record is bounded by the highest fd registered, which the
 * kernel bounds. */
static int reg_put(kq_state *st, int fd, unsigned filters, uint32_t gen, const struct stat *sb) {
  if ((size_t)fd >= st->reg_len) {
    size_t len = st->reg_len ? st->reg_len : 64;
    while (len <= (size_t)fd) len *= 2;
    reg_entry *reg = realloc(st->reg, len * sizeof *reg);
    if (reg == NULL) return -ENOMEM;
    memset(reg + st->reg_len, 0, (len - st->reg_len) * sizeof *reg);
    st->reg = reg;
    st->reg_len = len;
  }
  st->reg[fd].filters = (unsigned char)filters;
  st->reg[fd].gen = gen;
  st->reg[fd].dev = sb->st_dev;
  st->reg[fd].ino = sb->st_ino;
  return 0;
}

static int same_file(const reg_entry *e, const struct stat *sb) {
  return e->dev == sb->st_dev && e->ino == sb->st_ino;
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

/* One change. Every change to a live filter replaces its udata (the BSDs, XNU and
 * libkqueue alike), so `gen` must be the registration's own generation. */
static int apply_one(int kq, int fd, short filter, unsigned short flags, uint32_t gen) {
  struct kevent change;
  EV_SET(&change, (uintptr_t)fd, filter, flags, 0, 0, udata_of(gen));
  return apply(kq, &change, 1);
}

/* Whether `filter` is registered for fd: 1, 0, or -errno (EBADF for a closed fd).
 * EV_ENABLE without EV_ADD fails with ENOENT for a missing filter; on a present one
 * the kernels evaluate it again and may queue an edge-triggered event once more, so
 * this is only for learning what a failed MOD left behind. */
static int probe(int kq, int fd, short filter, uint32_t gen) {
  int err = apply_one(kq, fd, filter, EV_ENABLE, gen);
  if (err == 0) return 1;
  return err == -ENOENT ? 0 : err;
}

/* Drops a record that outlived its fd, with whatever filters still hang on it
 * (none on the BSDs and macOS, where close removed them). */
static void forget(np_selector *sel, int fd) {
  kq_state *st = sel->raw;
  reg_entry *e = reg_find(st, fd);
  if (e == NULL) return;
  if (e->filters & REG_READ) (void)apply_one(sel->fd, fd, EVFILT_READ, EV_DELETE, 0);
  if (e->filters & REG_WRITE) (void)apply_one(sel->fd, fd, EVFILT_WRITE, EV_DELETE, 0);
  reg_clear(st, fd);
}

/* What the kernel really has for fd (registered with generation `gen`), for when
 * a batch failed halfway. */
static void resync(np_selector *sel, int fd, uint32_t gen) {
  unsigned filters = 0;
  struct stat sb;
  if (probe(sel->fd, fd, EVFILT_READ, gen) == 1) filters |= REG_READ;
  if (probe(sel->fd, fd, EVFILT_WRITE, gen) == 1) filters |= REG_WRITE;
  if (filters == 0 || fstat(fd, &sb) < 0) reg_clear(sel->raw, fd);
  else (void)reg_put(sel->raw, fd, filters, gen, &sb);
}

/* Whether fd can be always ready: regular files and directories, which epoll
 * refuses (EPERM) and kqueue would report ready forever. */
static int always_ready(const struct stat *sb) {
  return S_ISREG(sb->st_mode) || S_ISDIR(sb->st_mode);
}

/* The error epoll gives for MOD or DEL of an fd that is not registered: EBADF
 * when it is closed, EPERM when it could never be, else ENOENT. */
static int unregistered(int fd) {
  struct stat sb;
  if (fstat(fd, &sb) < 0) return -errno;
  return always_ready(&sb) ? -EPERM : -ENOENT;
}

/* The record for fd. Where filters survive a close (libkqueue), only if it still
 * describes the same file; else it forgets it (and the filters libkqueue kept)
 * and returns NULL. Elsewhere the kernel drops filters at close by itself. */
static reg_entry *find_live(np_selector *sel, int fd) {
  reg_entry *e = reg_find(sel->raw, fd);
#if FILTERS_SURVIVE_CLOSE
  struct stat sb;
  if (e != NULL && (fstat(fd, &sb) < 0 || !same_file(e, &sb))) {
    forget(sel, fd);
    e = NULL;
  }
#endif
  return e;
}

static int filters_of(unsigned interest) {
  return ((interest & NP_INTEREST_READ) ? REG_READ : 0) | ((interest & NP_INTEREST_WRITE) ? REG_WRITE : 0);
}

/* Adds EV_DELETE changes for the filters in `del`, then EV_ADD (with generation
 * `gen`) for those in `add`. */
static int build_changes(struct kevent *ch, int fd, unsigned del, unsigned add, unsigned short add_flags, uint32_t gen) {
  int n = 0;
  if (del & REG_READ) EV_SET(&ch[n++], (uintptr_t)fd, EVFILT_READ, EV_DELETE, 0, 0, 0);
  if (del & REG_WRITE) EV_SET(&ch[n++], (uintptr_t)fd, EVFILT_WRITE, EV_DELETE, 0, 0, 0);
  if (add & REG_READ) EV_SET(&ch[n++], (uintptr_t)fd, EVFILT_READ, add_flags, 0, 0, udata_of(gen));
  if (add & REG_WRITE) EV_SET(&ch[n++], (uintptr_t)fd, EVFILT_WRITE, add_flags, 0, 0, udata_of(gen));
  return n;
}

static int ctl_add(np_selector *sel, int fd, unsigned want, unsigned short flags) {
  kq_state *st = sel->raw;
  struct stat sb;
  if (fstat(fd, &sb) < 0) {
    int err = -errno;
    if (FILTERS_SURVIVE_CLOSE) forget(sel, fd);
    return err;
  }
  reg_entry *e = reg_find(st, fd);
  if (e != NULL && !same_file(e, &sb)) {
    forget(sel, fd);  /* the fd was closed and its number reused */
  } else if (e != NULL) {
    /* From the record alone, so that nothing changes (the header says why). It is
     * wrong in one case only: the fd was closed without a delete and the number
     * reused for the same file (a dup of another descriptor of it, a FIFO opened
     * again); delete() then clears the record, as docs/backends.md says. */
    return -EEXIST;
  }
  /* epoll refuses what is always ready; kqueue would accept it and report it
   * ready forever. Refuse it on both, as epoll does. */
  if (always_ready(&sb)) return -EPERM;

  /* A new registration, a new generation: events of an earlier one under this
   * number, still on their way, are told apart by it. */
  uint32_t gen = new_gen(st);
  struct kevent ch[2];
  int n = build_changes(ch, fd, 0, want, flags, gen);
  int err = apply(sel->fd, ch, n);
  if (err == 0) err = reg_put(st, fd, want, gen, &sb);
  if (err < 0) {
    /* The read filter may have gone in before the write filter failed (or the
     * record could not grow): an add is all or nothing, as on epoll. */
    if (n == 2 || err == -ENOMEM) (void)apply_one(sel->fd, fd, EVFILT_READ, EV_DELETE, 0);
    if (err == -ENOMEM) (void)apply_one(sel->fd, fd, EVFILT_WRITE, EV_DELETE, 0);
  }
  return err;
}

static int ctl_mod(np_selector *sel, int fd, unsigned want, unsigned short flags) {
  reg_entry *e = find_live(sel, fd);
  if (e == NULL) return unregistered(fd);
  /* Delete what is there and add what is wanted, in one call: the first delete
   * fails (and nothing is applied) when the fd was closed since it was added,
   * and re-adding sets the trigger mode and reports current readiness again,
   * which is what EPOLL_CTL_MOD does. */
  /* The same registration, the same generation: its events on their way stay valid. */
  struct kevent ch[4];
  int n = build_changes(ch, fd, e->filters, want, flags, e->gen);
  int err = apply(sel->fd, ch, n);
  if (err == 0) {
    e->filters = (unsigned char)want;
    return 0;
  }
  /* Usually nothing was applied: the fd was closed since (EBADF), or closed and
   * reopened (ENOENT), as epoll would say. Whatever happened, learn it again. */
  resync(sel, fd, e->gen);
  return err;
}

static int ctl_del(np_selector *sel, int fd) {
  reg_entry *e = find_live(sel, fd);
  if (e == NULL) return unregistered(fd);
  struct kevent ch[2];
  int n = build_changes(ch, fd, e->filters, 0, 0, 0);
  reg_clear(sel->raw, fd);
  int err = apply(sel->fd, ch, n);
  /* ENOENT: the fd was closed (and its number maybe reused) since it was added,
   * which removed its filters already. */
  return err == -ENOENT ? unregistered(fd) : err;
}

int np_selector_ctl(np_selector *sel, int op, int fd, unsigned interest) {
  if (fd < 0) return -EBADF;
  if (sel->fd < 0 || sel->raw == NULL || !fd_is_ours(sel)) return -EBADF;
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

int np_selector_wake(np_selector *sel) {
  if (!fd_is_ours(sel)) return -EBADF;
  return np_waker_wake(&sel->waker, sel->fd);
}

int np_selector_wait(np_selector *sel, int cap, int timeout_ms, int *woke) {
  kq_state *st = sel->raw;
  *woke = 0;
  if (!fd_is_ours(sel)) return -EBADF;
  struct timespec ts, *tsp = NULL;
  if (cap > MAX_POLL_EVENTS_CAP) cap = MAX_POLL_EVENTS_CAP;
  if (timeout_ms >= 0) {
    ts.tv_sec = timeout_ms / 1000;
    ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
    tsp = &ts;
  }
  int n = kevent(sel->fd, NULL, 0, st->events, cap, tsp);
  if (n < 0) return errno == EINTR ? 0 : -errno;
  int kept = 0;
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
    if (kept != i) st->events[kept] = *ev;
    kept++;
  }
  return kept;
}

int np_selector_collect(np_selector *sel, int n, np_event *out) {
  kq_state *st = sel->raw;
  int written = 0;
  for (int i = 0; i < n; i++) {
    const struct kevent *ev = &st->events[i];
    if (ev->ident > (uintptr_t)INT32_MAX) continue;
    const reg_entry *e = reg_find(st, (int)ev->ident);
    /* A registration that is gone (deleted, maybe added again since). */
    if (e == NULL || (uint32_t)(uintptr_t)ev->udata != e->gen) continue;
    out[written].fd = (int32_t)ev->ident;
    out[written].event = (int32_t)ev->filter;
    /* The kernels strip the flags that only steer registration; libkqueue
     * echoes them back. Strip them here too, so flags mean the same everywhere:
     * EV_EOF, EV_ERROR, and the EV_CLEAR an edge-triggered fd was added with. */
    out[written].flags = (int32_t)(ev->flags & ~(EV_ADD | EV_DELETE | EV_ENABLE | EV_DISABLE));
    written++;
  }
  return written;
}

/* Whether `fd` is our kqueue: the waker knows how to ask without an effect
 * (waker_kqueue.c); a closed number is not. Under libkqueue, user_fd is sel->fd,
 * and the file identity decides (fd_is_ours): libkqueue goes on answering for a
 * closed number, whatever file took it since. */
int np_selector_owns(const np_selector *sel, int fd) {
  if (fd < 0 || sel->fd < 0) return 0;
#ifdef __linux__
  if (fd != sel->fd || !fd_is_ours(sel)) return 0;
#else
  if (fcntl(fd, F_GETFD) < 0) return 0;
#endif
  return np_waker_registered(&sel->waker, fd);
}

void np_selector_close(np_selector *sel) {
  /* Decided before anything closes: the check needs the waker. */
#ifdef __linux__
  /* libkqueue: fd is the number users see (there is no private duplicate), closed
   * only if it is still ours. */
  int close_fd = sel->fd >= 0 && np_selector_owns(sel, sel->fd);
  int close_user = 0;
#else
  int close_fd = sel->fd >= 0;
  int close_user = sel->user_fd >= 0 && np_selector_owns(sel, sel->user_fd);
#endif
  np_waker_close(&sel->waker);
  if (close_fd) close(sel->fd);
  if (close_user) close(sel->user_fd);
  sel->fd = sel->user_fd = -1;
  kq_state *st = sel->raw;
  if (st != NULL) free(st->reg);
  free(st);
  sel->raw = NULL;
}
