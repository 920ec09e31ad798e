// Node-API glue for trigger() from other threads: the registry that turns a handle
// back into a poller's queue, the owner's side (tasks taken into JavaScript, answers
// sent back), and the caller's side (RemoteChannel, RemoteLink). The queue is plain
// C (taskq.h); what a task is and how it runs is src/remote.ts's business.
//
// How one remote trigger travels:
//   caller thread   src/remote.ts encodes (priority, task, param) into a Float64Array
//                   and a staging Buffer; once per microtask RemoteLink::Flush copies
//                   the whole batch into one np_task_block and pushes it onto the
//                   poller's queue, waking the poller if no wake is pending.
//   poller thread   the chores round calls RemoteTake: every queued task gets a slot
//                   (the owner remembers it until answered) and its param becomes a
//                   JS value; the round runs the tasks; RemoteReply turns the answers
//                   into one block per caller queue and pushes each (uv_async_send).
//   caller thread   the channel's uv_async callback takes every reply block and calls
//                   JavaScript once per chunk, which settles the promises.
//
// Every task is answered exactly once: by the owner's JavaScript (RemoteReply), or,
// when the poller closes or its thread ends, with ErrPollerClosed by RemoteClose.
// Nothing here runs JavaScript between taking a pointer into JS memory and using it:
// the calls take typed arrays and numbers only, and values are set on JS arrays
// only once the native state is settled.

#include "args.h"
#include "remote.h"

#include <uv.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

// What a value in a task or a reply is: the codes src/remote.ts reads from
// binding.remoteCodes. Payload kinds carry bytes (strings as UTF-16LE code units).
enum ValueKind : uint8_t {
  kUndefined = 0,
  kNull = 1,
  kFalse = 2,
  kTrue = 3,
  kNumber = 4,
  kString = 5,
  kSerialized = 6,  // v8.serialize's bytes: a Buffer the caller deserializes
  kSentinel = 7,    // one of the sentinel errors, by index (num)
  kArrayBuffer = 8,
  kBuffer = 9,
  kFailure = 10,  // the binding could not deliver the value (num: kFailure*)
  kTyped = 16,    // + napi_typedarray_type
  kTypedLast = kTyped + napi_biguint64_array,
  kErrorFlag = 0x80,  // in replies: reject with the value
};
constexpr double kSentinelPollerClosed = 2;  // ErrEngineShutdown 0, ErrAcceptSocket 1, ErrPollerClosed 2
constexpr double kFailureUnknownTask = 1;
constexpr double kFailureNoMemory = 2;
// One task or reply in a Float64Array: id (call id or slot), meta (priority | task << 1),
// kind, num (the number, or the payload's offset in the staging buffer), len (payload bytes).
constexpr size_t kEntry = 5;
constexpr uint32_t kMaxTasks = 0xffff;
// The call id of a request nobody waits for (RemotePoller#post); in a delivery to the
// owner, the slot of such a task.
constexpr double kNoReplyId = -1;

bool ValidKind(uint8_t kind) {
  uint8_t k = kind & ~kErrorFlag;
  return k <= kFailure || (k >= kTyped && k <= kTypedLast);
}

bool HasPayload(uint8_t kind) {
  uint8_t k = kind & ~kErrorFlag;
  return k == kString || k == kSerialized || k == kArrayBuffer || k == kBuffer || (k >= kTyped && k <= kTypedLast);
}

size_t ElementSize(uint8_t kind) {
  switch ((kind & ~kErrorFlag) - kTyped) {
    case napi_int16_array: case napi_uint16_array: return 2;
    case napi_int32_array: case napi_uint32_array: case napi_float32_array: return 4;
    case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: return 8;
    default: return (kind & ~kErrorFlag) == kString ? 2 : 1;
  }
}

bool ToU32(double d, uint32_t* out) {
  if (!(d >= 0 && d <= 4294967295.0) || d != std::floor(d)) return false;
  *out = static_cast<uint32_t>(d);
  return true;
}

// The elements of a Float64Array argument; false when it is not one.
bool Float64Args(napi_env env, napi_value v, double** data, size_t* count) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return false;
  napi_typedarray_type type;
  void* p = nullptr;
  napi_value ab;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, count, &p, &ab, &offset) != napi_ok || type != napi_float64_array) return false;
  if (p == nullptr) *count = 0;  // detached
  *data = static_cast<double*>(p);
  return true;
}

// The bytes of a Uint8Array (or Buffer) argument; false when it is not one.
bool ByteArgs(napi_env env, napi_value v, void** data, size_t* len) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return false;
  napi_typedarray_type type;
  napi_value ab;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, len, data, &ab, &offset) != napi_ok || type != napi_uint8_array) return false;
  if (*data == nullptr) *len = 0;
  return true;
}

