// Node-API glue for the poller core: argument checks, handles, and the one
// call into JavaScript per batch. Policy (dispatch, task queues, errors) lives
// in src/; state and syscalls live in the C core (selector.h). The socket
// toolkit's glue is binding_socket.cc, remote triggers' binding_remote.cc.
//
// No globals: everything per environment hangs off AddonData (instance data),
// so the addon is context-aware and works in worker threads and Electron.

#include <napi.h>
#include <uv.h>

#include <fcntl.h>

#include <cerrno>
#include <cstddef>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>


#include "args.h"
#include "binding_socket.h"
#include "remote.h"
#include "selector.h"
#include "taskq.h"
#include "waiter.h"

namespace {

struct AddonData;
class NativePoller;

// What start() captures: the batch function (held strongly only while polling,
// so an idle poller can be collected), the async resource and its context.
struct CallbackState {
  napi_ref on_batch = nullptr;
  napi_ref resource = nullptr;
  napi_async_context ctx = nullptr;
};

// Where a wake from this thread stands (LocalWake's transitions are in ArmWake, OnIdle,
// OnPollReady and OnCheck). On the loop path a trigger on the poller's own thread needs
// no syscall: an active idle handle keeps libuv's poll from blocking, and the check
// handle runs the chores round after the poll phase's I/O. The waker (eventfd,
// EVFILT_USER or pipe) is written only by other threads, and on the waiter-thread path.
// As in gnet, a round runs after a kernel wait that began after the trigger: the
// round goes with the I/O of the loop turn whose poll phase follows the trigger.
//   None     no local wake pending.
//   Pending  armed, and this turn's poll phase may have passed already (a trigger
//            from a callback, a task, a promise reaction): wait for the idle phase,
//            which comes before a poll phase.
//   Ready    the idle phase ran, so a poll phase including this poller's fd came
//            after the trigger: the round runs with this poller's batch if that poll
//            reported its fd, else in the check phase, with no events.
//   Written  waiter-thread path: the waker was written, and the round comes with the
//            thread's next batch (OnWaiterReady), unless the run pauses first.
// While Paused (an iteration's consumer is busy) the backend fd is not watched, so
// neither its events nor the waker reach the loop; tasks must run all the same (a
// loop body may await one). An armed wake then runs its round in the check phase,
// with no events (Pending -> Ready -> OnCheck), on both paths; other threads reach a
// paused poller through `paused_wake` (WakeFromOtherThread).
enum class LocalWake { None, Pending, Ready, Written };

// Where a poller's run stands. The transitions, all made by MoveTo (which also does
// what each one means for libuv, the waiter thread and the callback state):
//   Idle     -> Watching  start(): the run's callback state is held, the backend fd
//                         watched (uv_poll, or the waiter thread armed), and poller.fd is
//                         due for a check at the first batch. If the fd cannot be watched,
//                         the run ends at once: back to Idle, callback state released.
//   Watching -> Paused    pause() (once the batch is over, when asked inside one): the
//                         fd is no longer watched; the callback state is kept.
//   Paused   -> Watching  resume()
//   Watching, Paused -> Idle    stop(): no longer watched, callback state released
//                         (after the batch, when stopped inside one)
//   Idle, Watching, Paused -> Closed   close(): as stop(), then CloseCore tears down.
// Nothing leaves Closed. Batches are read and delivered only in Watching.
enum class RunState { Idle, Watching, Paused, Closed };

// Where the one call into JavaScript per batch stands (DeliverBatch). The transitions,
// all made by MoveBatchTo:
//   None              -> InBatch            the batch's make_callback begins
//   InBatch           -> InBatchPauseAsked  pause() inside it: made when it returns, so
//                                           that a consumer asking for more in the
//                                           batch's microtasks costs no stop and restart
//   InBatchPauseAsked -> InBatch            resume(), stop() or close() inside it
//   InBatch, InBatchPauseAsked -> None      make_callback returned
enum class BatchState { None, InBatch, InBatchPauseAsked };

// Whether the run's first batch still has to check that poller.fd is the poller's:
// closed behind its back in the tick that started the run, start() could not see it.
//   Done -> Due   Idle -> Watching (MoveTo)
//   Due  -> Done  the first batch (TakeUserFdCheck)
enum class UserFdCheck { Done, Due };

// The native half of one poller. It lives apart from the JS wrapper because
// libuv owns its handle until uv_close's callback, which may come after the
// wrapper was collected (or before, when the environment tears down first).
//
// Events reach the loop one of two ways: the loop watches the selector fd
// (uv_poll_t) and reads it when readable, or, when that fd cannot be watched
// (libkqueue) or when asked, a waiter thread reads it and hands each batch
// over (uv_async_t). Everything after the read is the same.
struct PollerCore {
  np_selector sel;
  uv_poll_t poll;        // unless threaded
  WaiterThread waiter;   // if threaded
  napi_env env = nullptr;
  AddonData* addon = nullptr;
  NativePoller* owner = nullptr;  // null once the wrapper is finalized
  PollerCore* prev = nullptr;     // the environment's list of open cores
  PollerCore* next = nullptr;
  napi_ref events_ref = nullptr;  // the shared event list (an Int32Array given to open())
  int cap = 0;                    // current event-list size (gnet's el.size)
  uint64_t last_batch_ns = 0;     // uv_hrtime() of the last batch delivered (0: none yet)
  CallbackState cb;               // held in Watching and Paused
  CallbackState retired;          // stopped during a batch, released after it
  napi_async_context batch_ctx = nullptr;  // the context make_callback is using
  RunState run = RunState::Idle;  // changed only by MoveTo
  BatchState batch = BatchState::None;  // changed only by MoveBatchTo
  UserFdCheck user_fd_check = UserFdCheck::Done;
  bool threaded = false;  // settings: events come from the waiter thread,
  bool refd = true;       // and the handle is ref'd while watching (setRef)
  int32_t* shared_signals = nullptr;  // Signals() when the event list cannot be detached
  // The request queue of trigger() from other threads. Its wake flag is gnet's
  // wakeupCall for every trigger, local or remote: at most one wake pending.
  np_taskq* tasks = nullptr;
  RemoteOwner* remote = nullptr;  // once handle() registered this poller
  uv_idle_t idle;
  uv_check_t check;
  LocalWake local_wake = LocalWake::None;
  // Other threads' wake while Paused: the waker is written all the same, but nobody
  // reads the backend fd then. `paused` mirrors run == Paused for those threads.
  uv_async_t paused_wake;
  std::atomic<bool> paused{false};
  int handles_open = 0;  // uv handles whose close callback is still to come
};

// Every open poller's descriptors, process-wide: the one piece of state shared by
// all environments. Descriptors belong to the process, not to a thread, so a
// worker's close(n) must be refused for a poller that another thread owns as much
// as for its own: otherwise the number is reused under that poller, and its
// close() later closes whatever file took it. Guarded by a mutex (close() runs on
// any thread), and never destroyed: worker threads may still use it while the
// process exits.
class FdRegistry {
 public:
  static FdRegistry& Get() {
    static FdRegistry* registry = new FdRegistry();
    return *registry;
  }

