/* The epoll selector (Linux), after gnet's poller_epoll_default.go. */
#include "selector.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
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

int np_selector_open(np_selector *sel, const char **failed_syscall) {
  sel->fd = -1;
  sel->waker.read_fd = sel->waker.write_fd = -1;
  sel->pollable = 1;  /* an epoll fd is readable while events wait */
  sel->raw = calloc(MAX_POLL_EVENTS_CAP, sizeof(struct epoll_event));
  if (sel->raw == NULL) {
    *failed_syscall = "malloc";
    return -ENOMEM;
  }
  sel->fd = epoll_create1(EPOLL_CLOEXEC);
  if (sel->fd < 0) {
    int err = -errno;
    *failed_syscall = "epoll_create1";
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

static uint32_t interest_to_mask(unsigned interest) {
  uint32_t mask = 0;
  if (interest & NP_INTEREST_READ) mask |= READ_EVENTS;
  if (interest & NP_INTEREST_WRITE) mask |= WRITE_EVENTS;
  /* gnet adds RDHUP only with ET: a level-triggered RDHUP would fire forever. */
  if (interest & NP_INTEREST_EDGE) mask |= EPOLLET | EPOLLRDHUP;
  return mask;
}

int np_selector_ctl(np_selector *sel, int op, int fd, unsigned interest) {
  struct epoll_event ev = {0};
  int epoll_op;
  switch (op) {
    case NP_CTL_ADD: epoll_op = EPOLL_CTL_ADD; break;
    case NP_CTL_MOD: epoll_op = EPOLL_CTL_MOD; break;
    case NP_CTL_DEL: epoll_op = EPOLL_CTL_DEL; break;
    default: return -EINVAL;
  }
  ev.events = interest_to_mask(interest);
  ev.data.fd = fd;
  if (epoll_op != EPOLL_CTL_DEL && sel->fd >= 0 && fd == sel->waker.read_fd) {
    /* The waker is ours; a user touching it would silently break trigger(). */
    return epoll_op == EPOLL_CTL_ADD ? -EEXIST : -EPERM;
  }
  if (epoll_op == EPOLL_CTL_DEL && fd == sel->waker.read_fd) return -ENOENT;
  return epoll_ctl(sel->fd, epoll_op, fd, &ev) == 0 ? 0 : -errno;
}

int np_selector_wait(np_selector *sel, np_event *out, int cap, int timeout_ms, int *woke) {
  struct epoll_event *raw = sel->raw;
  if (cap > MAX_POLL_EVENTS_CAP) cap = MAX_POLL_EVENTS_CAP;
  *woke = 0;
  int n = epoll_wait(sel->fd, raw, cap, timeout_ms);
  if (n < 0) return errno == EINTR ? 0 : -errno;
  int written = 0;
  for (int i = 0; i < n; i++) {
    if (raw[i].data.fd == sel->waker.read_fd) {
      /* Edge-triggered eventfd, never read (as gnet): each write is a new edge. */
      *woke = 1;
      continue;
    }
    out[written].fd = raw[i].data.fd;
    out[written].event = (int32_t)raw[i].events;
    out[written].flags = 0;
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
  free(sel->raw);
  sel->raw = NULL;
}