// The arguments of a batch call, (hdr, count, staging): the entries in hdr (kEntry doubles
// each), how many of them count, and their payload bytes. On a bad argument it throws (a
// TypeError, or a RangeError for a count beyond the entries given) and returns false.
bool BatchArgs(const Napi::CallbackInfo& info, const char* call, double** hdr, uint32_t* count, void** staging,
               size_t* staging_len) {
  Napi::Env env = info.Env();
  size_t doubles = 0;
  if (info.Length() < 3 || !Float64Args(env, info[0], hdr, &doubles) || !info[1].IsNumber() ||
      !ByteArgs(env, info[2], staging, staging_len)) {
    std::string message = std::string(call) + "(hdr, count, staging) expects a Float64Array, a number and a Uint8Array";
    Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
    return false;
  }
  if (!ToU32(info[1].As<Napi::Number>().DoubleValue(), count) || *count > doubles / kEntry) {
    Napi::RangeError::New(env, std::string(call) + ": count exceeds the entries given").ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

// A string from UTF-16LE code units.
napi_status MakeString(napi_env env, const unsigned char* data, size_t len, napi_value* out) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  std::u16string s(len / 2, u'\0');
  for (size_t i = 0; i < s.size(); i++) s[i] = static_cast<char16_t>(data[2 * i] | (data[2 * i + 1] << 8));
  return napi_create_string_utf16(env, s.data(), s.size(), out);
#else
  return napi_create_string_utf16(env, reinterpret_cast<const char16_t*>(data), len / 2, out);
#endif
}

// Byte payloads delivered to JavaScript share one Buffer per delivery (JavaScript makes
// each param a view of it): one allocation instead of one Buffer per task. Kept small:
// 8 KiB allocations come back from malloc's bins already faulted in, where 64 KiB ones
// were trimmed and page-faulted again on every delivery (a third of the poller's time
// with 1 KiB params). Larger payloads get an ArrayBuffer of their own.
constexpr size_t kChunkBytes = 8 * 1024;
constexpr uint32_t kOwnBufferBytes = 4 * 1024;

bool InChunk(const np_task& t) {
  return HasPayload(t.kind) && (t.kind & ~kErrorFlag) != kString && t.len <= kOwnBufferBytes;
}

// How many tasks from (b, index) one delivery of at most `cap` entries takes (at least
// one, if there is one), and the bytes its shared ArrayBuffer needs.
uint32_t PlanDelivery(np_task_block* b, uint32_t index, size_t cap, size_t* chunk_bytes) {
  size_t chunk = 0;
  uint32_t n = 0;
  while (b != nullptr && n < cap) {
    const np_task& t = b->tasks[index];
    if (InChunk(t)) {
      size_t end = np_task_payload_start(chunk) + t.len;
      if (end > kChunkBytes && n > 0) break;
      chunk = end;
    }
    n++;
    if (++index == b->count) {
      b = b->next;
      index = 0;
    }
  }
  *chunk_bytes = chunk;
  return n;
}

// One delivery: entries written into a Float64Array (kEntry doubles each), the values
// that are not numbers kept until Finish sets them on the JS array. Between the
// constructor and Finish no JavaScript runs.
class Delivery {
 public:
  // The shared bytes are a Buffer (node's allocation is not zero-filled, as an
  // ArrayBuffer's is): JavaScript takes its .buffer.
  Delivery(napi_env env, double* hdr, size_t chunk_bytes) : env_(env), hdr_(hdr) {
    if (chunk_bytes > 0) {
      chunk_status_ = napi_create_buffer(env, chunk_bytes, &chunk_data_, &chunk_);
      if (chunk_status_ != napi_ok) chunk_ = nullptr;
    }
  }

  // Entry k: id, meta and the value of `t` (its payload at `payload`): payload kinds
  // get num = the offset in their ArrayBuffer (values[capacity], the shared one, unless
  // values[k] is set: a string, or an ArrayBuffer of its own). napi_ok, or the status
  // of the call that could not make the value (nothing is written then).
  napi_status Put(uint32_t k, double id, double meta, const np_task& t, const unsigned char* payload) {
    double* e = hdr_ + k * kEntry;
    napi_value v = nullptr;
    double num = t.num;
    if (InChunk(t) && t.len == 0) {
      // Nothing to copy, and maybe no shared bytes at all (a delivery of empty Buffers
      // plans none): JavaScript makes an empty value of the kind.
      num = 0;
    } else if (InChunk(t)) {
      if (chunk_ == nullptr) return chunk_status_ != napi_ok ? chunk_status_ : napi_generic_failure;
      pos_ = np_task_payload_start(pos_);
      std::memcpy(static_cast<unsigned char*>(chunk_data_) + pos_, payload, t.len);
      num = static_cast<double>(pos_);
      pos_ += t.len;
    } else if (HasPayload(t.kind)) {
      num = 0;
      napi_status status;
      if ((t.kind & ~kErrorFlag) == kString) {
        status = MakeString(env_, payload, t.len, &v);
      } else {
        void* bytes = nullptr;
        status = napi_create_arraybuffer(env_, t.len, &bytes, &v);
        if (status == napi_ok && t.len > 0) std::memcpy(bytes, payload, t.len);
      }
      if (status != napi_ok) return status;
      values_.emplace_back(k, v);
    }
    e[0] = id;
    e[1] = meta;
    e[2] = t.kind;
    e[3] = num;
    e[4] = t.len;
    return napi_ok;
  }

  // Sets the values on `values` (index `capacity`: the shared ArrayBuffer, or undefined).
  // JavaScript may run from here on: a setter on a forged array.
  void Finish(napi_value values, size_t capacity) {
    for (auto& kv : values_) {
      if (napi_set_element(env_, values, kv.first, kv.second) != napi_ok) return;
    }
    napi_value chunk = chunk_;
    if (chunk == nullptr) napi_get_undefined(env_, &chunk);
    napi_set_element(env_, values, static_cast<uint32_t>(capacity), chunk);
  }

 private:
  napi_env env_;
  double* hdr_;
  napi_value chunk_ = nullptr;
  napi_status chunk_status_ = napi_ok;
  void* chunk_data_ = nullptr;
  size_t pos_ = 0;
  std::vector<std::pair<uint32_t, napi_value>> values_;
};

// ---- the registry ----

struct Registration {
  std::string token;
  std::string names;  // the task names as src/remote.ts encoded them (JSON)
  uint32_t task_count;
  np_taskq* q;  // one reference
};

// Process-wide by necessity: a handle is plain data that crosses threads (workerData,
// postMessage), so the table that turns it back into a poller's queue must be shared
// by every thread and every environment of the addon. Ids are never reused, so a
// stale handle cannot reach a later poller. Leaked on purpose: a worker thread may
// still connect while the main thread runs static destructors at exit.
struct Registry {
  std::mutex mu;
  std::unordered_map<uint64_t, Registration> owners;
  uint64_t next_id = 1;
};

Registry& TheRegistry() {
  static Registry* registry = new Registry();
  return *registry;
}

void Unregister(uint64_t id) {
  np_taskq* q = nullptr;
  {
    Registry& r = TheRegistry();
    std::lock_guard<std::mutex> lock(r.mu);
    auto it = r.owners.find(id);
    if (it == r.owners.end()) return;
    q = it->second.q;
    r.owners.erase(it);
  }
  np_taskq_release(q);
}

// ---- answers: one block per caller queue ----

struct ReplyItem {
  np_taskq* to;
  uint32_t id;
  uint8_t kind;
  double num;
  const unsigned char* data;
  uint32_t len;
};

// Groups replies by the queue they go to and pushes one block to each. Replies to a
// caller that went away (its queue closed) are freed here.
void SendReplies(const std::vector<ReplyItem>& items) {
  struct Group {
    np_taskq* to;
    uint32_t count;
    size_t data;
    np_task_block* block;
    uint32_t filled;
    size_t pos;
  };
  std::vector<Group> groups;
  auto group_of = [&groups](np_taskq* to) -> Group& {
    for (auto it = groups.rbegin(); it != groups.rend(); ++it) {
      if (it->to == to) return *it;
    }
    groups.push_back(Group{to, 0, 0, nullptr, 0, 0});
    return groups.back();
  };
  for (const ReplyItem& item : items) {
    Group& g = group_of(item.to);
    g.count++;
    if (HasPayload(item.kind)) g.data = np_task_payload_start(g.data) + item.len;
  }
  for (Group& g : groups) g.block = np_task_block_new(g.count, g.data);
  for (const ReplyItem& item : items) {
    Group& g = group_of(item.to);
    if (g.block == nullptr) continue;  // out of memory: these callers hear nothing
    np_task& t = g.block->tasks[g.filled++];
    t.id = item.id;
    t.task = 0;
    t.priority = 0;
    t.kind = item.kind;
    t.len = 0;
    t.flags = 0;
    t.num = item.num;
    if (HasPayload(item.kind)) {
      g.pos = np_task_payload_start(g.pos);
      if (item.len > 0) std::memcpy(np_task_block_data(g.block) + g.pos, item.data, item.len);
      t.len = item.len;
      g.pos += item.len;
    }
  }
  for (Group& g : groups) {
    if (g.block == nullptr) continue;
    if (np_taskq_push(g.to, g.block) == NP_TASKQ_CLOSED) np_task_block_free(g.block);
  }
}

}  // namespace

