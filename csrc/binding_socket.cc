// Node-API glue for the socket toolkit (src/socket.ts over fdio.h): thin wrappers
// returning numbers (a count, an fd, 0, or a negative errno) or plain objects, never
// throwing for kernel errors (src/errors.ts shapes those). Only wrong argument types
// throw. Stateless: nothing here outlives a call, so nothing needs instance data.
//
// Nothing runs JavaScript between taking a pointer into JS memory and the syscall that
// uses it: readv/writev read every element before taking any pointer (IovecArg), and
// the byte arguments are read last.

#include "binding_socket.h"

#include <napi.h>

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string>

#include "fdio.h"

namespace {

bool IntArg(const Napi::CallbackInfo& info, size_t i, int* out) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    Napi::TypeError::New(info.Env(), "expected a number").ThrowAsJavaScriptException();
    return false;
  }
  *out = info[i].As<Napi::Number>().Int32Value();
  return true;
}

bool StringArg(const Napi::CallbackInfo& info, size_t i, std::string* out) {
  if (info.Length() <= i || !info[i].IsString()) {
    Napi::TypeError::New(info.Env(), "expected a string").ThrowAsJavaScriptException();
    return false;
  }
  *out = info[i].As<Napi::String>().Utf8Value();
  return true;
}

size_t TypedArrayElementSize(napi_typedarray_type type) {
  switch (type) {
    case napi_int16_array: case napi_uint16_array: return 2;
    case napi_int32_array: case napi_uint32_array: case napi_float32_array: return 4;
    case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: return 8;
    default: return 1;
  }
}

// The bytes of a TypedArray, DataView or ArrayBuffer value; false when it is none.
bool BytesOf(napi_env env, napi_value v, void** data, size_t* len) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t length, offset;
    napi_value ab;
    napi_get_typedarray_info(env, v, &type, &length, data, &ab, &offset);
    *len = length * TypedArrayElementSize(type);
    return true;
  }
  if (napi_is_dataview(env, v, &is) == napi_ok && is) {
    napi_value ab;
    size_t offset;
    napi_get_dataview_info(env, v, len, data, &ab, &offset);
    return true;
  }
  if (napi_is_arraybuffer(env, v, &is) == napi_ok && is) {
    napi_get_arraybuffer_info(env, v, data, len);
    return true;
  }
  return false;
}

// The bytes of argument i, or false with a TypeError.
bool BytesArg(const Napi::CallbackInfo& info, size_t i, void** data, size_t* len) {
  if (info.Length() > i && BytesOf(info.Env(), info[i], data, len)) return true;
  Napi::TypeError::New(info.Env(), "expected a Buffer, TypedArray, DataView or ArrayBuffer").ThrowAsJavaScriptException();
  return false;
}

// The most buffers one readv/writev takes: np_iov_max() is at most this.
constexpr int kIovCap = 1024;

// Up to np_iov_max() buffers of the array argument i as iovecs; -1 with a TypeError
// (or the exception a getter threw).
//
// Reading an element can run JavaScript: an accessor on the index, or on
// Array.prototype for a hole. That code can detach the buffer of an element read
// before it (transfer it) and let the collector free it, so every element is read
// first, and only then are the pointers taken: from there to the syscall no
// JavaScript runs (the type checks and napi_get_*_info run none). A detached
// buffer is then simply empty (V8 reports no data and length 0).
int IovecArg(const Napi::CallbackInfo& info, size_t i, struct iovec* iov, int cap) {
  napi_env env = info.Env();
  bool is_array = false;
  uint32_t length = 0;
  if (info.Length() <= i || napi_is_array(env, info[i], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, info[i], &length) != napi_ok) {
    napi_throw_type_error(env, nullptr, "expected an array of buffers");
    return -1;
  }
  int count = length < static_cast<uint32_t>(cap) ? static_cast<int>(length) : cap;
  napi_value items[kIovCap];
  for (int k = 0; k < count; k++) {
    if (napi_get_element(env, info[i], static_cast<uint32_t>(k), &items[k]) != napi_ok) return -1;
  }
  // No JavaScript from here on.
  for (int k = 0; k < count; k++) {
    void* data;
    size_t len;
    if (!BytesOf(env, items[k], &data, &len)) {
      napi_throw_type_error(env, nullptr, "expected an array of Buffers, TypedArrays, DataViews or ArrayBuffers");
      return -1;
    }
    iov[k].iov_base = data;
    iov[k].iov_len = len;
  }
  return count;
}

