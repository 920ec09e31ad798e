#include "waiter.h"

#include <pthread.h>
#include <signal.h>
#if defined(__linux__)
#include <sys/prctl.h>
#elif defined(__FreeBSD__)
#include <pthread_np.h>
#endif

#include <cerrno>

int WaiterThread::Init(uv_loop_t* loop, np_selector* sel, uv_async_cb ready, void* data, int slice_ms) {
  int err = uv_mutex_init(&mu_);
  if (err < 0) return err;
  err = uv_cond_init(&cv_);
  if (err < 0) {
    uv_mutex_destroy(&mu_);
    return err;
  }
  err = uv_async_init(loop, &async_, ready);
  if (err < 0) {
    uv_cond_destroy(&cv_);
    uv_mutex_destroy(&mu_);
    return err;
  }
  async_.data = data;
  sel_ = sel;
  slice_ms_ = slice_ms;
  state_ = State::Idle;
  initialized_ = true;
  return 0;
}

// A name that ps, debuggers and the tests can find the thread by. On Linux through
// prctl rather than pthread_setname_np, which would raise the prebuilds' glibc floor
// to 2.34.
static void NameThisThread() {
#if defined(__APPLE__)
  pthread_setname_np("netpoll-waiter");
#elif defined(__linux__)
  prctl(PR_SET_NAME, "netpoll-waiter", 0, 0, 0);
#elif defined(__FreeBSD__)
  pthread_setname_np(pthread_self(), "netpoll-waiter");
#endif
}

bool WaiterThread::MoveTo(State next) {
  bool allowed = false;
  switch (next) {
    case State::Waiting: allowed = state_ == State::Idle || state_ == State::Waiting; break;
    case State::Ready: allowed = state_ == State::Waiting; break;
    case State::Idle: allowed = state_ == State::Ready || state_ == State::Waiting; break;
    case State::Quitting: allowed = true; break;
  }
  if (allowed) state_ = next;
  return allowed;
}

void WaiterThread::Run(void* arg) {
  auto* w = static_cast<WaiterThread*>(arg);
  NameThisThread();
  // Signals belong to the loop thread; here they would only interrupt the wait.
  sigset_t all;
  sigfillset(&all);
  // sigprocmask is per-thread on Linux and, unlike pthread_sigmask, needs no
  // glibc newer than 2.2.5 (pthread_sigmask moved into libc at 2.32).
#if defined(__linux__)
  sigprocmask(SIG_BLOCK, &all, nullptr);
#else
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
#endif

  uv_mutex_lock(&w->mu_);
  for (;;) {
    while (w->state_ != State::Waiting && w->state_ != State::Quitting) uv_cond_wait(&w->cv_, &w->mu_);
    if (w->state_ == State::Quitting) break;
    int cap = w->cap_;
    uv_mutex_unlock(&w->mu_);
    int woke = 0;
    int n = np_selector_wait(w->sel_, cap, w->slice_ms_, &woke);
    uv_mutex_lock(&w->mu_);
    if (w->state_ == State::Quitting) break;
    if (n == 0 && !woke) continue;  // EINTR or a slice's end: still Waiting, wait again
    if (!w->MoveTo(State::Ready)) continue;
    w->n_ = n;
    w->woke_ = woke;
    uv_async_send(&w->async_);
  }
  uv_mutex_unlock(&w->mu_);
}

int WaiterThread::Arm(int cap) {
  uv_mutex_lock(&mu_);
  switch (state_) {
    case State::Ready:
      uv_mutex_unlock(&mu_);
      return uv_async_send(&async_);
    case State::Waiting:
    case State::Quitting:
      uv_mutex_unlock(&mu_);
      return 0;
    case State::Idle:
      break;
  }
  cap_ = cap;
  MoveTo(State::Waiting);
  if (!started_) {
    uv_thread_options_t options;
    options.flags = UV_THREAD_HAS_STACK_SIZE;
    options.stack_size = 256 * 1024;  // the wait needs little: the event list is on the heap
    int err = uv_thread_create_ex(&thread_, &options, Run, this);
    if (err < 0) {
      MoveTo(State::Idle);  // undone: the thread that was to wait never started
      uv_mutex_unlock(&mu_);
      return err;
    }
    started_ = true;
  }
  uv_cond_signal(&cv_);
  uv_mutex_unlock(&mu_);
  return 0;
}

bool WaiterThread::Take(int* n, int* woke) {
  uv_mutex_lock(&mu_);
  if (state_ != State::Ready) {
    uv_mutex_unlock(&mu_);
    return false;
  }
  *n = n_;
  *woke = woke_;
  MoveTo(State::Idle);
  uv_mutex_unlock(&mu_);
  return true;
}

void WaiterThread::Join() {
  if (!initialized_ || !started_) return;
  uv_mutex_lock(&mu_);
  MoveTo(State::Quitting);
  uv_cond_signal(&cv_);
  uv_mutex_unlock(&mu_);
  // Blocked in the kernel, it sees Quitting only once the wait returns. A wake
  // that finds it elsewhere stays pending in the selector, which closes next.
  np_selector_wake(sel_);
  uv_thread_join(&thread_);
  started_ = false;
}

void WaiterThread::Release() {
  if (!initialized_) return;
  uv_cond_destroy(&cv_);
  uv_mutex_destroy(&mu_);
  initialized_ = false;
}
