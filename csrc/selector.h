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
} np_waker;

typedef struct np_selector {
  int fd;           /* the epoll or kqueue descriptor */
  np_waker waker;
  void *raw;        /* the backend's own state: its event array (and, on kqueue, what is registered) */
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
 * gives -EEXIST, MOD or DEL of an unregistered one -ENOENT, any op on a closed
 * fd -EBADF (docs/backends.md has the whole table). */
int np_selector_ctl(np_selector *sel, int op, int fd, unsigned interest);

/* Waits up to timeout_ms (0: do not block, -1: forever) and writes at most
 * `cap` events to `out`. Waker events are not written: they set *woke instead.
 * Returns the number written (EINTR counts as 0) or -errno.
 *
 * May run on another thread than np_selector_ctl and np_waker_wake (the
 * binding's waiter thread), but never on two threads at once. */
int np_selector_wait(np_selector *sel, np_event *out, int cap, int timeout_ms, int *woke);

/* Closes the waker and the selector. Safe to call twice. */
void np_selector_close(np_selector *sel);

/* Waker, implemented per mechanism. `np_waker_open` registers the waker with
 * the selector descriptor it is given. */
int np_waker_open(np_waker *waker, int selector_fd, const char **failed_syscall);
int np_waker_wake(np_waker *waker, int selector_fd);
/* Consumes what wakes left behind (the pipe's bytes), so that a level-triggered
 * waker stops reporting; a no-op for eventfd and EVFILT_USER, which need none. */
void np_waker_drain(np_waker *waker);
void np_waker_close(np_waker *waker);

#ifdef __cplusplus
}
#endif

#endif