  // An opened selector's descriptors: the number users see, the private one, the waker's.
  void Add(np_selector* sel) {
    std::lock_guard<std::mutex> lock(mu_);
    int fds[] = {sel->user_fd, sel->fd, sel->waker.read_fd, sel->waker.write_fd};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
      bool seen = fds[i] < 0;
      for (size_t k = 0; k < i && !seen; k++) seen = fds[k] == fds[i];
      if (!seen) entries_.push_back(Entry{fds[i], sel, fds[i] == sel->user_fd});
    }
  }

  // Forgets the selector's descriptors and closes it, as one step against a
  // close(n) on another thread (np_selector_close closes user_fd only if it is
  // still this selector's).
  void Close(np_selector* sel) {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < entries_.size();) {
      if (entries_[i].sel == sel) {
        entries_[i] = entries_.back();
        entries_.pop_back();
      } else {
        i++;
      }
    }
    np_selector_close(sel);
  }

  // The number users see no longer refers to the selector (closed behind its back,
  // maybe reused): it is not the poller's to guard or to close any more.
  void Disown(np_selector* sel) {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < entries_.size(); i++) {
      if (entries_[i].sel == sel && entries_[i].user) {
        entries_[i] = entries_.back();
        entries_.pop_back();
        break;
      }
    }
    sel->user_fd = -1;
  }

  // 0 when `fd` is no open poller's descriptor (and may be closed), else -EBUSY. A
  // poller's user number that no longer refers to it (closed and reused by the
  // caller's own file) is let go of here, so its new owner can close it.
  int MayClose(int fd) {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < entries_.size();) {
      const Entry& e = entries_[i];
      if (e.fd != fd) {
        i++;
      } else if (e.user && !np_selector_owns(e.sel, fd)) {
        entries_[i] = entries_.back();
        entries_.pop_back();
      } else {
        return -EBUSY;
      }
    }
    return 0;
  }

 private:
  struct Entry {
    int fd;
    // Read from other threads by MayClose: the selector's private descriptor and
    // waker do not change while it is open, and it closes only under mu_.
    np_selector* sel;
    bool user;  // fd is the number users see
  };
  std::mutex mu_;
  std::vector<Entry> entries_;
};

}  // namespace

// binding_socket.h: close(fd) asks the registry first.
int MayCloseFd(int fd) { return FdRegistry::Get().MayClose(fd); }