Napi::Value Count(Napi::Env env, ssize_t n) { return Napi::Number::New(env, static_cast<double>(n)); }

Napi::Object AddressObject(Napi::Env env, const np_addr& a) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("address", Napi::String::New(env, a.address, static_cast<size_t>(a.address_len)));
  o.Set("family", a.family == AF_INET ? "IPv4" : a.family == AF_INET6 ? "IPv6" : "Unix");
  o.Set("port", a.port);
  return o;
}

Napi::Value FdPair(Napi::Env env, int err, const int fds[2]) {
  if (err < 0) return Napi::Number::New(env, err);
  Napi::Array pair = Napi::Array::New(env, 2);
  pair.Set(uint32_t{0}, Napi::Number::New(env, fds[0]));
  pair.Set(uint32_t{1}, Napi::Number::New(env, fds[1]));
  return pair;
}

Napi::Value Pipe(const Napi::CallbackInfo& info) {
  int fds[2] = {-1, -1};
  return FdPair(info.Env(), np_pipe(fds), fds);
}

Napi::Value SocketPair(const Napi::CallbackInfo& info) {
  int fds[2] = {-1, -1};
  return FdPair(info.Env(), np_socketpair(fds), fds);
}

Napi::Value ListenTCP(const Napi::CallbackInfo& info) {
  std::string host;
  int port, backlog, flags;
  if (!StringArg(info, 0, &host) || !IntArg(info, 1, &port) || !IntArg(info, 2, &backlog) || !IntArg(info, 3, &flags)) {
    return info.Env().Undefined();
  }
  return Napi::Number::New(info.Env(), np_listen_tcp(host.c_str(), port, backlog, flags));
}

Napi::Value Accept(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int lfd;
  if (!IntArg(info, 0, &lfd)) return env.Undefined();
  np_addr peer;
  int fd = np_accept(lfd, &peer);
  if (fd < 0) return Napi::Number::New(env, fd);
  Napi::Object o = Napi::Object::New(env);
  o.Set("fd", fd);
  o.Set("address", AddressObject(env, peer));
  return o;
}

Napi::Value DialTCP(const Napi::CallbackInfo& info) {
  std::string host;
  int port, nonblocking;
  if (!StringArg(info, 0, &host) || !IntArg(info, 1, &port) || !IntArg(info, 2, &nonblocking)) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), np_dial_tcp(host.c_str(), port, nonblocking));
}

Napi::Value SocketError(const Napi::CallbackInfo& info) {
  int fd;
  if (!IntArg(info, 0, &fd)) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), np_socket_error(fd));
}

// listenUnix(path, backlog, mode): mode -1 leaves the file's mode to the umask.
Napi::Value ListenUnix(const Napi::CallbackInfo& info) {
  std::string path;
  int backlog, mode;
  if (!StringArg(info, 0, &path) || !IntArg(info, 1, &backlog) || !IntArg(info, 2, &mode)) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), np_listen_unix(path.data(), path.size(), backlog, mode));
}

Napi::Value PeerCredentials(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!IntArg(info, 0, &fd)) return env.Undefined();
  np_peer_cred cred;
  int err = np_peer_credentials(fd, &cred);
  if (err < 0) return Napi::Number::New(env, err);
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", cred.pid < 0 ? env.Null() : Napi::Number::New(env, static_cast<double>(cred.pid)));
  o.Set("uid", Napi::Number::New(env, static_cast<double>(cred.uid)));
  o.Set("gid", Napi::Number::New(env, static_cast<double>(cred.gid)));
  return o;
}

