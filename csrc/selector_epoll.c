/* The epoll selector (Linux), after gnet's poller_epoll_default.go. */
#include "selector.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* gnet's defs_poller_epoll.go: the masks are what gnet registers, so an event a
 * user sees has the same bits it would have in Go. */
#define READ_EVENTS (EPOLLIN | EPOLLPRI)
#define WRITE_EVENTS EPOLLOUT
#define ERR_EVENTS (EPOLLERR | EPOLLHUP)
#define MAX_POLL_EVENTS_CAP 1024

static const np_backend_info epoll_info = {
  .name = "epoll",
  .init_poll_events_cap = 128,
  .max_poll_events_cap = MAX_POLL_EVENTS_CAP,
  .min_poll_events_cap = 32,
  .max_async_tasks_at_one_time = 256,
  .read_events = READ_EVENTS,
  .write_events = WRITE_EVENTS,
  .read_write_events = READ_EVENTS | WRITE_EVENTS,
  .err_events = ERR_EVENTS,
  .events_are_filters = 0,
  .syscall_add = "epoll_ctl add",
  .syscall_mod_read = "epoll_ctl mod",
  .syscall_mod_read_write = "epoll_ctl mod",
  .syscall_del = "epoll_ctl del",
  .syscall_wait = "epoll_wait",
};

const np_backend_info *np_backend(void) { return &epoll_info; }

/* What the selector keeps besides the descriptors: the list the last wait filled,
 * and per fd the generation of its registration (0: not registered). An event
 * carries the generation it was registered with in its epoll_event.data (the fd in
 * the low 32 bits, the generation in the high ones), so np_selector_collect can tell
 * an event of the current registration from one read before the fd was deleted (or
 * deleted, closed, reopened under the same number and added again). */
typedef struct ep_state {
  struct epoll_event events[MAX_POLL_EVENTS_CAP];
  uint32_t *gen;       /* indexed by fd, grown on demand */
  size_t gen_len;
  uint32_t next_gen;   /* the last generation handed out */
} ep_state;

static uint64_t token(int fd, uint32_t gen) { return ((uint64_t)gen << 32) | (uint32_t)fd; }

int np_selector_open(np_selector *sel, const char **failed_syscall) {
  sel->fd = sel->user_fd = -1;
  sel->waker.read_fd = sel->waker.write_fd = -1;
  sel->pollable = 1;  /* an epoll fd is readable while events wait */
  sel->raw = calloc(1, sizeof(ep_state));
  if (sel->raw == NULL) {
    *failed_syscall = "malloc";
    return -ENOMEM;
  }
  sel->user_fd = epoll_create1(EPOLL_CLOEXEC);
  if (sel->user_fd < 0) {
    int err = -errno;
    *failed_syscall = "epoll_create1";
    np_selector_close(sel);
    return err;
  }
  /* The private duplicate everything else uses (selector.h says why). */
  int err = 0;
  sel->fd = fcntl(sel->user_fd, F_DUPFD_CLOEXEC, 0);
  if (sel->fd < 0) {
    err = -errno;
    *failed_syscall = "fcntl";
  } else {
    err = np_waker_open(&sel->waker, sel->fd, failed_syscall);
  }
  if (err < 0) {
    close(sel->user_fd);  /* just opened, so ours: closed without asking */
    sel->user_fd = -1;
    np_selector_close(sel);
    return err;
  }
  return 0;
}

static uint32_t interest_to_mask(unsigned interest) {
  uint32_t mask = 0;
  if (interest & NP_INTEREST_READ) mask |= READ_EVENTS;
  if (interest & NP_INTEREST_WRITE) mask |= WRITE_EVENTS;
  /* gnet adds RDHUP only with ET: a level-triggered RDHUP would fire forever. */
  if (interest & NP_INTEREST_EDGE) mask |= EPOLLET | EPOLLRDHUP;
  return mask;
}

static uint32_t recorded_gen(const ep_state *st, int fd) {
  return (size_t)fd < st->gen_len ? st->gen[fd] : 0;
}

static uint32_t new_gen(ep_state *st) {
  if (++st->next_gen == 0) st->next_gen = 1;  /* 0 means "not registered" (and the waker) */
  return st->next_gen;
}

/* Records fd's generation; -ENOMEM only when the record must grow. Called after the
 * kernel accepted the fd, so the record is bounded by the highest open fd. */
static int record(ep_state *st, int fd, uint32_t gen) {
  if ((size_t)fd >= st->gen_len) {
    size_t len = st->gen_len ? st->gen_len : 64;
    while (len <= (size_t)fd) len *= 2;
    uint32_t *grown = realloc(st->gen, len * sizeof *grown);
    if (grown == NULL) return -ENOMEM;
    memset(grown + st->gen_len, 0, (len - st->gen_len) * sizeof *grown);
    st->gen = grown;
    st->gen_len = len;
  }
  st->gen[fd] = gen;
  return 0;
}