namespace {

// How long a waiter thread waits in the kernel at most when the user can close
// the descriptor it waits on (WaiterThread::Init): close() then takes at most this.
constexpr int kUnguardedWaitSliceMs = 200;

struct AddonData {
  PollerCore* open_cores = nullptr;
  int closing = 0;  // uv_close callbacks still to come
  napi_async_cleanup_hook_handle teardown_hook = nullptr;
  bool tearing_down = false;
};

uv_handle_t* CoreHandle(PollerCore* c) {
  return c->threaded ? c->waiter.handle() : reinterpret_cast<uv_handle_t*>(&c->poll);
}

void UnlinkCore(PollerCore* c) {
  if (c->prev) c->prev->next = c->next;
  else if (c->addon->open_cores == c) c->addon->open_cores = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = nullptr;
}

void ReleaseCallbackState(napi_env env, CallbackState* s) {
  if (s->ctx) napi_async_destroy(env, s->ctx);
  if (s->on_batch) napi_delete_reference(env, s->on_batch);
  if (s->resource) napi_delete_reference(env, s->resource);
  *s = CallbackState();
}

void OnCheck(uv_check_t* handle);
void OnPollReady(uv_poll_t* handle, int status, int events);

void OnIdle(uv_idle_t* handle) {
  PollerCore* c = static_cast<PollerCore*>(handle->data);
  if (c->local_wake == LocalWake::Pending) c->local_wake = LocalWake::Ready;
}

void StartLocalWake(PollerCore* c) {
  uv_idle_start(&c->idle, OnIdle);
  uv_check_start(&c->check, OnCheck);
}

void StopLocalWake(PollerCore* c) {
  uv_idle_stop(&c->idle);
  uv_check_stop(&c->check);
  uv_unref(reinterpret_cast<uv_handle_t*>(&c->idle));
}

// Two int32 after the event list's MaxPollEventsCap entries, shared with src/poller.ts:
// [kInBatch] is 1 while a batch's callback (and its microtasks) runs; JavaScript sets
// [kWakeRequest] then instead of calling wake(), and the round is armed when the batch
// returns: one native call less per round.
enum { kInBatch = 0, kWakeRequest = 1, kSignalCount = 2 };

// The signals: null when the list has no room for them or is gone. On a SharedArrayBuffer
// (what src/poller.ts makes) they stay where they are for the poller's life; on any
// other buffer they are looked up again at every use, as EventList does (JavaScript could
// have detached it since).
int32_t* Signals(PollerCore* c) {
  if (c->shared_signals != nullptr) return c->run != RunState::Closed ? c->shared_signals : nullptr;
  napi_value v;
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (c->events_ref == nullptr || napi_get_reference_value(c->env, c->events_ref, &v) != napi_ok || v == nullptr ||
      napi_get_typedarray_info(c->env, v, &type, &length, &data, nullptr, nullptr) != napi_ok) {
    return nullptr;
  }
  size_t at = 3 * static_cast<size_t>(np_backend()->max_poll_events_cap);
  if (type != napi_int32_array || data == nullptr || length < at + kSignalCount) return nullptr;
  return static_cast<int32_t*>(data) + at;
}

// A round due while Paused: it runs in a later check phase, with no events. Paused, the
// backend's handle no longer holds the loop open; the round does (unless unref()), or a
// loop body awaiting the task would see the process exit under it.
void ArmPausedRound(PollerCore* c) {
  c->local_wake = LocalWake::Pending;
  StartLocalWake(c);
  if (c->refd) uv_ref(reinterpret_cast<uv_handle_t*>(&c->idle));
}

// This thread set the wake flag: make the chores round happen. 0 or a negative errno.
int ArmWake(PollerCore* c) {
  if (c->run == RunState::Paused) {
    ArmPausedRound(c);
    return 0;
  }
  if (c->threaded) {
    // The waiter thread is in the kernel: only the waker reaches it.
    int err = np_selector_wake(&c->sel);
    if (err < 0) {
      np_taskq_cancel_wake(c->tasks);
      return err;
    }
    c->local_wake = LocalWake::Written;
    return 0;
  }
  c->local_wake = LocalWake::Pending;
  if (c->run == RunState::Watching) StartLocalWake(c);
  return 0;
}

// A task was queued on this thread and src/poller.ts saw no wake pending. Without a
// handle no other thread can wake this poller, and the JS side keeps the flag itself;
// with one, the flag is shared (gnet's wakeupCall CAS).
int RequestWake(PollerCore* c) {
  if (c->remote != nullptr && !np_taskq_try_wake(c->tasks)) return 0;
  return ArmWake(c);
}

// Other threads' wake: called by np_taskq_push with the queue's mutex held, and never
// after RemoteClose closed the queue, so the selector is open.
// The waker is written either way: the run may resume before the loop sees the
// async. Against a pause racing this call: MoveTo(Paused) sets `paused` and then
// looks for queued tasks, while this runs after a push, under the queue's mutex; so
// either this sees `paused`, or the owner sees the task (sequentially consistent).
int WakeFromOtherThread(void* arg) {
  PollerCore* c = static_cast<PollerCore*>(arg);
  int err = np_selector_wake(&c->sel);
  if (c->paused.load()) uv_async_send(&c->paused_wake);
  return err;
}

// Loop thread: another thread queued tasks while the run was paused.
void OnPausedWake(uv_async_t* handle) {
  PollerCore* c = static_cast<PollerCore*>(handle->data);
  if (c->run == RunState::Paused && c->local_wake == LocalWake::None) ArmPausedRound(c);
}

// The one place c->batch changes: makes the transition if BatchState's table allows
// it from the current state, and says whether it did.
bool MoveBatchTo(PollerCore* c, BatchState next) {
  BatchState from = c->batch;
  bool allowed = false;
  switch (next) {
    case BatchState::None: allowed = from != BatchState::None; break;
    case BatchState::InBatch: allowed = from == BatchState::None || from == BatchState::InBatchPauseAsked; break;
    case BatchState::InBatchPauseAsked: allowed = from == BatchState::InBatch; break;
  }
  if (allowed) c->batch = next;
  return allowed;
}

void ApplyRef(PollerCore* c) {
  uv_handle_t* h = CoreHandle(c);
  if (c->refd && c->run == RunState::Watching) uv_ref(h);
  else uv_unref(h);
  uv_handle_t* round = reinterpret_cast<uv_handle_t*>(&c->idle);
  if (c->refd && c->run == RunState::Paused && uv_is_active(round)) uv_ref(round);
  else uv_unref(round);
}

// Starts asking for batches: 0, or a negative errno with nothing started.
int StartWatching(PollerCore* c) {
  // libuv aborts the process when the fd it is asked to watch is no longer open
  // (its epoll_ctl fails with EBADF). The fd is the private descriptor, which no
  // one is handed, but one found in /proc and closed must still be an error here.
  if (fcntl(c->sel.fd, F_GETFD) < 0) return -errno;
  return c->threaded ? c->waiter.Arm(c->cap) : uv_poll_start(&c->poll, UV_READABLE, OnPollReady);
}

// Stops asking for batches (from Watching or Paused). A waiter thread may be in the
// kernel already: the batch it brings back waits in the selector's list until the
// next StartWatching. A pause asked inside the batch is moot now.
void StopWatching(PollerCore* c) {
  if (c->run == RunState::Watching && !c->threaded) uv_poll_stop(&c->poll);
  if (!c->threaded) StopLocalWake(c);
  if (c->batch == BatchState::InBatchPauseAsked) MoveBatchTo(c, BatchState::InBatch);
  uv_unref(CoreHandle(c));
}

// The run is over: its callback state goes, and so does a wake armed for it.
void EndRun(PollerCore* c) {
  c->local_wake = LocalWake::None;
  if (c->batch != BatchState::None && c->cb.ctx == c->batch_ctx) {
    // make_callback is still running in this context: release it afterwards.
    c->retired = c->cb;
    c->cb = CallbackState();
  } else {
    ReleaseCallbackState(c->env, &c->cb);
  }
}

// The one place c->run changes: makes the transition if RunState's table allows it
// from the current state, with what it means. 0; a negative errno when watching could
// not start (from Idle the run has ended then, from Paused it stays paused); -EINVAL
// for a transition the table does not have (nothing changes). c->cb must hold the new
// run's callback state for Idle -> Watching.
int MoveTo(PollerCore* c, RunState next) {
  RunState from = c->run;
  bool allowed = false;
  switch (next) {
    case RunState::Idle: allowed = from == RunState::Watching || from == RunState::Paused; break;
    case RunState::Watching: allowed = from == RunState::Idle || from == RunState::Paused; break;
    case RunState::Paused: allowed = from == RunState::Watching; break;
    case RunState::Closed: allowed = from != RunState::Closed; break;
  }
  if (!allowed) return -EINVAL;
  switch (next) {
    case RunState::Watching: {
      if (from == RunState::Idle) {
        c->user_fd_check = UserFdCheck::Due;
        // A run that stopped mid-round left the flag set though its wake was consumed.
        np_taskq_end_round(c->tasks);
        c->local_wake = LocalWake::None;
      }
      int err = StartWatching(c);
      if (err < 0) {
        // Leave nothing half-started: the next start() may succeed.
        if (from == RunState::Idle) EndRun(c);
        return err;
      }
      c->run = RunState::Watching;
      c->paused.store(false);
      ApplyRef(c);
      if (c->local_wake != LocalWake::None) {
        c->local_wake = LocalWake::Pending;  // whatever ran meanwhile, wait for the next poll
        StartLocalWake(c);
      }
      return 0;
    }
    case RunState::Paused:
      StopWatching(c);
      c->run = RunState::Paused;
      c->paused.store(true);
      // A round armed before the pause (its wake waits in the unwatched selector, or
      // in the idle and check handles StopWatching stopped), or tasks other threads
      // queued: it runs while paused.
      if (c->local_wake != LocalWake::None || np_taskq_has_tasks(c->tasks) || RemoteHasTaken(c->remote)) {
        ArmPausedRound(c);
      }
      return 0;
    case RunState::Idle:
    case RunState::Closed:
      StopWatching(c);
      EndRun(c);
      c->paused.store(false);
      c->run = next;
      return 0;
  }
  return -EINVAL;
}

void OnCoreClosed(uv_handle_t* handle) {
  PollerCore* c = static_cast<PollerCore*>(handle->data);
  if (--c->handles_open > 0) return;
  AddonData* addon = c->addon;
  if (c->threaded) c->waiter.Release();
  delete c;
  addon->closing--;
  if (addon->tearing_down && addon->closing == 0 && addon->teardown_hook) {
    napi_remove_async_cleanup_hook(addon->teardown_hook);
    addon->teardown_hook = nullptr;
  }
}

void CloseCore(PollerCore* c);
bool UserFdStillOurs(PollerCore* c);

void OnWaiterReady(uv_async_t* handle);

}  // namespace