Napi::Value DialUnix(const Napi::CallbackInfo& info) {
  std::string path;
  if (!StringArg(info, 0, &path)) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), np_dial_unix(path.data(), path.size()));
}

Napi::Value BindUDP(const Napi::CallbackInfo& info) {
  std::string host;
  int port, flags;
  if (!StringArg(info, 0, &host) || !IntArg(info, 1, &port) || !IntArg(info, 2, &flags)) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), np_bind_udp(host.c_str(), port, flags));
}

Napi::Value SendTo(const Napi::CallbackInfo& info) {
  int fd, port;
  void* data;
  size_t len;
  std::string host;
  // The buffer's pointer last, right before the syscall (no argument check runs
  // JavaScript, but nothing may come between the pointer and its use).
  if (!IntArg(info, 0, &fd) || !StringArg(info, 2, &host) || !IntArg(info, 3, &port) || !BytesArg(info, 1, &data, &len)) {
    return info.Env().Undefined();
  }
  return Count(info.Env(), np_send_to(fd, data, len, host.c_str(), port));
}

Napi::Value RecvFrom(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  void* data;
  size_t len;
  if (!IntArg(info, 0, &fd) || !BytesArg(info, 1, &data, &len)) return env.Undefined();
  np_addr from;
  ssize_t n = np_recv_from(fd, data, len, &from);
  if (n < 0) return Count(env, n);
  Napi::Object o = Napi::Object::New(env);
  o.Set("bytes", Count(env, n));
  o.Set("address", AddressObject(env, from));
  return o;
}

// (fd, bytes[, offset, length]) → the byte count or negative errno of `io`: read,
// write and the urgent-data calls all take their arguments this way. These run once
// or twice per message in a server, so they use Node-API directly with the fewest
// calls the arguments allow (node-addon-api's wrappers add a type query per argument):
// a wrong type still shows up as the failed status of the conversion itself.
// [offset, offset + length) comes from arguments 2 and 3 when given (src/socket.ts
// checks them; out of bounds is a RangeError here too, never I/O past the buffer).
template <ssize_t (*io)(int, void*, size_t)>
napi_value FdBytesCall(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  int32_t fd;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, nullptr, "expected a number");
    return nullptr;
  }
  void* data;
  size_t len;
  napi_typedarray_type type;
  size_t length, offset;
  if (napi_get_typedarray_info(env, argv[1], &type, &length, &data, nullptr, &offset) == napi_ok) {
    len = length * TypedArrayElementSize(type);
  } else if (!BytesOf(env, argv[1], &data, &len)) {
    napi_throw_type_error(env, nullptr, "expected a Buffer, TypedArray, DataView or ArrayBuffer");
    return nullptr;
  }
  if (argc >= 3) {
    double from, count;
    bool numbers = napi_get_value_double(env, argv[2], &from) == napi_ok;
    numbers = numbers && argc >= 4 && napi_get_value_double(env, argv[3], &count) == napi_ok;
    if (numbers) {
      if (!(from >= 0) || !(count >= 0) || from + count > static_cast<double>(len)) {
        napi_throw_range_error(env, nullptr, "offset and length must lie within the buffer");
        return nullptr;
      }
      data = static_cast<char*>(data) + static_cast<size_t>(from);
      len = static_cast<size_t>(count);
    } else {
      napi_valuetype t;
      if (napi_typeof(env, argv[2], &t) != napi_ok || t != napi_undefined) {
        napi_throw_type_error(env, nullptr, "offset and length must be numbers");
        return nullptr;
      }
    }
  }
  ssize_t n = io(fd, data, len);
  napi_value result;
  // A count or an errno fits an int32 (Linux caps one transfer below 2 GiB); a
  // double only for what another kernel might return beyond that.
  if (n >= INT32_MIN && n <= INT32_MAX) napi_create_int32(env, static_cast<int32_t>(n), &result);
  else napi_create_double(env, static_cast<double>(n), &result);
  return result;
}

