// Argument reading shared by the glue (binding.cc, binding_remote.cc) where
// node-addon-api's conversions are unsafe.
//
// A conversion that needs JavaScript (ToBoolean: napi_coerce_to_bool) fails while the
// environment is terminating (worker.terminate() lands mid-call), and node-addon-api
// then returns an empty value whose env is null. Reading that value (.Value()) fails
// again with no env to report to, and node-addon-api aborts the process ("FATAL ERROR:
// Error::New napi_get_last_error_info"). napi_typeof and napi_get_value_bool never need
// JavaScript, so they cannot fail that way.
#ifndef NETPOLL_ARGS_H
#define NETPOLL_ARGS_H

#include <napi.h>

// Whether argument i is `true`; anything else (absent, not a boolean) reads as false.
// src/ passes booleans only.
inline bool BoolArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length()) return false;
  napi_value v = info[i];
  napi_valuetype type;
  bool result = false;
  if (napi_typeof(info.Env(), v, &type) != napi_ok || type != napi_boolean) return false;
  if (napi_get_value_bool(info.Env(), v, &result) != napi_ok) return false;
  return result;
}

#endif