namespace {

class NativePoller : public Napi::ObjectWrap<NativePoller> {
 public:
  static Napi::Function Define(Napi::Env env) {
    Napi::Function cls = DefineClass(
        env, "NativePoller",
        {
            InstanceMethod<&NativePoller::Open>("open"),
            InstanceMethod<&NativePoller::Ctl>("ctl"),
            InstanceMethod<&NativePoller::Start>("start"),
            InstanceMethod<&NativePoller::Stop>("stop"),
            InstanceMethod<&NativePoller::Pause>("pause"),
            InstanceMethod<&NativePoller::Resume>("resume"),
            InstanceMethod<&NativePoller::Wake>("wake"),
            InstanceMethod<&NativePoller::EndRound>("endRound"),
            InstanceMethod<&NativePoller::RemoteOpen>("remoteOpen"),
            InstanceMethod<&NativePoller::RemoteTake>("remoteTake"),
            InstanceMethod<&NativePoller::RemoteReply>("remoteReply"),
            InstanceMethod<&NativePoller::Close>("close"),
            InstanceMethod<&NativePoller::SetRef>("setRef"),
        });
    // The getters go on the prototype directly rather than through InstanceAccessor:
    // V8 checks a method's receiver (a TypeError, "Illegal invocation"), but not an
    // accessor's, and node-addon-api's unwrap then fails with a bare "Invalid
    // argument" Error, or would take another addon's wrapped object for a
    // NativePoller. Getter checks the type tag instead.
    napi_property_descriptor getters[] = {
        GetterDescriptor<&NativePoller::GetFd>("fd"),
        GetterDescriptor<&NativePoller::GetWakerFd>("wakerFd"),
        GetterDescriptor<&NativePoller::GetCapacity>("capacity"),
        GetterDescriptor<&NativePoller::GetLastBatchTime>("lastBatchTime"),
        GetterDescriptor<&NativePoller::GetRemoteQueued>("remoteQueued"),
        GetterDescriptor<&NativePoller::GetEvents>("events"),
        GetterDescriptor<&NativePoller::GetFailedSyscall>("failedSyscall"),
        GetterDescriptor<&NativePoller::GetWaiterThread>("waiterThread"),
        GetterDescriptor<&NativePoller::GetRunState>("runState"),
    };
    napi_value proto;
    if (napi_get_named_property(env, cls, "prototype", &proto) != napi_ok ||
        napi_define_properties(env, proto, sizeof getters / sizeof getters[0], getters) != napi_ok) {
      return Napi::Function();
    }
    return cls;
  }

