#include "waiter.h"

#include <pthread.h>
#include <signal.h>
#if defined(__linux__)
#include <sys/prctl.h>
#elif defined(__FreeBSD__)
#include <pthread_np.h>
#endif

#include <cerrno>
#include <cstdlib>
#include <cstring>

int WaiterThread::Init(uv_loop_t* loop, np_selector* sel, uv_async_cb ready, void* data) {
  const np_backend_info* backend = np_backend();
  buf_ = static_cast<np_event*>(std::calloc(static_cast<size_t>(backend->max_poll_events_cap), sizeof(np_event)));
  if (buf_ == nullptr) return UV_ENOMEM;
  int err = uv_mutex_init(&mu_);
  if (err < 0) {
    std::free(buf_);
    buf_ = nullptr;
    return err;
  }
  err = uv_cond_init(&cv_);
  if (err < 0) {
    uv_mutex_destroy(&mu_);
    std::free(buf_);
    buf_ = nullptr;
    return err;
  }
  err = uv_async_init(loop, &async_, ready);
  if (err < 0) {
    uv_cond_destroy(&cv_);
    uv_mutex_destroy(&mu_);
    std::free(buf_);
    buf_ = nullptr;
    return err;
  }
  async_.data = data;
  sel_ = sel;
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
    while (!w->armed_ && !w->quit_) uv_cond_wait(&w->cv_, &w->mu_);
    if (w->quit_) break;
    int cap = w->cap_;
    uv_mutex_unlock(&w->mu_);
    int woke = 0;
    int n = np_selector_wait(w->sel_, w->buf_, cap, -1, &woke);
    uv_mutex_lock(&w->mu_);
    if (w->quit_) break;
    if (n > 0 && !w->deleted_.empty()) n = w->Filter(n);
    w->deleted_.clear();
    if (n == 0 && !woke) continue;  // EINTR (or only stale events): still armed, wait again
    w->armed_ = false;
    w->pending_ = true;
    w->n_ = n;
    w->woke_ = woke;
    uv_async_send(&w->async_);
  }
  uv_mutex_unlock(&w->mu_);
}

int WaiterThread::Arm(int cap) {
  uv_mutex_lock(&mu_);
  if (pending_) {
    uv_mutex_unlock(&mu_);
    return uv_async_send(&async_);
  }
  cap_ = cap;
  armed_ = true;
  if (!started_) {
    uv_thread_options_t options;
    options.flags = UV_THREAD_HAS_STACK_SIZE;
    options.stack_size = 256 * 1024;  // the wait needs little: the event array is on the heap
    int err = uv_thread_create_ex(&thread_, &options, Run, this);
    if (err < 0) {
      armed_ = false;
      uv_mutex_unlock(&mu_);
      return err;
    }
    started_ = true;
  }
  uv_cond_signal(&cv_);
  uv_mutex_unlock(&mu_);
  return 0;
}

// Drops the events of deleted fds from buf_[0..n); returns how many are left.
int WaiterThread::Filter(int n) {
  int kept = 0;
  for (int i = 0; i < n; i++) {
    bool stale = false;
    for (int fd : deleted_) stale = stale || buf_[i].fd == fd;
    if (!stale) buf_[kept++] = buf_[i];
  }
  return kept;
}

void WaiterThread::DropEventsFor(int fd) {
  if (!initialized_) return;
  uv_mutex_lock(&mu_);
  if (pending_ && n_ > 0) {
    deleted_.assign(1, fd);
    n_ = Filter(n_);
    deleted_.clear();
    // An empty batch still goes to the loop when it carries a wake; else there is
    // nothing to deliver, and the thread must wait again when next armed.
    if (n_ == 0 && !woke_) pending_ = false;
  } else if (armed_ && !pending_) {
    deleted_.push_back(fd);
  }
  uv_mutex_unlock(&mu_);
}

void WaiterThread::KeepEventsFor(int fd) {
  if (!initialized_) return;
  uv_mutex_lock(&mu_);
  for (size_t i = 0; i < deleted_.size(); i++) {
    if (deleted_[i] == fd) {
      deleted_[i] = deleted_.back();
      deleted_.pop_back();
      break;
    }
  }
  uv_mutex_unlock(&mu_);
}

bool WaiterThread::Take(np_event* out, int* n, int* woke) {
  uv_mutex_lock(&mu_);
  if (!pending_) {
    uv_mutex_unlock(&mu_);
    return false;
  }
  if (n_ > 0) std::memcpy(out, buf_, sizeof(np_event) * static_cast<size_t>(n_));
  *n = n_;
  *woke = woke_;
  pending_ = false;
  uv_mutex_unlock(&mu_);
  return true;
}

void WaiterThread::Join() {
  if (!initialized_ || !started_) return;
  uv_mutex_lock(&mu_);
  quit_ = true;
  uv_cond_signal(&cv_);
  uv_mutex_unlock(&mu_);
  // Blocked in the kernel, it sees quit_ only once the wait returns. A wake
  // that finds it elsewhere stays pending in the selector, which closes next.
  np_waker_wake(&sel_->waker, sel_->fd);
  uv_thread_join(&thread_);
  started_ = false;
}

void WaiterThread::Release() {
  if (!initialized_) return;
  uv_cond_destroy(&cv_);
  uv_mutex_destroy(&mu_);
  std::free(buf_);
  buf_ = nullptr;
  initialized_ = false;
}