// A function for a callback written against Node-API directly (see FdBytesCall).
Napi::Value RawFunction(Napi::Env env, napi_callback cb, const char* name) {
  napi_value fn;
  if (napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, nullptr, &fn) != napi_ok) return env.Undefined();
  return Napi::Value(env, fn);
}

ssize_t WriteBytes(int fd, void* data, size_t len) { return np_write(fd, data, len); }
ssize_t SendUrgentBytes(int fd, void* data, size_t len) { return np_send_urgent(fd, data, len); }

// The iovec array lives on the stack: np_iov_max() is at most kIovCap entries (16 KiB).

Napi::Value Readv(const Napi::CallbackInfo& info) {
  int fd;
  struct iovec iov[kIovCap];
  if (!IntArg(info, 0, &fd)) return info.Env().Undefined();
  int count = IovecArg(info, 1, iov, np_iov_max());
  if (count < 0) return info.Env().Undefined();
  return Count(info.Env(), np_readv(fd, iov, count));
}

Napi::Value Writev(const Napi::CallbackInfo& info) {
  int fd;
  struct iovec iov[kIovCap];
  if (!IntArg(info, 0, &fd)) return info.Env().Undefined();
  int count = IovecArg(info, 1, iov, np_iov_max());
  if (count < 0) return info.Env().Undefined();
  return Count(info.Env(), np_writev(fd, iov, count));
}


Napi::Value Shutdown(const Napi::CallbackInfo& info) {
  int fd, how;
  if (!IntArg(info, 0, &fd) || !IntArg(info, 1, &how)) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), np_shutdown(fd, how));
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  int fd;
  if (!IntArg(info, 0, &fd)) return info.Env().Undefined();
  // Closing a descriptor of any open poller, this thread's or another's, would let
  // the number be reused under it: refuse, the poller's close() is the way. The
  // close itself runs outside the registry's lock (a socket with SO_LINGER can
  // block in it): the fd is open, so no poller can take its number meanwhile.
  if (fd >= 0) {
    int busy = MayCloseFd(fd);
    if (busy < 0) return Napi::Number::New(info.Env(), busy);
  }
  return Napi::Number::New(info.Env(), np_close(fd));
}

Napi::Value Dup(const Napi::CallbackInfo& info) {
  int fd;
  if (!IntArg(info, 0, &fd)) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), np_dup(fd));
}

Napi::Value SetSockOpt(const Napi::CallbackInfo& info) {
  int fd, opt, value;
  if (!IntArg(info, 0, &fd) || !IntArg(info, 1, &opt) || !IntArg(info, 2, &value)) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), np_setsockopt(fd, opt, value));
}

Napi::Value GetSockOpt(const Napi::CallbackInfo& info) {
  int fd, opt;
  if (!IntArg(info, 0, &fd) || !IntArg(info, 1, &opt)) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), np_getsockopt(fd, opt));
}

Napi::Value SetKeepAlive(const Napi::CallbackInfo& info) {
  int fd, on, idle;
  if (!IntArg(info, 0, &fd) || !IntArg(info, 1, &on) || !IntArg(info, 2, &idle)) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), np_set_keepalive(fd, on, idle));
}

Napi::Value Name(const Napi::CallbackInfo& info, int (*get)(int, np_addr*)) {
  Napi::Env env = info.Env();
  int fd;
  if (!IntArg(info, 0, &fd)) return env.Undefined();
  np_addr a;
  int err = get(fd, &a);
  if (err < 0) return Napi::Number::New(env, err);
  return AddressObject(env, a);
}

Napi::Value LocalAddress(const Napi::CallbackInfo& info) { return Name(info, np_local_address); }
Napi::Value RemoteAddress(const Napi::CallbackInfo& info) { return Name(info, np_remote_address); }

