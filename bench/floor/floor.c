/*
 * The Node-loop floor for the echo benchmark: the least an echo server running on Node's
 * own event loop can do. One uv_poll per socket on Node's loop (no nested epoll, no
 * batch), one napi_make_callback per readable event into JavaScript, and JavaScript
 * calls recv and send through Node-API (two calls per message, as a netpoll server
 * makes). It measures what the loop itself costs per message, so the echo figures can
 * show how far from that floor netpoll is, beside how far from C. Not part of the
 * package; built by bench/run.mjs only.
 */
#include <errno.h>
#include <node_api.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

typedef struct watch {
  uv_poll_t poll; /* first: the handle's address is the watch's */
  napi_env env;
  napi_ref callback;
  napi_ref resource;
  napi_async_context context;
  int fd;
} watch;

static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)status;
  (void)events;
  watch *w = (watch *)handle;
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value fn, resource, fd;
  napi_get_reference_value(env, w->callback, &fn);
  napi_get_reference_value(env, w->resource, &resource);
  napi_create_int32(env, w->fd, &fd);
  napi_make_callback(env, w->context, resource, fn, 1, &fd, NULL);
  napi_close_handle_scope(env, scope);
}

static void on_closed(uv_handle_t *handle) {
  watch *w = (watch *)handle;
  napi_delete_reference(w->env, w->callback);
  napi_delete_reference(w->env, w->resource);
  napi_async_destroy(w->env, w->context);
  free(w);
}

static napi_value throw_type(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

/* watch(fd, callback) → an external to pass to unwatch(); callback(fd) on every readable event. */
static napi_value start_watch(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  napi_valuetype type;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) return throw_type(env, "expected an fd");
  if (napi_typeof(env, argv[1], &type) != napi_ok || type != napi_function) return throw_type(env, "expected a function");
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return NULL;
  watch *w = calloc(1, sizeof *w);
  if (w == NULL) return throw_type(env, "out of memory");
  w->env = env;
  w->fd = fd;
  napi_value resource, name, handle;
  napi_create_object(env, &resource);
  napi_create_string_utf8(env, "floor", NAPI_AUTO_LENGTH, &name);
  napi_create_reference(env, argv[1], 1, &w->callback);
  napi_create_reference(env, resource, 1, &w->resource);
  napi_async_init(env, resource, name, &w->context);
  int err = uv_poll_init(loop, &w->poll, fd);
  if (err != 0) {
    on_closed((uv_handle_t *)&w->poll); /* never a handle: nothing for libuv to close */
    napi_throw_error(env, NULL, uv_strerror(err));
    return NULL;
  }
  err = uv_poll_start(&w->poll, UV_READABLE, on_readable);
  if (err != 0) {
    uv_close((uv_handle_t *)&w->poll, on_closed);
    napi_throw_error(env, NULL, uv_strerror(err));
    return NULL;
  }
  napi_create_external(env, w, NULL, NULL, &handle);
  return handle;
}

/* unwatch(handle): stops and frees a watch; call it before closing the fd. */
static napi_value stop_watch(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *w;
  if (napi_get_value_external(env, argv[0], &w) != napi_ok) return throw_type(env, "expected a watch");
  uv_close((uv_handle_t *)&((watch *)w)->poll, on_closed);
  return NULL;
}

/* recv(fd, buf) / send(fd, buf, length) → the byte count or a negative errno. */
static napi_value transfer(napi_env env, napi_callback_info info, int sending) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd, length = -1;
  bool is_buffer = false;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok) return throw_type(env, "expected an fd");
  if (napi_is_buffer(env, argv[1], &is_buffer) != napi_ok || !is_buffer) return throw_type(env, "expected a Buffer");
  void *data;
  size_t size;
  napi_get_buffer_info(env, argv[1], &data, &size);
  if (argc > 2 && (napi_get_value_int32(env, argv[2], &length) != napi_ok || length < 0 || (size_t)length > size)) {
    return throw_type(env, "expected a length within the buffer");
  }
  if (length >= 0) size = (size_t)length;
  ssize_t n = sending ? send(fd, data, size, MSG_NOSIGNAL) : recv(fd, data, size, 0);
  napi_value result;
  napi_create_int32(env, n < 0 ? -errno : (int32_t)n, &result);
  return result;
}

static napi_value do_recv(napi_env env, napi_callback_info info) { return transfer(env, info, 0); }
static napi_value do_send(napi_env env, napi_callback_info info) { return transfer(env, info, 1); }

NAPI_MODULE_INIT() {
  static const struct {
    const char *name;
    napi_callback cb;
  } functions[] = {{"watch", start_watch}, {"unwatch", stop_watch}, {"recv", do_recv}, {"send", do_send}};
  for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++) {
    napi_value fn;
    if (napi_create_function(env, functions[i].name, NAPI_AUTO_LENGTH, functions[i].cb, NULL, &fn) != napi_ok) return NULL;
    if (napi_set_named_property(env, exports, functions[i].name, fn) != napi_ok) return NULL;
  }
  return exports;
}
