// The socket toolkit's glue (binding_socket.cc) and what it asks of the poller glue
// (binding.cc).
#ifndef NETPOLL_BINDING_SOCKET_H
#define NETPOLL_BINDING_SOCKET_H

#include <napi.h>

// Adds the toolkit's functions and socketConstants to the exports.
void InitSocket(Napi::Env env, Napi::Object exports);

// 0 when `fd` may be closed, -EBUSY when it is a descriptor of an open poller, this
// thread's or another's (binding.cc's registry): closing it would let the number be
// reused under that poller.
int MayCloseFd(int fd);

#endif
