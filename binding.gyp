{
  "targets": [
    {
      "target_name": "netpoll",
      "sources": [
        "csrc/binding.cc",
        "csrc/fdio.c"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NETPOLL_SOURCE_HASH=<!(node scripts/source-hash.cjs)",
        "NAPI_DISABLE_CPP_EXCEPTIONS",
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
        [ "OS=='linux'", {
          "sources": [ "csrc/selector_epoll.c", "csrc/waker_eventfd.c" ]
        } ],
        [ "OS=='mac' or OS=='freebsd' or OS=='openbsd' or OS=='netbsd'", {
          "sources": [ "csrc/selector_kqueue.c", "csrc/waker_kqueue.c" ]
        } ]
      ]
    }
  ]
}