int np_selector_ctl(np_selector *sel, int op, int fd, unsigned interest) {
  ep_state *st = sel->raw;
  struct epoll_event ev = {0};
  if (sel->fd < 0 || st == NULL) return -EBADF;
  if (fd < 0) return -EBADF;  /* what epoll_ctl says, before any record is indexed */
  if (fd == sel->waker.read_fd) {
    /* The waker is ours; a user touching it would silently break trigger(). */
    return op == NP_CTL_ADD ? -EEXIST : op == NP_CTL_DEL ? -ENOENT : op == NP_CTL_MOD ? -EPERM : -EINVAL;
  }
  ev.events = interest_to_mask(interest);
  switch (op) {
    case NP_CTL_ADD: {
      /* A new registration, a new generation: events of an earlier one under this
       * number, still on their way, are told apart by it. On EEXIST nothing changes. */
      uint32_t gen = new_gen(st);
      ev.data.u64 = token(fd, gen);
      if (epoll_ctl(sel->fd, EPOLL_CTL_ADD, fd, &ev) < 0) return -errno;
      int err = record(st, fd, gen);
      if (err < 0) (void)epoll_ctl(sel->fd, EPOLL_CTL_DEL, fd, &ev);  /* all or nothing */
      return err;
    }
    case NP_CTL_MOD: {
      /* The same registration (its events on their way stay valid). A MOD the kernel
       * accepts for an fd with no record can only be one whose delete failed while
       * the fd was closed and whose (file, number) pair came back through dup2: it
       * starts a new generation. */
      uint32_t gen = recorded_gen(st, fd);
      if (gen == 0) gen = new_gen(st);
      ev.data.u64 = token(fd, gen);
      if (epoll_ctl(sel->fd, EPOLL_CTL_MOD, fd, &ev) < 0) return -errno;
      return record(st, fd, gen);
    }
    case NP_CTL_DEL: {
      /* Forgotten whatever the kernel says: after a failed delete (the fd was
       * closed) no event may reach a callback under this number either. */
      int err = epoll_ctl(sel->fd, EPOLL_CTL_DEL, fd, &ev) == 0 ? 0 : -errno;
      if ((size_t)fd < st->gen_len) st->gen[fd] = 0;
      return err;
    }
    default:
      return -EINVAL;
  }
}

int np_selector_wake(np_selector *sel) { return np_waker_wake(&sel->waker, sel->fd); }

int np_selector_wait(np_selector *sel, int cap, int timeout_ms, int *woke) {
  ep_state *st = sel->raw;
  struct epoll_event *raw = st->events;
  if (cap > MAX_POLL_EVENTS_CAP) cap = MAX_POLL_EVENTS_CAP;
  *woke = 0;
  int n = epoll_wait(sel->fd, raw, cap, timeout_ms);
  if (n < 0) return errno == EINTR ? 0 : -errno;
  const uint64_t waker = token(sel->waker.read_fd, 0);
  int kept = 0;
  for (int i = 0; i < n; i++) {
    if (raw[i].data.u64 == waker) {
      /* Edge-triggered eventfd, never read (as gnet): each write is a new edge. */
      *woke = 1;
      continue;
    }
    if (kept != i) raw[kept] = raw[i];
    kept++;
  }
  return kept;
}

int np_selector_collect(np_selector *sel, int n, np_event *out) {
  ep_state *st = sel->raw;
  const struct epoll_event *raw = st->events;
  int written = 0;
  for (int i = 0; i < n; i++) {
    int fd = (int)(uint32_t)raw[i].data.u64;
    uint32_t gen = (uint32_t)(raw[i].data.u64 >> 32);
    if (gen == 0 || recorded_gen(st, fd) != gen) continue;  /* a registration that is gone */
    out[written].fd = fd;
    out[written].event = (int32_t)raw[i].events;
    out[written].flags = 0;
    written++;
  }
  return written;
}

/* Asks the kernel whether `fd` is our epoll instance without touching any
 * registration that exists: a fresh eventfd (which no other instance can hold) is
 * added through our private descriptor and deleted through `fd`. That delete
 * succeeds only on our instance; anywhere else it fails (ENOENT on another epoll,
 * EINVAL on another kind of file, EBADF on a closed number) and changes nothing.
 * kcmp(KCMP_FILE) would say it in one call, but it is missing where the kernel
 * lacks CONFIG_KCMP and refused under common seccomp profiles (containers), and a
 * check that fails there would leave every poller's number open. When even the
 * eventfd cannot be made, the answer is "not proven ours": leaking a number is
 * better than closing one that another file took. */
int np_selector_owns(const np_selector *sel, int fd) {
  if (fd < 0 || sel->fd < 0) return 0;
  if (fd == sel->fd) return 1;
  int probe = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (probe < 0) return 0;
  struct epoll_event ev = {0};  /* no events: an eventfd never reports ERR/HUP */
  int owned = 0;
  if (epoll_ctl(sel->fd, EPOLL_CTL_ADD, probe, &ev) == 0) owned = epoll_ctl(fd, EPOLL_CTL_DEL, probe, &ev) == 0;
  close(probe);  /* also takes it out of our instance when the delete went elsewhere */
  return owned;
}

void np_selector_close(np_selector *sel) {
  /* Decided before anything closes: the check needs the private descriptor. */
  int close_user = sel->user_fd >= 0 && sel->user_fd != sel->fd && np_selector_owns(sel, sel->user_fd);
  np_waker_close(&sel->waker);
  if (close_user) close(sel->user_fd);
  sel->user_fd = -1;
  if (sel->fd >= 0) {
    close(sel->fd);
    sel->fd = -1;
  }
  ep_state *st = sel->raw;
  if (st != NULL) free(st->gen);
  free(st);
  sel->raw = NULL;
}
