{
  "variables": {
    # A libkqueue install prefix (include/kqueue, lib): builds the kqueue backend
    # on Linux, for testing it without a Mac. Empty: the platform's own backend.
    # scripts/kqueue.mjs sets it (npm run build:kqueue); a plain build never does.
    "kqueue_prefix%": "",
    # "pipe" forces the pipe waker that OpenBSD and older NetBSD use.
    "kqueue_waker%": ""
  },
  "targets": [
    {
      "target_name": "netpoll",
      "sources": [
        "csrc/binding.cc",
        "csrc/binding_remote.cc",
        "csrc/binding_socket.cc",
        "csrc/waiter.cc",
        "csrc/fdio.c",
        "csrc/taskq.c",
        "csrc/cxx_runtime.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_VERSION=8",
        # The sha256 of csrc/ and binding.gyp (scripts/source-hash.cjs), found through the
        # package's own name so that it resolves from any directory gyp runs it in
        # (scripts/kqueue.mjs builds from a subdirectory that includes this file).
        "NETPOLL_SOURCE_HASH=<!(node -p \"require(require('path').join(require.resolve('netpoll/package.json'), '../scripts/source-hash.cjs')).sourceHash()\")",
        "NAPI_DISABLE_CPP_EXCEPTIONS",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "_GNU_SOURCE"
      ],
      "cflags": [ "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden" ],
      "cflags_c": [ "-std=c11" ],
      "cflags_cc": [ "-std=c++17", "-fno-exceptions" ],
      "xcode_settings": {
        "GCC_SYMBOLS_PRIVATE_EXTERN": "YES",
        "MACOSX_DEPLOYMENT_TARGET": "10.15",
        "OTHER_CFLAGS": [ "-Wall", "-Wextra", "-Werror" ],
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17"
      },
      "conditions": [
        [ "OS=='linux' and kqueue_prefix==''", {
          "sources": [ "csrc/selector_epoll.c", "csrc/waker_eventfd.c" ]
        } ],
        [ "OS=='linux' and kqueue_prefix!=''", {
          "sources": [ "csrc/selector_kqueue.c", "csrc/waker_kqueue.c" ],
          "include_dirs": [ "<(kqueue_prefix)/include/kqueue" ],
          "libraries": [ "-L<(kqueue_prefix)/lib", "-lkqueue", "-lpthread", "-Wl,-rpath,<(kqueue_prefix)/lib" ]
        } ],
        [ "OS=='mac' or OS=='freebsd' or OS=='openbsd' or OS=='netbsd'", {
          "sources": [ "csrc/selector_kqueue.c", "csrc/waker_kqueue.c" ]
        } ],
        [ "kqueue_waker=='pipe'", {
          "defines": [ "NETPOLL_KQUEUE_PIPE_WAKER" ]
        } ]
      ]
    }
  ]
}
