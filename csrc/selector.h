/*
 * The poller core's one interface: a selector (epoll or kqueue) with its waker.
 *
 * Plain C, no Node headers: the binding glues this to Node-API and libuv. Every
 * function that can fail returns 0 (or a count) on success and a negative errno
 * on failure, as libuv does, so the binding never has to read errno itself.
 *
 * Each backend lives in its own file (selector_epoll.c, selector_kqueue.c) and
 * is chosen at build time; the waker (waker_eventfd.c, waker_kqueue.c) is
 * separate because its mechanism varies independently of the selector's.
 */
#ifndef NETPOLL_SELECTOR_H
#define NETPOLL_SELECTOR_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a registration asks for; the backend translates it to its own masks. */
enum {
  NP_INTEREST_READ = 1,
  NP_INTEREST_WRITE = 2,
  NP_INTEREST_EDGE = 4
};

/* Registration operations. MOD replaces the interest set (epoll) or adds and
 * removes filters to reach it (kqueue). */
enum {
  NP_CTL_ADD = 1,
  NP_CTL_MOD = 2,
  NP_CTL_DEL = 3
};

/* One delivered event, laid out as three int32 so that JavaScript can read a
 * whole batch from one Int32Array without a native call per event. */
typedef struct np_event {
  int32_t fd;
  int32_t event;  /* epoll: the events mask; kqueue: the filter */
  int32_t flags;  /* epoll: 0; kqueue: the kevent flags */
} np_event;

/* The numbers a backend exports to JavaScript (gnet's defs_poller_*.go). */
typedef struct np_backend_info {
  const char *name;            /* "epoll" | "kqueue" */
  int init_poll_events_cap;
  int max_poll_events_cap;
  int min_poll_events_cap;
  int max_async_tasks_at_one_time;
  int32_t read_events;
  int32_t write_events;
  int32_t read_write_events;
  int32_t err_events;
  /* 1 when an event is a kqueue filter compared by equality, 0 for an epoll mask. */
  int events_are_filters;
  /* Syscall names as gnet puts them in its errors, per operation. */
  const char *syscall_add;
  const char *syscall_mod_read;
  const char *syscall_mod_read_write;
  const char *syscall_del;
  const char *syscall_wait;
} np_backend_info;

/* The waker: makes a blocked or future wait return with `woke` set. */
typedef struct np_waker {
  int read_fd;   /* eventfd or pipe read end; -1 with EVFILT_USER */
  int write_fd;  /* eventfd (same as read_fd) or pipe write end; -1 with EVFILT_USER */
  /* The EVFILT_USER ident: unique among the process's live pollers (the waker's own
   * address), so that asking a kqueue about it (np_selector_owns) cannot touch a
   * user event of another poller. Unused by the other wakers. */
  uintptr_t ident;
} np_waker;

typedef struct np_selector {
  /* The descriptor every operation of the core uses (ctl, wait, wake, and the
   * binding's uv_poll_t): a private duplicate of user_fd, which users cannot reach
   * by number, so a user closing poller.fd can neither make libuv watch a dead fd
   * (it aborts the process) nor point the core at another file that took the
   * number. Under libkqueue, which knows a kqueue only by its number, it is user_fd. */
  int fd;
  /* The number handed to users (poller.fd). The core never operates on it: it only
   * checks that it still refers to this selector (np_selector_owns) and closes it
   * at the end only if so. */
  int user_fd;
  np_waker waker;
  void *raw;        /* the backend's own state: its event list and its registration records */
  /* 1 when `fd` itself turns readable while events wait, so an event loop can
   * watch it (epoll, native kqueue). 0 under libkqueue, whose descriptor is the
   * write end of an internal pipe: the binding must then wait on a thread. */
  int pollable;
} np_selector;

const np_backend_info *np_backend(void);

/* Opens the selector and its waker. On failure returns -errno, names the failing
 * syscall in *failed_syscall, and leaves nothing open. */
int np_selector_open(np_selector *sel, const char **failed_syscall);

/* Registers, modifies or removes `fd` with the given NP_INTEREST_* bits. Both
 * backends report the same errors for the same misuse: ADD of a registered fd
 * gives -EEXIST (and changes nothing), MOD or DEL of an unregistered one -ENOENT,
 * any op on a closed fd -EBADF (docs/backends.md has the whole table).
 *
 * The core keeps a record per registered fd with a generation number that every
 * ADD renews and that the kernel registration carries (epoll_event.data, kevent
 * udata); np_selector_collect drops events whose generation is not the fd's
 * current one. The records belong to the thread that calls ctl and collect. */
int np_selector_ctl(np_selector *sel, int op, int fd, unsigned interest);

/* Waits up to timeout_ms (0: do not block, -1: forever) for at most `cap` events
 * and leaves them in the selector's own list for np_selector_collect. Waker events
 * are not kept: they set *woke instead. Returns how many were kept (EINTR counts
 * as 0) or -errno.
 *
 * May run on another thread than np_selector_ctl and np_selector_wake (the binding's
 * waiter thread), but never on two threads at once, and never while the previous
 * wait's events are still to be collected. It reads no registration record. */
int np_selector_wait(np_selector *sel, int cap, int timeout_ms, int *woke);

/* Writes the first `n` events of the last wait to `out`, except those that no
 * longer belong to a current registration: their fd was deleted since, or deleted
 * and added again (maybe as another file under the same number). Returns how many
 * it wrote. Must run on the thread that calls np_selector_ctl. */
int np_selector_collect(np_selector *sel, int n, np_event *out);

/* Makes a blocked or future np_selector_wait return with *woke set: 0 or -errno. */
int np_selector_wake(np_selector *sel);

/* Whether `fd` refers to this selector (user_fd, unless it was closed behind the
 * core's back and maybe reused): 1 or 0. It has no effect on this selector or any
 * other, so it may run on any thread while the selector is open. */
int np_selector_owns(const np_selector *sel, int fd);

/* Closes the waker and the selector, and user_fd only if it still refers to this
 * selector (never a number that another file took since). Safe to call twice. */
void np_selector_close(np_selector *sel);

/* Waker, implemented per mechanism (the selector's own functions use them).
 * `np_waker_open` registers the waker with the selector descriptor it is given. */
int np_waker_open(np_waker *waker, int selector_fd, const char **failed_syscall);
int np_waker_wake(np_waker *waker, int selector_fd);
/* Consumes what wakes left behind (the pipe's bytes), so that a level-triggered
 * waker stops reporting; a no-op for eventfd and EVFILT_USER, which need none. */
void np_waker_drain(np_waker *waker);
void np_waker_close(np_waker *waker);
/* kqueue wakers only: 1 when the waker is registered with the kqueue `fd`, 0 when
 * not (another kqueue, another file), asked in a way that changes nothing there or
 * anywhere else. np_selector_owns uses it. */
int np_waker_registered(const np_waker *waker, int fd);

#ifdef __cplusplus
}
#endif

#endif