Napi::Object SocketConstants(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("REUSEADDR", static_cast<int>(NP_SOCK_REUSEADDR));
  o.Set("REUSEPORT", static_cast<int>(NP_SOCK_REUSEPORT));
  o.Set("V6ONLY", static_cast<int>(NP_SOCK_V6ONLY));
  o.Set("SHUT_RD", static_cast<int>(NP_SHUT_RD));
  o.Set("SHUT_WR", static_cast<int>(NP_SHUT_WR));
  o.Set("SHUT_RDWR", static_cast<int>(NP_SHUT_RDWR));
  o.Set("IOV_MAX", np_iov_max());
  o.Set("EBADADDR", static_cast<int>(NP_EBADADDR));
  Napi::Object opts = Napi::Object::New(env);
  opts.Set("noDelay", static_cast<int>(NP_OPT_NODELAY));
  opts.Set("keepAlive", static_cast<int>(NP_OPT_KEEPALIVE));
  opts.Set("keepAliveIdle", static_cast<int>(NP_OPT_KEEPIDLE));
  opts.Set("keepAliveInterval", static_cast<int>(NP_OPT_KEEPINTVL));
  opts.Set("keepAliveCount", static_cast<int>(NP_OPT_KEEPCNT));
  opts.Set("recvBuffer", static_cast<int>(NP_OPT_RCVBUF));
  opts.Set("sendBuffer", static_cast<int>(NP_OPT_SNDBUF));
  opts.Set("reuseAddr", static_cast<int>(NP_OPT_REUSEADDR));
  opts.Set("reusePort", static_cast<int>(NP_OPT_REUSEPORT));
  opts.Set("ipv6Only", static_cast<int>(NP_OPT_V6ONLY));
  o.Set("options", opts);
  return o;
}

}  // namespace

void InitSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("pipe", Napi::Function::New<Pipe>(env, "pipe"));
  exports.Set("socketpair", Napi::Function::New<SocketPair>(env, "socketpair"));
  exports.Set("listenTCP", Napi::Function::New<ListenTCP>(env, "listenTCP"));
  exports.Set("accept", Napi::Function::New<Accept>(env, "accept"));
  exports.Set("dialTCP", Napi::Function::New<DialTCP>(env, "dialTCP"));
  exports.Set("socketError", Napi::Function::New<SocketError>(env, "socketError"));
  exports.Set("listenUnix", Napi::Function::New<ListenUnix>(env, "listenUnix"));
  exports.Set("dialUnix", Napi::Function::New<DialUnix>(env, "dialUnix"));
  exports.Set("peerCredentials", Napi::Function::New<PeerCredentials>(env, "peerCredentials"));
  exports.Set("bindUDP", Napi::Function::New<BindUDP>(env, "bindUDP"));
  exports.Set("sendTo", Napi::Function::New<SendTo>(env, "sendTo"));
  exports.Set("recvFrom", Napi::Function::New<RecvFrom>(env, "recvFrom"));
  exports.Set("read", RawFunction(env, FdBytesCall<np_read>, "read"));
  exports.Set("write", RawFunction(env, FdBytesCall<WriteBytes>, "write"));
  exports.Set("readv", Napi::Function::New<Readv>(env, "readv"));
  exports.Set("writev", Napi::Function::New<Writev>(env, "writev"));
  exports.Set("sendUrgent", RawFunction(env, FdBytesCall<SendUrgentBytes>, "sendUrgent"));
  exports.Set("recvUrgent", RawFunction(env, FdBytesCall<np_recv_urgent>, "recvUrgent"));
  exports.Set("shutdown", Napi::Function::New<Shutdown>(env, "shutdown"));
  exports.Set("close", Napi::Function::New<CloseFd>(env, "close"));
  exports.Set("dup", Napi::Function::New<Dup>(env, "dup"));
  exports.Set("setSockOpt", Napi::Function::New<SetSockOpt>(env, "setSockOpt"));
  exports.Set("getSockOpt", Napi::Function::New<GetSockOpt>(env, "getSockOpt"));
  exports.Set("setKeepAlive", Napi::Function::New<SetKeepAlive>(env, "setKeepAlive"));
  exports.Set("localAddress", Napi::Function::New<LocalAddress>(env, "localAddress"));
  exports.Set("remoteAddress", Napi::Function::New<RemoteAddress>(env, "remoteAddress"));
  exports.Set("socketConstants", SocketConstants(env));
}