  explicit NativePoller(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativePoller>(info) {
    napi_type_tag_object(info.Env(), info.This(), &kTypeTag);
  }

  ~NativePoller() override {
    // Collected without close(): release the descriptors now.
    if (core_) {
      core_->owner = nullptr;
      CloseCore(core_);
    }
  }

  void Detach() { core_ = nullptr; }

 private:
  // Marks the objects this constructor made, so that a getter can tell them from
  // anything else `this` may be (napi_unwrap alone would accept any addon's wrapper).
  static constexpr napi_type_tag kTypeTag = {0x6e6574706f6c6c31ULL, 0x4e6174697665506fULL};

  template <Napi::Value (NativePoller::*get)(const Napi::CallbackInfo&)>
  static napi_value Getter(napi_env env, napi_callback_info cbinfo) {
    Napi::CallbackInfo info(env, cbinfo);
    bool ours = false;
    void* wrapped = nullptr;
    if (napi_check_object_type_tag(env, info.This(), &kTypeTag, &ours) != napi_ok || !ours ||
        napi_unwrap(env, info.This(), &wrapped) != napi_ok || wrapped == nullptr) {
      napi_throw_type_error(env, "ERR_INVALID_THIS", "Value of \"this\" must be of type NativePoller");
      return nullptr;
    }
    auto* self = static_cast<NativePoller*>(static_cast<Napi::ObjectWrap<NativePoller>*>(wrapped));
    return (self->*get)(info);
  }

  template <Napi::Value (NativePoller::*get)(const Napi::CallbackInfo&)>
  static napi_property_descriptor GetterDescriptor(const char* name) {
    return napi_property_descriptor{name, nullptr, nullptr, Getter<get>, nullptr, nullptr, napi_default, nullptr};
  }

  // open(waiterThread, events): opens the selector; 0 or a negative errno
  // (failedSyscall names the call). The waiter thread is used when asked for or
  // when the selector fd cannot be watched. `events` is the shared event list, an
  // Int32Array of at least MaxPollEventsCap entries (three int32 each) that
  // src/poller.ts makes on memory that cannot be detached where it can; two int32
  // more, when there, are the signals (Signals()).
  Napi::Value Open(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const np_backend_info* backend = np_backend();
    size_t need = 3 * static_cast<size_t>(backend->max_poll_events_cap);
    napi_typedarray_type type = napi_uint8_array;
    size_t length = 0;
    void* data = nullptr;
    if (info.Length() < 2 || !info[0].IsBoolean() ||
        napi_get_typedarray_info(env, info[1], &type, &length, &data, nullptr, nullptr) != napi_ok ||
        type != napi_int32_array || length < need || data == nullptr) {
      Napi::TypeError::New(env, "open(waiterThread, events) expects a boolean and an Int32Array of 3 * MaxPollEventsCap entries")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    bool want_thread = info[0].As<Napi::Boolean>().Value();
    if (core_ || opened_) return Napi::Number::New(env, -EBUSY);
    opened_ = true;
    AddonData* addon = env.GetInstanceData<AddonData>();

    auto* c = new PollerCore();
    const char* failed = "";
    int err = np_selector_open(&c->sel, &failed);
    if (err < 0) {
      failed_syscall_ = failed;
      delete c;
      return Napi::Number::New(env, err);
    }
    c->tasks = np_taskq_new(WakeFromOtherThread, c);
    if (c->tasks == nullptr) {
      failed_syscall_ = "malloc";
      np_selector_close(&c->sel);
      delete c;
      return Napi::Number::New(env, -ENOMEM);
    }
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    c->threaded = want_thread || !c->sel.pollable;
    if (c->threaded) {
      // Without a private descriptor (libkqueue) the thread waits on the user's
      // number: in slices, so that a close behind the poller's back cannot leave
      // close() waiting for a thread no wake reaches.
      int slice_ms = c->sel.fd == c->sel.user_fd ? kUnguardedWaitSliceMs : -1;
      err = c->waiter.Init(loop, &c->sel, OnWaiterReady, c, slice_ms);
      if (err < 0) failed_syscall_ = "uv_async_init";
    } else {
      // The private descriptor: users cannot close it by number (selector.h).
      err = uv_poll_init(loop, &c->poll, c->sel.fd);
      if (err < 0) failed_syscall_ = "uv_poll_init";
      c->poll.data = c;
    }
    if (err < 0) {
      np_taskq_release(c->tasks);
      np_selector_close(&c->sel);
      delete c;
      return Napi::Number::New(env, err);
    }
    // Unref'd: they run only while a wake is armed, and never keep the process alive.
    uv_idle_init(loop, &c->idle);
    uv_check_init(loop, &c->check);
    uv_async_init(loop, &c->paused_wake, OnPausedWake);
    c->idle.data = c->check.data = c->paused_wake.data = c;
    uv_unref(reinterpret_cast<uv_handle_t*>(&c->idle));
    uv_unref(reinterpret_cast<uv_handle_t*>(&c->check));
    uv_unref(reinterpret_cast<uv_handle_t*>(&c->paused_wake));
    c->handles_open = 4;
    threaded_ = c->threaded;
    c->env = env;
    c->addon = addon;
    c->owner = this;
    c->cap = backend->init_poll_events_cap;
    napi_create_reference(env, info[1], 1, &c->events_ref);
    // A SharedArrayBuffer cannot be detached, and the reference keeps it alive.
    napi_value list_buffer;
    bool plain = true;
    if (napi_get_typedarray_info(env, info[1], &type, &length, &data, &list_buffer, nullptr) == napi_ok &&
        napi_is_arraybuffer(env, list_buffer, &plain) == napi_ok && !plain) {
      int32_t* signals = Signals(c);
      c->shared_signals = signals;
    }
    FdRegistry::Get().Add(&c->sel);
    // A poller that is not polling must never keep the process alive.
    uv_unref(CoreHandle(c));
    c->next = addon->open_cores;
    if (c->next) c->next->prev = c;
    addon->open_cores = c;
    core_ = c;
    events_ = Napi::Persistent(info[1].As<Napi::Int32Array>());
    return Napi::Number::New(env, 0);
  }

  // ctl(op, fd, interest): 0 or a negative errno.
  Napi::Value Ctl(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int op, fd, interest;
    if (!Int(info, 0, &op) || !Int(info, 1, &fd) || !Int(info, 2, &interest)) return env.Undefined();
    if (!core_) return Napi::Number::New(env, -EBADF);
    // Events already read for fd (by the waiter thread, or in a batch not yet
    // collected) are sorted out by generation when collected (selector.h).
    return Napi::Number::New(env, np_selector_ctl(&core_->sel, op, fd, static_cast<unsigned>(interest)));
  }

  // start(onBatch, resource): watch the backend fd and call onBatch(n, woke, capacity)
  // once per batch, in an async context created now, in the caller's context.
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsFunction() || !info[1].IsObject()) {
      Napi::TypeError::New(env, "start(onBatch, resource) expects a function and an object")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (!core_) return Napi::Number::New(env, -EBADF);
    PollerCore* c = core_;
    if (c->run != RunState::Idle) return Napi::Number::New(env, -EBUSY);
    // poller.fd closed behind the poller's back (fs.closeSync) is an error here, and
    // again at the first batch: closed in the same tick as polling(), it was still
    // open now. The poller itself works on its private descriptor either way.
    if (!UserFdStillOurs(c)) return Napi::Number::New(env, -EBADF);
    napi_create_reference(env, info[0], 1, &c->cb.on_batch);
    napi_create_reference(env, info[1], 1, &c->cb.resource);
    napi_value name = Napi::String::New(env, "netpoll.Poller");
    napi_async_init(env, info[1], name, &c->cb.ctx);
    int err = MoveTo(c, RunState::Watching);
    if (err < 0) return Napi::Number::New(env, err);
    // Tasks other threads queued while nothing polled run in the first round.
    if ((np_taskq_has_tasks(c->tasks) || RemoteHasTaken(c->remote)) && np_taskq_try_wake(c->tasks)) err = ArmWake(c);
    if (err < 0) MoveTo(c, RunState::Idle);
    return Napi::Number::New(env, err);
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    if (core_ && core_->run != RunState::Idle) MoveTo(core_, RunState::Idle);
    return info.Env().Undefined();
  }

  // Pause and resume keep the callback state but stop reading the kernel: the
  // iterator's backpressure. Inside a batch, pausing waits until the batch's
  // microtasks have run: a consumer that asks for more in them (the usual
  // for-await loop) resumes before anything was stopped, which saves the two
  // epoll_ctl calls a stop and a restart of the uv_poll would cost per batch.
  Napi::Value Pause(const Napi::CallbackInfo& info) {
    if (core_ && core_->run == RunState::Watching) {
      if (core_->batch == BatchState::None) MoveTo(core_, RunState::Paused);
      else MoveBatchTo(core_, BatchState::InBatchPauseAsked);
    }
    return info.Env().Undefined();
  }

  Napi::Value Resume(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!core_) return Napi::Number::New(env, -EBADF);
    switch (core_->run) {
      case RunState::Watching:
        if (core_->batch == BatchState::InBatchPauseAsked) MoveBatchTo(core_, BatchState::InBatch);
        return Napi::Number::New(env, 0);
      case RunState::Paused:
        return Napi::Number::New(env, MoveTo(core_, RunState::Watching));
      case RunState::Idle:
      case RunState::Closed:
        break;
    }
    return Napi::Number::New(env, -EBADF);
  }

