// The binding's half of trigger() from other threads (binding_remote.cc): what the
// poller glue (binding.cc) calls. The queue itself is plain C (taskq.h).
//
//   owner side   a poller's request queue (every poller has one: its wake flag is
//                also what local triggers use) and, once handle() was called, a
//                RemoteOwner: the registration other threads connect through and the
//                tasks taken into JavaScript but not answered yet.
//   caller side  RemoteChannel (one per JS module instance per thread: its replies
//                arrive through one uv_async_t) and RemoteLink (one per connectPoller).
#ifndef NETPOLL_REMOTE_H
#define NETPOLL_REMOTE_H

#include <napi.h>

#include "taskq.h"

struct RemoteOwner;

// remoteOpen(names, token): registers the poller under a new id; the id (> 0) or a
// negative errno (-EBUSY: it has a handle already).
Napi::Value RemoteOpen(const Napi::CallbackInfo& info, np_taskq* q, RemoteOwner** owner);

// remoteTake(hdr, values, refill): moves queued tasks into JavaScript, at most
// hdr.length / 5; returns how many. Takes from the queue only when `refill` (once per
// chores round), else goes on with what the round's first call took.
Napi::Value RemoteTake(const Napi::CallbackInfo& info, RemoteOwner* owner);

// Whether tasks taken from the queue wait for a later chores round (a round takes a
// bounded number): polling that starts must run a round for them as for queued ones.
bool RemoteHasTaken(const RemoteOwner* owner);

// remoteReply(hdr, count, staging): sends results back to their callers.
Napi::Value RemoteReply(const Napi::CallbackInfo& info, RemoteOwner* owner);

// The poller closes (or its thread ends): closes the request queue (no producer can
// queue or wake after this returns), answers every queued and every taken task with
// ErrPollerClosed, forgets the registration and frees the owner. `owner` may be null
// (no handle was made).
void RemoteClose(np_taskq* q, RemoteOwner* owner);

// Adds the caller-side classes and the value codes to the exports, and the
// environment's teardown of what they left open.
void InitRemote(Napi::Env env, Napi::Object exports);

#endif