// ---- the owner's side ----

// A task handed to JavaScript and not answered yet: where its answer goes. Only this,
// not the block it came in: a block is freed (back to its sender's pool) as soon as
// JavaScript has its tasks, so a pending call holds 16 bytes here, not a 64 KiB block.
struct TakenTask {
  np_taskq* to;  // the caller's reply queue, one reference; null: a free slot
  uint32_t id;   // the caller's call id
};

struct RemoteOwner {
  np_taskq* q;  // the poller's request queue (the poller holds the reference)
  uint64_t id;
  uint32_t task_count;
  // Tasks handed to JavaScript and not answered yet, by slot (posted tasks, which
  // nobody waits for, get none).
  std::vector<TakenTask> slots;
  std::vector<uint32_t> free_slots;
  // Blocks taken from the queue with tasks not handed over yet (a take stops when
  // JavaScript's array is full): the first one from next_index, whose payload search
  // starts at next_data. A block leaves the chain, and is freed, once every task in it
  // has been handed over (or failed).
  np_task_block* chain = nullptr;
  uint32_t next_index = 0;
  size_t next_data = 0;
};

namespace {

bool WantsReply(const np_task& t) { return (t.flags & NP_TASK_NO_REPLY) == 0; }

ReplyItem ClosedReply(np_taskq* to, uint32_t id) {
  return ReplyItem{to, id, static_cast<uint8_t>(kSentinel | kErrorFlag), kSentinelPollerClosed, nullptr, 0};
}

ReplyItem FailureReply(np_taskq* to, uint32_t id, double failure) {
  return ReplyItem{to, id, static_cast<uint8_t>(kFailure | kErrorFlag), failure, nullptr, 0};
}

}  // namespace