  // wake(): a task was queued on this thread. Sets the wake flag (gnet's wakeupCall
  // CAS, shared with other threads once the poller has a handle) and, if this call set
  // it, arms the round. 0 or a negative errno.
  Napi::Value Wake(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!core_) return Napi::Number::New(env, -EBADF);
    return Napi::Number::New(env, RequestWake(core_));
  }

  // endRound(more): a chores round ran. Clears the flag and, when tasks are left here
  // (`more`) or in the request queue, wakes again, as gnet's Polling does. 1 when a
  // wake is pending afterwards, 0 when not, or a negative errno.
  Napi::Value EndRound(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!core_) return Napi::Number::New(env, 0);
    np_taskq* q = core_->tasks;
    np_taskq_end_round(q);
    bool more = BoolArg(info, 0);
    if (!more && !np_taskq_has_tasks(q)) return Napi::Number::New(env, 0);
    if (!np_taskq_try_wake(q)) return Napi::Number::New(env, 1);  // another thread woke it
    int err = ArmWake(core_);
    return Napi::Number::New(env, err < 0 ? err : 1);
  }

  // Trigger from other threads: see remote.h.
  Napi::Value RemoteOpen(const Napi::CallbackInfo& info) {
    return ::RemoteOpen(info, core_ ? core_->tasks : nullptr, core_ ? &core_->remote : &no_remote_);
  }
  Napi::Value RemoteTake(const Napi::CallbackInfo& info) { return ::RemoteTake(info, core_ ? core_->remote : nullptr); }
  Napi::Value RemoteReply(const Napi::CallbackInfo& info) { return ::RemoteReply(info, core_ ? core_->remote : nullptr); }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (core_) CloseCore(core_);
    return info.Env().Undefined();
  }

  Napi::Value SetRef(const Napi::CallbackInfo& info) {
    if (core_) {
      core_->refd = BoolArg(info, 0);
      ApplyRef(core_);
    }
    return info.Env().Undefined();
  }

  Napi::Value GetFd(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), core_ ? core_->sel.user_fd : -1);
  }
  Napi::Value GetWakerFd(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), core_ ? core_->sel.waker.read_fd : -1);
  }
  Napi::Value GetCapacity(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), core_ ? core_->cap : 0);
  }
  Napi::Value GetRemoteQueued(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), core_ && core_->tasks ? np_taskq_queued(core_->tasks) : 0);
  }
  Napi::Value GetLastBatchTime(const Napi::CallbackInfo& info) {
    double ns = core_ && core_->last_batch_ns != 0 ? static_cast<double>(core_->last_batch_ns) : -1;
    return Napi::Number::New(info.Env(), ns);
  }
  Napi::Value GetEvents(const Napi::CallbackInfo& info) {
    if (events_.IsEmpty()) return info.Env().Undefined();
    return events_.Value();
  }
  Napi::Value GetFailedSyscall(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), failed_syscall_);
  }
  Napi::Value GetWaiterThread(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), threaded_);
  }
  // RunState as its number (Idle 0, Watching 1, Paused 2, Closed 3), for src/poller.ts to
  // check its Mode against at the rare transitions (start, stop, close).
  Napi::Value GetRunState(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<int>(core_ ? core_->run : RunState::Closed));
  }

  static bool Int(const Napi::CallbackInfo& info, size_t i, int* out) {
    if (info.Length() <= i || !info[i].IsNumber()) {
      Napi::TypeError::New(info.Env(), "expected a number").ThrowAsJavaScriptException();
      return false;
    }
    *out = info[i].As<Napi::Number>().Int32Value();
    return true;
  }

  PollerCore* core_ = nullptr;
  RemoteOwner* no_remote_ = nullptr;  // what RemoteOpen sees once closed
  bool opened_ = false;
  bool threaded_ = false;
  Napi::Reference<Napi::Int32Array> events_;
  std::string failed_syscall_;
};

void CloseCore(PollerCore* c) {
  if (c->run == RunState::Closed) return;
  MoveTo(c, RunState::Closed);
  UnlinkCore(c);
  if (c->owner) c->owner->Detach();
  c->owner = nullptr;
  // Before the selector closes: once the queue is closed no other thread wakes it,
  // and every task queued or taken is answered with ErrPollerClosed.
  RemoteClose(c->tasks, c->remote);
  c->remote = nullptr;
  np_taskq_release(c->tasks);
  c->tasks = nullptr;
  // The waiter thread must be out of the kernel before the selector closes,
  // and done with the async handle before uv_close. Joining is prompt: the
  // selector's waker makes its wait return.
  if (c->threaded) c->waiter.Join();
  // uv_close before closing the descriptor: libuv still knows the fd until then.
  c->addon->closing++;
  uv_close(reinterpret_cast<uv_handle_t*>(&c->idle), OnCoreClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->check), OnCoreClosed);
  // After RemoteClose: no other thread sends it any more.
  uv_close(reinterpret_cast<uv_handle_t*>(&c->paused_wake), OnCoreClosed);
  uv_close(CoreHandle(c), OnCoreClosed);
  FdRegistry::Get().Close(&c->sel);
  if (c->events_ref) {
    napi_delete_reference(c->env, c->events_ref);
    c->events_ref = nullptr;
  }
}

