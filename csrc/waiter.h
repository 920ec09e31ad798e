// The waiter thread: the second way events reach the loop, for a selector whose
// descriptor the loop cannot watch (libkqueue's kqueue fd is the write end of a
// pipe), or when asked for (NETPOLL_WAITER_THREAD=1, openPoller({ waiterThread })).
//
// The thread blocks in np_selector_wait(-1), leaves the batch in its own buffer
// and signals the loop (uv_async_t); it waits again only when the loop arms it,
// which the binding does after JavaScript consumed the batch. So at most one
// batch is ever out of the kernel, as with uv_poll. The thread never touches
// JavaScript or Node-API; only libuv, the selector and its own buffer.
#ifndef NETPOLL_WAITER_H
#define NETPOLL_WAITER_H

#include <uv.h>

#include <vector>

#include "selector.h"

class WaiterThread {
 public:
  // Sets up the async handle on `loop` (ref'd, as libuv makes it; handle()->data
  // is `data`) and the buffer. 0 or a negative errno; nothing to undo on failure.
  int Init(uv_loop_t* loop, np_selector* sel, uv_async_cb ready, void* data);

  // Asks the thread for one more wait of at most `cap` events, starting the
  // thread the first time. If a batch already waits (it arrived while the loop
  // was paused), asks for its delivery on the next loop turn instead.
  int Arm(int cap);

  // Moves the waiting batch into `out` (the shared event list) and tells its
  // size. Loop thread only; false when no batch waits.
  bool Take(np_event* out, int* n, int* woke);

  // delete(fd) happened: events for fd that the thread already read are stale
  // (the number may be reused). Drops them from the waiting batch, and from the
  // batch the thread may be bringing back right now.
  void DropEventsFor(int fd);

  // add(fd) happened: events the thread reads for fd from now on are new.
  void KeepEventsFor(int fd);

  // Makes the thread return (through the selector's waker, should it be
  // blocked in the kernel) and joins it. Must run before the selector closes.
  void Join();

  // Frees what Init allocated; after the async handle's close callback.
  void Release();

  uv_handle_t* handle() { return reinterpret_cast<uv_handle_t*>(&async_); }

 private:
  static void Run(void* arg);
  int Filter(int n);

  np_selector* sel_ = nullptr;
  uv_async_t async_;
  uv_mutex_t mu_;
  uv_cond_t cv_;
  uv_thread_t thread_;
  np_event* buf_ = nullptr;  // written by the thread between Arm and the batch
  // Guarded by mu_:
  int cap_ = 0;
  int n_ = 0;
  int woke_ = 0;
  bool armed_ = false;    // the loop wants one more wait
  bool pending_ = false;  // a batch waits in buf_ for the loop
  bool quit_ = false;
  std::vector<int> deleted_;  // fds deleted while the thread was in the kernel
  // Loop thread only:
  bool started_ = false;
  bool initialized_ = false;
};

#endif
