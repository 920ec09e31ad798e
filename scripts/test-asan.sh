#!/usr/bin/env bash
# Builds the addon with AddressSanitizer + UndefinedBehaviorSanitizer into build-asan/
# (the normal build/ is left alone) and runs the whole test suite against it.
#
#   npm run test:asan [-- filter...]     (filters as for scripts/run-tests.mjs)
#
# Node itself is not instrumented, so the sanitizer runtime is preloaded (LD_PRELOAD)
# and the addon is loaded through NETPOLL_ADDON. Leak detection is off: V8 and Node
# keep memory until exit by design, and LeakSanitizer would report all of it; leaks of
# our own are checked by the fd-count tests and by `npm run test:valgrind`.
# Any sanitizer report aborts the process, so the test file fails.
#
# Compiler: clang (Debian: clang libclang-rt-14-dev) when present, else (or with
# NETPOLL_ASAN_CC=gcc) gcc's own libasan/libubsan, which come with g++.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/build-asan

if [ "${NETPOLL_ASAN_CC:-}" != gcc ] && command -v clang >/dev/null && [ -e "$(clang -print-file-name=libclang_rt.asan-x86_64.so)" ]; then
  export CC=clang CXX=clang++
  runtime=$(clang -print-file-name=libclang_rt.asan-x86_64.so)
  # clang leaves a shared object's sanitizer symbols to the preloaded runtime.
  link_runtime="-shared-libasan"
else
  export CC=gcc CXX=g++
  runtime=$(gcc -print-file-name=libasan.so)
  link_runtime=""
fi
[ -e "$runtime" ] || { echo "test-asan: no AddressSanitizer runtime found (install clang and libclang-rt-14-dev, or gcc)" >&2; exit 2; }

flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
export CFLAGS="$flags" CXXFLAGS="$flags" LDFLAGS="-fsanitize=address,undefined $link_runtime"

# A copy of what the build needs, so node-gyp's build/ there is ours alone.
rm -rf "$out"
mkdir -p "$out"
mkdir -p "$out/scripts"
cp -r binding.gyp csrc package.json "$out/"
cp scripts/source-hash.cjs "$out/scripts/"
ln -s "$root/node_modules" "$out/node_modules"
echo "test-asan: building with $CC ($runtime)"
# Build against the headers npm is set to use (this machine's Node), also outside `npm run`.
nodedir=${npm_config_nodedir:-$(npm config get nodedir 2>/dev/null || true)}
if [ -n "$nodedir" ] && [ "$nodedir" != undefined ] && [ "$nodedir" != null ]; then export npm_config_nodedir=$nodedir; fi
# node-gyp: npm's own (what `npm run` uses), also when this script is run directly.
if [ -n "${npm_config_node_gyp:-}" ]; then gyp=(node "$npm_config_node_gyp")
elif command -v node-gyp >/dev/null; then gyp=(node-gyp)
else gyp=(node "$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js"); fi
(cd "$out" && "${gyp[@]}" rebuild >"$out/build.log" 2>&1) || { tail -40 "$out/build.log" >&2; exit 1; }
addon=$out/build/Release/netpoll.node

npx tsc -p tsconfig.json

# Tools the tests run that must not get the sanitizer runtime (curl hangs with it
# preloaded): shims that drop LD_PRELOAD, first in PATH.
mkdir -p "$out/bin"
for tool in curl; do
  real=$(command -v "$tool" || true)
  [ -n "$real" ] || continue
  printf '#!/bin/sh\nunset LD_PRELOAD\nexec %s "$@"\n' "$real" >"$out/bin/$tool"
  chmod +x "$out/bin/$tool"
done
export PATH="$out/bin:$PATH"

export NETPOLL_ADDON=$addon
export LD_PRELOAD=$runtime
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=0:allow_user_segv_handler=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
# Everything runs slower under the sanitizers.
export NETPOLL_TEST_TIMEOUT=${NETPOLL_TEST_TIMEOUT:-600000}
started=$(date +%s)
status=0
node scripts/run-tests.mjs "$@" || status=$?
echo "test-asan: $(($(date +%s) - started)) s with $CC's AddressSanitizer + UndefinedBehaviorSanitizer"
exit $status
