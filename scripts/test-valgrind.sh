#!/usr/bin/env bash
# Runs a representative subset of the tests under valgrind memcheck and fails on any
# invalid access, use of uninitialised memory, or definite leak whose stack passes
# through the addon (netpoll.node). Node and V8 themselves are noisy under memcheck
# (JIT code, memory kept until exit); their reports are counted, not judged.
#
#   npm run test:valgrind [-- test-file-filter...]
#
# Needs valgrind (Debian: valgrind). Slow: minutes, not seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "test-valgrind: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }

npx tsc -p tsconfig.json
[ -e build/Release/netpoll.node ] || npm run build:native

# Default subset: registration and dispatch, tasks, iteration, lifetime (GC, workers),
# faults (close inside callbacks, fd reuse, signals).
filters=("$@")
[ ${#filters[@]} -gt 0 ] || filters=(test/poller.test.js test/queue.test.js test/iterate.test.js test/lifetime.test.js reliability/faults.test.js)

logdir=build-valgrind
rm -rf "$logdir"
mkdir -p "$logdir"
status=0
started=$(date +%s)
for file in $(find dist/test -name '*.test.js' | sort); do
  match=0
  for f in "${filters[@]}"; do [[ $file == *"$f"* ]] && match=1; done
  [ $match -eq 1 ] || continue
  log="$logdir/$(basename "$file" .js).log"
  echo "# valgrind $file"
  # --jitless: V8's interpreter only, so memcheck is not translating JIT code all the time.
  code=0
  valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
    --num-callers=40 --track-origins=no --log-file="$log" \
    node --jitless --expose-gc "$file" >"$log.out" 2>&1 || code=$?
  if [ $code -eq 1 ]; then
    # An assertion, most likely a time limit: everything runs tens of times slower here.
    echo "  warning: a test failed under valgrind (see $log.out):"; grep -A2 FAIL "$log.out" | sed 's/^/    /'
  elif [ $code -ne 0 ]; then
    echo "  the process died under valgrind (exit $code):"; tail -20 "$log.out"; status=1
  fi
  grep -E "Total:|Passed:" "$log.out" | tr -s ' ' | paste -sd' ' | sed 's/^/  /'
  node scripts/valgrind-report.mjs "$log" || status=1
done
echo "test-valgrind: $(($(date +%s) - started)) s"
exit $status