// Opens a handle scope for a batch, which runs outside any JavaScript call.
class BatchScope {
 public:
  explicit BatchScope(napi_env env) : env_(env) { ok_ = napi_open_handle_scope(env, &scope_) == napi_ok; }
  ~BatchScope() {
    if (ok_) napi_close_handle_scope(env_, scope_);
  }
  bool ok() const { return ok_; }

 private:
  napi_env env_;
  napi_handle_scope scope_ = nullptr;
  bool ok_ = false;
};

void DeliverBatch(PollerCore* c, int n, int woke) {
  napi_env env = c->env;
  napi_value fn, resource, argv[3];
  napi_get_reference_value(env, c->cb.on_batch, &fn);
  napi_get_reference_value(env, c->cb.resource, &resource);
  napi_create_int32(env, n, &argv[0]);
  napi_get_boolean(env, woke != 0, &argv[1]);
  // The list's size rides along, so JavaScript sees it grow or shrink (stats(), the
  // diagnostics channel) without a call back into the binding per batch.
  napi_create_int32(env, c->cap, &argv[2]);
  // stats().lastBatchAt: a clock read here costs a third of performance.now() in JavaScript,
  // which showed in the 1-fd dispatch benchmark.
  if (n >= 0) c->last_batch_ns = uv_hrtime();
  MoveBatchTo(c, BatchState::InBatch);
  c->batch_ctx = c->cb.ctx;
  if (int32_t* signals = Signals(c)) signals[kInBatch] = 1;
  // One call per batch; make_callback runs nextTicks and promise reactions
  // afterwards and restores the async context captured by start().
  napi_status status = napi_make_callback(env, c->cb.ctx, resource, fn, 3, argv, nullptr);
  bool pause = c->batch == BatchState::InBatchPauseAsked;
  MoveBatchTo(c, BatchState::None);
  c->batch_ctx = nullptr;
  // A pause asked inside the batch (still wanted: resume(), stop() or close() since
  // would have taken the request back).
  if (pause) MoveTo(c, RunState::Paused);
  if (int32_t* signals = c->run != RunState::Closed ? Signals(c) : nullptr) {
    signals[kInBatch] = 0;
    if (signals[kWakeRequest] != 0) {
      signals[kWakeRequest] = 0;
      RequestWake(c);  // loop path only (src/poller.ts): cannot fail
    }
  }
  bool pending = false;
  // src/poller.ts catches what a user callback throws while its run goes on, and
  // rethrows what one throws after the run ended (it called close() first): that,
  // or anything it could not catch, is reported as any event callback's error
  // would be ('uncaughtException'). A call refused because the environment is
  // terminating (worker.terminate()) has nothing pending.
  if (status != napi_ok && napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value exception;
    if (napi_get_and_clear_last_exception(env, &exception) == napi_ok) napi_fatal_exception(env, exception);
  }
  ReleaseCallbackState(env, &c->retired);  // stop() or close() ran inside the batch
}

// gnet's event-list policy: double when a wait fills it, halve when under half is used.
void ResizeEventList(PollerCore* c, int n, int woke) {
  const np_backend_info* backend = np_backend();
  int used = n + woke;
  if (used >= c->cap && c->cap * 2 <= backend->max_poll_events_cap) c->cap *= 2;
  else if (used < c->cap / 2 && c->cap / 2 >= backend->min_poll_events_cap) c->cap /= 2;
}

// Whether poller.fd still refers to this poller. When it no longer does (closed
// behind the poller's back, maybe reused by another file), the poller lets go of
// the number: close(n) no longer refuses it, and close() will not close it.
bool UserFdStillOurs(PollerCore* c) {
  if (c->sel.user_fd >= 0 && np_selector_owns(&c->sel, c->sel.user_fd)) return true;
  FdRegistry::Get().Disown(&c->sel);
  return false;
}

// The run's first batch: 0, or -EBADF when poller.fd is no longer the poller's.
int TakeUserFdCheck(PollerCore* c) {
  if (c->user_fd_check == UserFdCheck::Done) return 0;
  c->user_fd_check = UserFdCheck::Done;
  return UserFdStillOurs(c) ? 0 : -EBADF;
}

// The shared event list, looked up again for every batch: JavaScript that got
// hold of it could have detached its buffer (transferred it) since open(), and a
// pointer kept from then would point into freed memory. Null when it cannot take
// a batch now. (src/poller.ts makes it on a SharedArrayBuffer, which cannot be
// detached; this is for every other caller of the binding.)
np_event* EventList(PollerCore* c) {
  napi_value v;
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_reference_value(c->env, c->events_ref, &v) != napi_ok || v == nullptr ||
      napi_get_typedarray_info(c->env, v, &type, &length, &data, nullptr, nullptr) != napi_ok) {
    return nullptr;
  }
  if (type != napi_int32_array || data == nullptr || length < 3 * static_cast<size_t>(c->cap)) return nullptr;
  return static_cast<np_event*>(data);
}

// What must hold before a batch is read: 0, with the event list in *out, or the
// negative errno to deliver instead (nothing is read from the kernel then).
int BeforeBatch(PollerCore* c, np_event** out) {
  *out = EventList(c);
  if (*out == nullptr) return -EFAULT;
  return TakeUserFdCheck(c);
}

void OnPollReady(uv_poll_t* handle, int status, int) {
  PollerCore* c = static_cast<PollerCore*>(handle->data);
  if (c->run != RunState::Watching) return;
  BatchScope scope(c->env);
  if (!scope.ok()) return;
  np_event* out = nullptr;
  int woke = 0, raw = 0;
  int n = status < 0 ? status : BeforeBatch(c, &out);
  if (n == 0) {
    raw = np_selector_wait(&c->sel, c->cap, 0, &woke);
    // Between this wait and the collect nothing runs, so every event is current
    // but one of a registration the kernel kept for a closed fd (a dup open).
    n = raw > 0 ? np_selector_collect(&c->sel, raw, out) : raw;
  }
  if (c->local_wake == LocalWake::Ready) {
    // The armed round runs with this turn's I/O, after it, as gnet's does.
    c->local_wake = LocalWake::None;
    StopLocalWake(c);
    woke = 1;
  }
  if (n == 0 && !woke) return;  // EINTR, a spurious wakeup, or only stale events
  // Resized before the batch goes out, so the batch carries the size the next wait uses.
  if (raw >= 0 && n >= 0) ResizeEventList(c, raw, woke);
  DeliverBatch(c, n, woke);
}