Napi::Value RemoteOpen(const Napi::CallbackInfo& info, np_taskq* q, RemoteOwner** owner) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsString() || !info[2].IsString()) {
    Napi::TypeError::New(env, "remoteOpen(taskCount, names, token) expects a number and two strings").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint32_t count;
  if (!ToU32(info[0].As<Napi::Number>().DoubleValue(), &count) || count > kMaxTasks) {
    Napi::RangeError::New(env, "a poller offers at most 65535 tasks").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (q == nullptr) return Napi::Number::New(env, -EBADF);
  if (*owner != nullptr) return Napi::Number::New(env, -EBUSY);
  Registration reg{info[2].As<Napi::String>().Utf8Value(), info[1].As<Napi::String>().Utf8Value(), count, q};
  uint64_t id;
  {
    Registry& r = TheRegistry();
    std::lock_guard<std::mutex> lock(r.mu);
    id = r.next_id++;
    np_taskq_retain(q);
    r.owners.emplace(id, std::move(reg));
  }
  *owner = new RemoteOwner{q, id, count, {}, {}, nullptr, 0, 0};
  return Napi::Number::New(env, static_cast<double>(id));
}

Napi::Value RemoteTake(const Napi::CallbackInfo& info, RemoteOwner* owner) {
  Napi::Env env = info.Env();
  double* hdr = nullptr;
  size_t doubles = 0;
  if (info.Length() < 2 || !Float64Args(env, info[0], &hdr, &doubles) || !info[1].IsObject()) {
    Napi::TypeError::New(env, "remoteTake(hdr, values, refill) expects a Float64Array and an array").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  size_t cap = doubles / kEntry;
  if (owner == nullptr || cap == 0) return Napi::Number::New(env, 0);
  // One take from the queue per chores round (the round's first call): what producers
  // push meanwhile waits for the next round, after this one's tasks and the loop's I/O.
  // Taking again until the queue is empty never ends while producers outpace the
  // owner, and nothing runs meanwhile: the loop stalls and memory grows without bound.
  bool may_take = BoolArg(info, 2);
  uint32_t n = 0;
  std::vector<ReplyItem> failures;
  // Blocks every task of which has been handed over or failed: freed once the failures
  // are sent (a failure's reply queue is held by its block's reference until then).
  std::vector<np_task_block*> finished;
  // Until something is delivered or nothing is left: a delivery whose every task failed
  // must not read as "the queue is empty" to the caller's loop.
  Delivery* delivery = nullptr;
  while (n == 0) {
    if (owner->chain == nullptr) {
      if (!may_take) break;
      may_take = false;
      owner->chain = np_taskq_take(owner->q);
      owner->next_index = 0;
      owner->next_data = 0;
      if (owner->chain == nullptr) break;
    }
    size_t chunk = 0;
    uint32_t planned = PlanDelivery(owner->chain, owner->next_index, cap, &chunk);
    delete delivery;
    delivery = new Delivery(env, hdr, chunk);
    for (uint32_t j = 0; j < planned; j++) {
      np_task_block* b = owner->chain;
      uint32_t i = owner->next_index;
      const np_task& t = b->tasks[i];
      const unsigned char* payload = nullptr;
      if (HasPayload(t.kind)) {
        size_t at = np_task_payload_start(owner->next_data);
        payload = np_task_block_data(b) + at;
        owner->next_data = at + t.len;
      }
      double meta = t.priority | (static_cast<uint32_t>(t.task) << 1);
      bool reply = WantsReply(t);
      napi_status status = napi_ok;
      if (t.task >= owner->task_count) {
        if (reply) failures.push_back(FailureReply(b->sender, t.id, kFailureUnknownTask));
      } else if ((status = delivery->Put(n, 0, meta, t, payload)) != napi_ok) {
        // The environment is being torn down (worker.terminate()): this task will never
        // run, as if the poller had closed first. Otherwise out of memory.
        bool ending = status == napi_pending_exception || status == napi_cannot_run_js;
        if (reply) failures.push_back(ending ? ClosedReply(b->sender, t.id) : FailureReply(b->sender, t.id, kFailureNoMemory));
      } else if (!reply) {
        hdr[n * kEntry] = -1;  // posted: JavaScript sends no answer
        n++;
      } else {
        uint32_t slot;
        np_taskq_retain(b->sender);
        if (!owner->free_slots.empty()) {
          slot = owner->free_slots.back();
          owner->free_slots.pop_back();
          owner->slots[slot] = TakenTask{b->sender, t.id};
        } else {
          slot = static_cast<uint32_t>(owner->slots.size());
          owner->slots.push_back(TakenTask{b->sender, t.id});
        }
        hdr[n * kEntry] = slot;
        n++;
      }
      if (++owner->next_index == b->count) {
        owner->chain = b->next;
        b->next = nullptr;
        owner->next_index = 0;
        owner->next_data = 0;
        finished.push_back(b);
      }
    }
  }
  if (!failures.empty()) SendReplies(failures);
  for (np_task_block* b : finished) np_task_block_free(b);
  napi_value result;
  napi_create_uint32(env, n, &result);
  // Native state is settled: JavaScript may run from here on.
  if (delivery != nullptr) delivery->Finish(info[1], cap);
  delete delivery;
  return Napi::Value(env, result);
}

bool RemoteHasTaken(const RemoteOwner* owner) { return owner != nullptr && owner->chain != nullptr; }

Napi::Value RemoteReply(const Napi::CallbackInfo& info, RemoteOwner* owner) {
  Napi::Env env = info.Env();
  double* hdr = nullptr;
  uint32_t count = 0;
  void* staging = nullptr;
  size_t staging_len = 0;
  if (!BatchArgs(info, "remoteReply", &hdr, &count, &staging, &staging_len)) return env.Undefined();
  if (owner == nullptr) return env.Undefined();  // closed: every task was answered then
  auto* bytes = static_cast<const unsigned char*>(staging);
  // Everything is checked before anything is sent: src/remote.ts never sends a malformed
  // reply, so one is a bug there or a forged call, and answers nothing.
  for (uint32_t k = 0; k < count; k++) {
    const double* e = hdr + k * kEntry;
    uint32_t slot, kind32, off = 0, len = 0;
    bool ok = ToU32(e[0], &slot) && slot < owner->slots.size() && owner->slots[slot].to != nullptr;
    ok = ok && ToU32(e[2], &kind32) && kind32 <= 0xff && ValidKind(static_cast<uint8_t>(kind32));
    if (ok && HasPayload(static_cast<uint8_t>(kind32))) {
      ok = ToU32(e[3], &off) && ToU32(e[4], &len) && static_cast<size_t>(off) + len <= staging_len &&
           len % ElementSize(static_cast<uint8_t>(kind32)) == 0;
    }
    if (!ok) {
      Napi::TypeError::New(env, "remoteReply: a malformed reply").ThrowAsJavaScriptException();
      return env.Undefined();
    }
  }
  std::vector<ReplyItem> items;
  items.reserve(count);
  for (uint32_t k = 0; k < count; k++) {
    const double* e = hdr + k * kEntry;
    auto slot = static_cast<uint32_t>(e[0]);
    auto kind = static_cast<uint8_t>(e[2]);
    TakenTask& taken = owner->slots[slot];
    if (taken.to == nullptr) continue;  // given twice in this call: answered already
    bool payload = HasPayload(kind);
    items.push_back(ReplyItem{taken.to, taken.id, kind, payload ? 0 : e[3],
                              payload ? bytes + static_cast<uint32_t>(e[3]) : nullptr, payload ? static_cast<uint32_t>(e[4]) : 0});
    taken.to = nullptr;
    owner->free_slots.push_back(slot);
  }
  SendReplies(items);
  // The slots' references to the callers' queues: released once their replies are sent.
  for (const ReplyItem& item : items) np_taskq_release(item.to);
  return env.Undefined();
}

void RemoteClose(np_taskq* q, RemoteOwner* owner) {
  np_task_block* queued = np_taskq_close(q);
  if (owner == nullptr) {
    np_task_chain_free(queued);  // nothing can be there: no handle, no producer
    return;
  }
  Unregister(owner->id);
  std::vector<ReplyItem> items;
  std::vector<np_taskq*> slot_refs;
  for (TakenTask& t : owner->slots) {
    if (t.to == nullptr) continue;
    items.push_back(ClosedReply(t.to, t.id));
    slot_refs.push_back(t.to);
    t.to = nullptr;
  }
  for (np_task_block* b = owner->chain; b != nullptr; b = b->next) {
    for (uint32_t i = b == owner->chain ? owner->next_index : 0; i < b->count; i++) {
      if (WantsReply(b->tasks[i])) items.push_back(ClosedReply(b->sender, b->tasks[i].id));
    }
  }
  for (np_task_block* b = queued; b != nullptr; b = b->next) {
    for (uint32_t i = 0; i < b->count; i++) {
      if (WantsReply(b->tasks[i])) items.push_back(ClosedReply(b->sender, b->tasks[i].id));
    }
  }
  // The blocks and slots hold the callers' queues: freed and released after sending.
  SendReplies(items);
  for (np_taskq* to : slot_refs) np_taskq_release(to);
  np_task_chain_free(owner->chain);
  owner->chain = nullptr;
  np_task_chain_free(queued);
  delete owner;
}

// ---- the caller's side ----

namespace {

struct ChannelCore;
class RemoteChannel;
class RemoteLink;

// What one environment (thread) keeps for its callers: the channels and links open
// in it, which its teardown closes; and the constructor connect() makes links with.
struct RemoteEnv {
  napi_env env = nullptr;
  napi_ref link_ctor = nullptr;
  ChannelCore* channels = nullptr;
  RemoteLink* links = nullptr;
  int closing = 0;  // uv_close callbacks still to come
  napi_async_cleanup_hook_handle hook = nullptr;
  bool tearing_down = false;
};

// A channel is Open until close(), its wrapper's collection or the environment's
// teardown (CloseChannel, the one transition), then Closed until libuv has closed
// its handle and the core is freed.
enum class ChannelState { Open, Closed };

// The native half of a RemoteChannel, apart from the wrapper because libuv owns the
// async handle until its close callback.
struct ChannelCore {
  uv_async_t async;
  np_taskq* q = nullptr;  // the replies (one reference; links and requests hold more)
  RemoteEnv* renv = nullptr;
  RemoteChannel* wrapper = nullptr;
  ChannelState state = ChannelState::Open;
  napi_ref on_replies = nullptr;
  napi_ref hdr = nullptr;
  napi_ref values = nullptr;
  napi_ref resource = nullptr;
  napi_async_context ctx = nullptr;
  ChannelCore* prev = nullptr;
  ChannelCore* next = nullptr;
};

void FinishTeardownIfDone(RemoteEnv* renv) {
  if (!renv->tearing_down || renv->closing > 0) return;
  napi_remove_async_cleanup_hook(renv->hook);
  delete renv;
}

// Called by poller threads with the reply queue's mutex held; never after the queue
// closed, so never after the handle was closed.
int WakeChannel(void* arg) { return uv_async_send(&static_cast<ChannelCore*>(arg)->async); }

void OnChannelClosed(uv_handle_t* handle) {
  auto* c = static_cast<ChannelCore*>(handle->data);
  RemoteEnv* renv = c->renv;
  np_taskq_release(c->q);
  delete c;
  renv->closing--;
  FinishTeardownIfDone(renv);
}

void CloseChannel(ChannelCore* c);

void DeleteRef(napi_env env, napi_ref* ref) {
  if (*ref != nullptr) napi_delete_reference(env, *ref);
  *ref = nullptr;
}

class RemoteLink : public Napi::ObjectWrap<RemoteLink> {
 public:
  static Napi::Function Define(Napi::Env env, RemoteEnv* renv) {
    return DefineClass(env, "RemoteLink",
                       {
                           InstanceMethod<&RemoteLink::Flush>("flush"),
                           InstanceMethod<&RemoteLink::Close>("close"),
                       },
                       renv);
  }

  explicit RemoteLink(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RemoteLink>(info) {
    renv_ = static_cast<RemoteEnv*>(info.Data());
    next_ = renv_->links;
    if (next_ != nullptr) next_->prev_ = this;
    renv_->links = this;
  }

  ~RemoteLink() override {
    Release();
    Unlink();
  }

  // connect() made this link: from now on it pushes to `target`, answers come to `replies`.
  void Attach(np_taskq* target, np_taskq* replies, uint32_t task_count) {
    target_ = target;
    replies_ = replies;
    np_taskq_retain(replies_);
    task_count_ = task_count;
  }

  void Release() {
    if (target_ != nullptr) np_taskq_release(target_);
    if (replies_ != nullptr) np_taskq_release(replies_);
    target_ = replies_ = nullptr;
  }

  // The environment is going away: let go of everything, and of the environment.
  void Unlink() {
    if (renv_ == nullptr) return;
    if (prev_ != nullptr) prev_->next_ = next_;
    else renv_->links = next_;
    if (next_ != nullptr) next_->prev_ = prev_;
    prev_ = next_ = nullptr;
    renv_ = nullptr;
  }

  RemoteLink* next() const { return next_; }

 private:
  // flush(hdr, count, staging): queues `count` tasks (kEntry doubles each in hdr,
  // payloads in staging) on the poller, in order, as pooled blocks (taskq.h): the
  // poller's thread gives them back to this thread's pool once answered. Returns how many were queued: all, or the first ones when the poller
  // went away meanwhile (none once it is gone); -ENOMEM (none queued).
  Napi::Value Flush(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    double* hdr = nullptr;
    uint32_t count = 0;
    void* staging = nullptr;
    size_t staging_len = 0;
    if (!BatchArgs(info, "flush", &hdr, &count, &staging, &staging_len)) return env.Undefined();
    if (target_ == nullptr || count == 0) return Napi::Number::New(env, 0);
    for (uint32_t k = 0; k < count; k++) {
      const double* e = hdr + k * kEntry;
      uint32_t id, meta, kind, off, len;
      bool ok = (e[0] == kNoReplyId || ToU32(e[0], &id)) && ToU32(e[1], &meta) && (meta >> 1) < task_count_ && ToU32(e[2], &kind) &&
                kind < kErrorFlag && ValidKind(static_cast<uint8_t>(kind)) && kind != kFailure;
      if (ok && HasPayload(static_cast<uint8_t>(kind))) {
        ok = ToU32(e[3], &off) && ToU32(e[4], &len) && static_cast<size_t>(off) + len <= staging_len &&
             len % ElementSize(static_cast<uint8_t>(kind)) == 0;
      }
      if (!ok) {
        Napi::TypeError::New(env, "flush: a malformed task").ThrowAsJavaScriptException();
        return env.Undefined();
      }
    }
    // Every block is made before any is pushed: out of memory queues nothing.
    std::vector<np_task_block*> blocks;
    auto* bytes = static_cast<const unsigned char*>(staging);
    for (uint32_t start = 0; start < count;) {
      uint32_t end = start;
      size_t data = 0;
      while (end < count) {
        const double* e = hdr + end * kEntry;
        size_t need = HasPayload(static_cast<uint8_t>(e[2])) ? np_task_payload_start(data) + static_cast<uint32_t>(e[4]) : data;
        if (!np_task_block_fits_pool(end - start + 1, need) && end > start) break;
        data = need;
        end++;
      }
      np_task_block* block;
      if (np_task_block_fits_pool(end - start, data)) {
        block = np_task_block_from_pool(replies_, end - start, data);
      } else {
        block = np_task_block_new(end - start, data);  // one task too large for a pooled block
        if (block != nullptr) {
          block->sender = replies_;
          np_taskq_retain(replies_);
        }
      }
      if (block == nullptr) {
        for (np_task_block* b : blocks) np_task_block_free(b);
        return Napi::Number::New(env, -ENOMEM);
      }
      unsigned char* out = np_task_block_data(block);
      size_t pos = 0;
      for (uint32_t k = start; k < end; k++) {
        const double* e = hdr + k * kEntry;
        np_task& t = block->tasks[k - start];
        auto meta = static_cast<uint32_t>(e[1]);
        bool no_reply = e[0] == kNoReplyId;
        t.id = no_reply ? 0 : static_cast<uint32_t>(e[0]);
        t.task = static_cast<uint16_t>(meta >> 1);
        t.priority = static_cast<uint8_t>(meta & 1);
        t.kind = static_cast<uint8_t>(e[2]);
        t.flags = no_reply ? NP_TASK_NO_REPLY : 0;
        if (HasPayload(t.kind)) {
          t.num = 0;
          t.len = static_cast<uint32_t>(e[4]);
          pos = np_task_payload_start(pos);
          if (t.len > 0) std::memcpy(out + pos, bytes + static_cast<uint32_t>(e[3]), t.len);
          pos += t.len;
        } else {
          t.num = e[3];
          t.len = 0;
        }
      }
      blocks.push_back(block);
      start = end;
    }
    uint32_t queued = 0;
    for (size_t i = 0; i < blocks.size(); i++) {
      uint32_t tasks = blocks[i]->count;
      // A failed wake (the waker's fd closed behind the poller's back) leaves the tasks
      // queued: they run at the poller's next round, or are answered when it closes.
      if (np_taskq_push(target_, blocks[i]) == NP_TASKQ_CLOSED) {
        for (size_t j = i; j < blocks.size(); j++) np_task_block_free(blocks[j]);
        break;
      }
      queued += tasks;
    }
    return Napi::Number::New(env, queued);
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Release();
    return info.Env().Undefined();
  }

  RemoteEnv* renv_ = nullptr;
  RemoteLink* prev_ = nullptr;
  RemoteLink* next_ = nullptr;
  np_taskq* target_ = nullptr;
  np_taskq* replies_ = nullptr;
  uint32_t task_count_ = 0;
};

void OnChannelAsync(uv_async_t* handle);

class RemoteChannel : public Napi::ObjectWrap<RemoteChannel> {
 public:
  static Napi::Function Define(Napi::Env env, RemoteEnv* renv) {
    return DefineClass(env, "RemoteChannel",
                       {
                           InstanceMethod<&RemoteChannel::Connect>("connect"),
                           InstanceMethod<&RemoteChannel::SetRef>("setRef"),
                           InstanceMethod<&RemoteChannel::Close>("close"),
                       },
                       renv);
  }

  // new RemoteChannel(onReplies, hdr, values): replies arrive as onReplies(n), with
  // n entries in hdr (kEntry doubles each: call id, 0, kind, num, 0) and the values of
  // payload kinds at the same index of `values`.
  explicit RemoteChannel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RemoteChannel>(info) {
    Napi::Env env = info.Env();
    double* hdr = nullptr;
    size_t doubles = 0;
    if (info.Length() < 3 || !info[0].IsFunction() || !Float64Args(env, info[1], &hdr, &doubles) || doubles < kEntry ||
        !info[2].IsArray()) {
      Napi::TypeError::New(env, "new RemoteChannel(onReplies, hdr, values) expects a function, a Float64Array and an array")
          .ThrowAsJavaScriptException();
      return;
    }
    auto* c = new ChannelCore();
    c->renv = static_cast<RemoteEnv*>(info.Data());
    c->q = np_taskq_new(WakeChannel, c);
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    if (c->q == nullptr || uv_async_init(loop, &c->async, OnChannelAsync) != 0) {
      if (c->q != nullptr) np_taskq_release(c->q);
      delete c;
      Napi::Error::New(env, "could not create a reply channel").ThrowAsJavaScriptException();
      return;
    }
    c->async.data = c;
    // Only pending calls keep the thread alive (setRef).
    uv_unref(reinterpret_cast<uv_handle_t*>(&c->async));
    napi_create_reference(env, info[0], 1, &c->on_replies);
    napi_create_reference(env, info[1], 1, &c->hdr);
    napi_create_reference(env, info[2], 1, &c->values);
    Napi::Object resource = Napi::Object::New(env);
    napi_create_reference(env, resource, 1, &c->resource);
    napi_async_init(env, resource, Napi::String::New(env, "netpoll.RemotePoller"), &c->ctx);
    c->wrapper = this;
    RemoteEnv* renv = c->renv;
    c->next = renv->channels;
    if (c->next != nullptr) c->next->prev = c;
    renv->channels = c;
    core_ = c;
  }

  ~RemoteChannel() override {
    if (core_ != nullptr) CloseChannel(core_);
  }

  void Detach() { core_ = nullptr; }

 private:
  // connect(id, token): a RemoteLink to the poller registered under id, with
  // `taskCount` and `names` (as handle() encoded them) set on it; -ENOENT when no open
  // poller has that id and token; -EPIPE when this channel is closed.
  Napi::Value Connect(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsString()) {
      Napi::TypeError::New(env, "connect(id, token) expects a number and a string").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (core_ == nullptr) return Napi::Number::New(env, -EPIPE);
    double id = info[0].As<Napi::Number>().DoubleValue();
    std::string token = info[1].As<Napi::String>().Utf8Value();
    if (!(id >= 1 && id <= 9007199254740991.0) || id != std::floor(id)) return Napi::Number::New(env, -ENOENT);
    np_taskq* target = nullptr;
    std::string names;
    uint32_t task_count = 0;
    {
      Registry& r = TheRegistry();
      std::lock_guard<std::mutex> lock(r.mu);
      auto it = r.owners.find(static_cast<uint64_t>(id));
      if (it != r.owners.end() && it->second.token == token) {
        target = it->second.q;
        np_taskq_retain(target);
        names = it->second.names;
        task_count = it->second.task_count;
      }
    }
    if (target == nullptr) return Napi::Number::New(env, -ENOENT);
    RemoteEnv* renv = core_->renv;
    napi_value ctor, obj;
    if (napi_get_reference_value(env, renv->link_ctor, &ctor) != napi_ok ||
        napi_new_instance(env, ctor, 0, nullptr, &obj) != napi_ok) {
      np_taskq_release(target);
      return env.Undefined();  // an exception is pending
    }
    // napi_unwrap too fails once the environment is terminating (worker.terminate()).
    RemoteLink* link = RemoteLink::Unwrap(Napi::Object(env, obj));
    if (link == nullptr) {
      np_taskq_release(target);
      return env.Undefined();
    }
    link->Attach(target, core_->q, task_count);
    Napi::Object o(env, obj);
    o.Set("taskCount", Napi::Number::New(env, task_count));
    o.Set("names", Napi::String::New(env, names));
    return o;
  }

  Napi::Value SetRef(const Napi::CallbackInfo& info) {
    if (core_ != nullptr) {
      auto* h = reinterpret_cast<uv_handle_t*>(&core_->async);
      if (BoolArg(info, 0)) uv_ref(h);
      else uv_unref(h);
    }
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (core_ != nullptr) CloseChannel(core_);
    return info.Env().Undefined();
  }

  ChannelCore* core_ = nullptr;
};

void CloseChannel(ChannelCore* c) {
  if (c->state == ChannelState::Closed) return;
  c->state = ChannelState::Closed;
  // From here no poller thread wakes this channel, and replies to it are dropped.
  np_task_chain_free(np_taskq_close(c->q));
  RemoteEnv* renv = c->renv;
  if (c->prev != nullptr) c->prev->next = c->next;
  else renv->channels = c->next;
  if (c->next != nullptr) c->next->prev = c->prev;
  c->prev = c->next = nullptr;
  if (c->wrapper != nullptr) c->wrapper->Detach();
  c->wrapper = nullptr;
  napi_env env = renv->env;
  if (c->ctx != nullptr) napi_async_destroy(env, c->ctx);
  c->ctx = nullptr;
  DeleteRef(env, &c->on_replies);
  DeleteRef(env, &c->hdr);
  DeleteRef(env, &c->values);
  DeleteRef(env, &c->resource);
  renv->closing++;
  uv_close(reinterpret_cast<uv_handle_t*>(&c->async), OnChannelClosed);
}

// Replies arrived (libuv coalesces the sends of every poller thread into one call):
// each chunk that fits the channel's Float64Array goes to JavaScript in one call.
void OnChannelAsync(uv_async_t* handle) {
  auto* c = static_cast<ChannelCore*>(handle->data);
  if (c->state != ChannelState::Open) return;
  // Clear the flag before taking: a reply pushed after the take wakes us again.
  np_taskq_end_round(c->q);
  np_task_block* chain = np_taskq_take(c->q);
  uint32_t index = 0;
  size_t data = 0;
  napi_env env = c->renv->env;
  while (chain != nullptr && c->state == ChannelState::Open) {
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) break;
    napi_value fn, hdr_value, values, resource;
    double* hdr = nullptr;
    size_t doubles = 0;
    bool ready = napi_get_reference_value(env, c->on_replies, &fn) == napi_ok &&
                 napi_get_reference_value(env, c->hdr, &hdr_value) == napi_ok &&
                 napi_get_reference_value(env, c->values, &values) == napi_ok &&
                 napi_get_reference_value(env, c->resource, &resource) == napi_ok &&
                 Float64Args(env, hdr_value, &hdr, &doubles) && doubles >= kEntry;
    if (!ready) {
      napi_close_handle_scope(env, scope);
      break;
    }
    size_t cap = doubles / kEntry;
    size_t chunk = 0;
    uint32_t n = PlanDelivery(chain, index, cap, &chunk);
    Delivery delivery(env, hdr, chunk);
    for (uint32_t k = 0; k < n; k++) {
      const np_task& t = chain->tasks[index];
      const unsigned char* payload = nullptr;
      if (HasPayload(t.kind)) {
        size_t at = np_task_payload_start(data);
        payload = np_task_block_data(chain) + at;
        data = at + t.len;
      }
      if (delivery.Put(k, t.id, 0, t, payload) != napi_ok) {
        double* e = hdr + k * kEntry;
        e[0] = t.id;
        e[1] = 0;
        e[2] = kFailure | kErrorFlag;
        e[3] = kFailureNoMemory;
        e[4] = 0;
      }
      if (++index == chain->count) {
        np_task_block* done = chain;
        chain = chain->next;
        np_task_block_free(done);
        index = 0;
        data = 0;
      }
    }
    // Native state is settled: JavaScript may run from here on.
    delivery.Finish(values, cap);
    napi_value argv[1];
    napi_create_uint32(env, n, &argv[0]);
    napi_status status = napi_make_callback(env, c->ctx, resource, fn, 1, argv, nullptr);
    bool pending = false;
    if (status != napi_ok && napi_is_exception_pending(env, &pending) == napi_ok && pending) {
      napi_value exception;
      if (napi_get_and_clear_last_exception(env, &exception) == napi_ok) napi_fatal_exception(env, exception);
    }
    napi_close_handle_scope(env, scope);
    // The environment is terminating (worker.terminate()): nothing more can be delivered.
    if (status != napi_ok && !pending) break;
  }
  np_task_chain_free(chain);
}

void OnRemoteTeardown(napi_async_cleanup_hook_handle, void* arg) {
  auto* renv = static_cast<RemoteEnv*>(arg);
  renv->tearing_down = true;
  while (renv->links != nullptr) {
    RemoteLink* link = renv->links;
    link->Release();
    link->Unlink();
  }
  while (renv->channels != nullptr) CloseChannel(renv->channels);
  DeleteRef(renv->env, &renv->link_ctor);
  FinishTeardownIfDone(renv);
}

Napi::Object Codes(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("UNDEFINED", static_cast<int>(kUndefined));
  o.Set("NULL", static_cast<int>(kNull));
  o.Set("FALSE", static_cast<int>(kFalse));
  o.Set("TRUE", static_cast<int>(kTrue));
  o.Set("NUMBER", static_cast<int>(kNumber));
  o.Set("STRING", static_cast<int>(kString));
  o.Set("SERIALIZED", static_cast<int>(kSerialized));
  o.Set("SENTINEL", static_cast<int>(kSentinel));
  o.Set("ARRAYBUFFER", static_cast<int>(kArrayBuffer));
  o.Set("BUFFER", static_cast<int>(kBuffer));
  o.Set("FAILURE", static_cast<int>(kFailure));
  o.Set("TYPED", static_cast<int>(kTyped));
  o.Set("ERROR", static_cast<int>(kErrorFlag));
  o.Set("ENTRY", static_cast<int>(kEntry));
  o.Set("FAILURE_UNKNOWN_TASK", kFailureUnknownTask);
  o.Set("FAILURE_NO_MEMORY", kFailureNoMemory);
  o.Set("MAX_TASKS", static_cast<int>(kMaxTasks));
  o.Set("NO_REPLY", kNoReplyId);
  return o;
}

}  // namespace

void InitRemote(Napi::Env env, Napi::Object exports) {
  auto* renv = new RemoteEnv();
  renv->env = env;
  napi_add_async_cleanup_hook(env, OnRemoteTeardown, renv, &renv->hook);
  Napi::Function link = RemoteLink::Define(env, renv);
  napi_create_reference(env, link, 1, &renv->link_ctor);
  exports.Set("RemoteChannel", RemoteChannel::Define(env, renv));
  exports.Set("remoteCodes", Codes(env));
}
