// The waiter thread: the second way events reach the loop, for a selector whose
// descriptor the loop cannot watch (libkqueue's kqueue fd is the write end of a
// pipe), or when asked for (NETPOLL_WAITER_THREAD=1, openPoller({ waiterThread })).
//
// The thread blocks in np_selector_wait(-1), which leaves the batch in the
// selector's own list, and signals the loop (uv_async_t); it waits again only when
// the loop arms it, which the binding does after it took the batch and JavaScript
// consumed it. So at most one batch is ever out of the kernel, as with uv_poll.
// The thread never touches JavaScript, Node-API or the selector's registration
// records: the loop sorts out stale events when it collects the batch
// (np_selector_collect), against the records as they are then.
#ifndef NETPOLL_WAITER_H
#define NETPOLL_WAITER_H

#include <uv.h>

#include "selector.h"

class WaiterThread {
 public:
  // Sets up the async handle on `loop` (ref'd, as libuv makes it; handle()->data
  // is `data`). 0 or a negative errno; nothing to undo on failure.
  //
  // `slice_ms` (-1: none) bounds each wait in the kernel, after which the thread
  // looks at its state and waits again: for a selector without a private
  // descriptor (libkqueue), whose number the user can close behind the poller's
  // back, so that Join's wake, sent to that number, might never reach the thread.
  int Init(uv_loop_t* loop, np_selector* sel, uv_async_cb ready, void* data, int slice_ms);

  // Asks the thread for one more wait of at most `cap` events, starting the
  // thread the first time. If a batch already waits (it arrived while the loop
  // was paused, or the loop has not taken it yet), asks for its delivery on the
  // next loop turn instead; if a wait is under way already, does nothing.
  int Arm(int cap);

  // Takes the waiting batch: true with its size (the selector's list holds it, for
  // np_selector_collect; or a negative errno) and whether the waker fired. Loop
  // thread only; false when no batch waits.
  bool Take(int* n, int* woke);

  // Makes the thread return (through the selector's waker, should it be
  // blocked in the kernel) and joins it. Must run before the selector closes.
  void Join();

  // Frees what Init set up; after the async handle's close callback.
  void Release();

  uv_handle_t* handle() { return reinterpret_cast<uv_handle_t*>(&async_); }

 private:
  // Where the thread and the loop are, guarded by mu_. The transitions:
  //   Idle     -> Waiting   Arm: the loop wants a batch (the thread wakes up, or starts)
  //   Waiting  -> Ready     the thread's wait returned events, a wake or an error
  //   Waiting  -> Waiting   the wait returned nothing (EINTR, a slice's end): it waits again
  //   Ready    -> Idle      Take: the loop took the batch
  //   Waiting  -> Idle      Arm could not start the thread: undone
  //   any      -> Quitting  Join
  // Nothing leaves Quitting. The thread waits in the kernel only in Waiting, and
  // touches the selector's event list only then; the loop reads it only after
  // Take, until its next Arm.
  enum class State { Idle, Waiting, Ready, Quitting };

  // The one place state_ changes (mu_ held): makes the transition if the table
  // above allows it from the current state, and says whether it did.
  bool MoveTo(State next);

  static void Run(void* arg);

  np_selector* sel_ = nullptr;
  int slice_ms_ = -1;
  uv_async_t async_;
  uv_mutex_t mu_;
  uv_cond_t cv_;
  uv_thread_t thread_;
  // Guarded by mu_:
  State state_ = State::Idle;
  int cap_ = 0;    // for the next wait
  int n_ = 0;      // the batch waiting in Ready
  int woke_ = 0;
  // Loop thread only:
  bool started_ = false;
  bool initialized_ = false;
};

#endif