// The check phase, while a local wake is armed: if this turn's poll phase came after
// the trigger and did not report this poller's fd, the round runs now, with no events
// and no syscall. Armed too late for this turn, it waits for the next (the handles stay
// active, so that turn's poll does not block).
void OnCheck(uv_check_t* handle) {
  PollerCore* c = static_cast<PollerCore*>(handle->data);
  bool running = c->run == RunState::Watching || c->run == RunState::Paused;
  if (!running || c->local_wake == LocalWake::None || c->local_wake == LocalWake::Written) {
    StopLocalWake(c);
    return;
  }
  if (c->local_wake == LocalWake::Pending) return;
  c->local_wake = LocalWake::None;
  StopLocalWake(c);
  BatchScope scope(c->env);
  if (!scope.ok()) return;
  // No events are written. An event list on a SharedArrayBuffer cannot have been
  // detached, so of BeforeBatch's checks only poller.fd's applies to it.
  int n = 0;
  np_event* out = nullptr;
  if (c->shared_signals == nullptr) n = BeforeBatch(c, &out);
  else n = TakeUserFdCheck(c);
  DeliverBatch(c, n, 1);  // no events, or the error that stops the run
}

// A batch from the waiter thread, into the same path as OnPollReady's. While
// paused or stopped it stays with the thread: it is out of the kernel already,
// and an edge-triggered event would be lost if dropped. Events of registrations
// deleted since the thread read them are dropped when collected.
void OnWaiterReady(uv_async_t* handle) {
  PollerCore* c = static_cast<PollerCore*>(handle->data);
  if (c->run != RunState::Watching) return;
  BatchScope scope(c->env);
  if (!scope.ok()) return;
  np_event* out = nullptr;
  int woke = 0, raw = 0;
  int n = BeforeBatch(c, &out);
  if (n == 0) {
    if (!c->waiter.Take(&raw, &woke)) return;
    n = raw > 0 ? np_selector_collect(&c->sel, raw, out) : raw;
  }
  // A batch with nothing current in it (its fds deleted before the loop took it)
  // does not go to JavaScript, but the thread must wait again all the same.
  if (woke && c->local_wake == LocalWake::Written) c->local_wake = LocalWake::None;
  if (n != 0 || woke) {
    if (raw >= 0 && n >= 0) ResizeEventList(c, raw, woke);
    DeliverBatch(c, n, woke);
  }
  // The next wait, now that JavaScript has consumed this batch (unless it
  // paused, stopped or closed the poller meanwhile).
  if (c->run == RunState::Watching) c->waiter.Arm(c->cap);
}

// Environment teardown (worker exit, process exit): close what is still open.
// Async because each uv_close finishes on a later loop turn.
void OnTeardown(napi_async_cleanup_hook_handle handle, void* arg) {
  AddonData* addon = static_cast<AddonData*>(arg);
  addon->tearing_down = true;
  while (addon->open_cores) CloseCore(addon->open_cores);
  if (addon->closing == 0) {
    napi_remove_async_cleanup_hook(handle);
    addon->teardown_hook = nullptr;
  }
}

Napi::Object BackendInfo(Napi::Env env) {
  const np_backend_info* b = np_backend();
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", b->name);
  o.Set("InitPollEventsCap", b->init_poll_events_cap);
  o.Set("MaxPollEventsCap", b->max_poll_events_cap);
  o.Set("MinPollEventsCap", b->min_poll_events_cap);
  o.Set("MaxAsyncTasksAtOneTime", b->max_async_tasks_at_one_time);
  o.Set("ReadEvents", b->read_events);
  o.Set("WriteEvents", b->write_events);
  o.Set("ReadWriteEvents", b->read_write_events);
  o.Set("ErrEvents", b->err_events);
  o.Set("eventsAreFilters", b->events_are_filters != 0);
  Napi::Object syscalls = Napi::Object::New(env);
  syscalls.Set("add", b->syscall_add);
  syscalls.Set("modRead", b->syscall_mod_read);
  syscalls.Set("modReadWrite", b->syscall_mod_read_write);
  syscalls.Set("del", b->syscall_del);
  syscalls.Set("wait", b->syscall_wait);
  o.Set("syscalls", syscalls);
  return o;
}

// The sha256 of the sources this binary was built from (scripts/source-hash.cjs, passed
// in by binding.gyp). The marker prefix lets a test find it in the bytes of a prebuild
// for another architecture, one it cannot load, and compare it with the current sources.
#define NP_STRINGIFY_(x) #x
#define NP_STRINGIFY(x) NP_STRINGIFY_(x)
#ifdef NETPOLL_SOURCE_HASH
constexpr char kSourceHashMarker[] = "netpoll-source-sha256:" NP_STRINGIFY(NETPOLL_SOURCE_HASH);
#else
constexpr char kSourceHashMarker[] = "netpoll-source-sha256:unknown";
#endif
constexpr size_t kSourceHashOffset = sizeof("netpoll-source-sha256:") - 1;

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* addon = new AddonData();
  env.SetInstanceData<AddonData>(addon);
  napi_add_async_cleanup_hook(env, OnTeardown, addon, &addon->teardown_hook);
  InitRemote(env, exports);

  exports.Set("sourceHash", Napi::String::New(env, kSourceHashMarker + kSourceHashOffset));

  exports.Set("NativePoller", NativePoller::Define(env));
  exports.Set("backend", BackendInfo(env));
  InitSocket(env, exports);
  exports.Set("CTL_ADD", static_cast<int>(NP_CTL_ADD));
  exports.Set("CTL_MOD", static_cast<int>(NP_CTL_MOD));
  exports.Set("CTL_DEL", static_cast<int>(NP_CTL_DEL));
  exports.Set("INTEREST_READ", static_cast<int>(NP_INTEREST_READ));
  exports.Set("INTEREST_WRITE", static_cast<int>(NP_INTEREST_WRITE));
  exports.Set("INTEREST_EDGE", static_cast<int>(NP_INTEREST_EDGE));
  return exports;
}

}  // namespace

NODE_API_MODULE(netpoll, Init)
