#!/usr/bin/env bash
# Runs the test suites against the committed arm prebuilds, under qemu-user with Debian's
# own arm64 and armhf `nodejs` packages (Node 18.20): first the smoke subset
# (test/smoke.test.ts: open, register, poll a socketpair, trigger, close), then every suite
# that runs in a single process (see default_tests below).
#
#   npm run test:arm                  both arches (needs root the first time: apt)
#   bash scripts/test-arm.sh arm64    one of them (arm64 | armhf)
#
# The foreign nodejs and its libraries are unpacked with `dpkg -x` into a sysroot under
# $NETPOLL_ARM_SYSROOTS (default /tmp/netpoll-arm-sysroots) instead of being installed, so
# the host's own node is untouched. A cached sysroot is used only if its node runs
# (`node -v`); otherwise it is unpacked again. qemu-user cannot follow the test runner's
# child processes (no binfmt_misc here), so each test file runs directly and its uvu
# totals are summed into the usual closing line.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${NETPOLL_ARM_SYSROOTS:-/tmp/netpoll-arm-sysroots}"
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"  # absolute: it ends up in LD_LIBRARY_PATH and qemu's -L
arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=(arm64 armhf)

log() { printf '[test-arm] %s\n' "$*"; }
die() { printf '[test-arm] %s\n' "$*" >&2; exit 1; }

qemu_for() { case "$1" in arm64) echo qemu-aarch64-static ;; armhf) echo qemu-arm-static ;; *) die "unknown arch $1 (arm64 | armhf)" ;; esac; }
triple_for() { case "$1" in arm64) echo aarch64-linux-gnu ;; armhf) echo arm-linux-gnueabihf ;; esac; }
prebuild_for() { case "$1" in arm64) echo prebuilds/linux-arm64/node.napi.armv8.node ;; armhf) echo prebuilds/linux-arm/node.napi.armv7.node ;; esac; }

# apt-get, waiting for apt's and dpkg's locks when another apt (a second CI run, an
# unattended upgrade) holds them, instead of failing at once.
apt_get() {
  local try out code
  for try in $(seq 1 60); do
    set +e
    out="$(apt-get -o DPkg::Lock::Timeout=60 "$@" 2>&1)"
    code=$?
    set -e
    if [ "$code" = 0 ] || ! grep -q 'Could not get lock\|Unable to lock\|Unable to acquire' <<<"$out"; then
      [ -z "$out" ] || printf '%s\n' "$out" >&2
      return "$code"
    fi
    [ "$try" = 1 ] && log "apt is busy (another apt holds its lock); waiting"
    sleep 5
  done
  printf '%s\n' "$out" >&2
  return "$code"
}

apt_updated=0
apt_update() {
  [ "$apt_updated" = 1 ] && return 0
  # A foreign index that fails to download (a mirror mid-sync) is not fatal: the
  # packages we need come from the main suite, and a missing one fails below.
  apt_get update -qq || log "apt-get update reported errors; going on with the indexes it has"
  apt_updated=1
}

need_root() { [ "$(id -u)" = 0 ] || die "$1: run once as root (or install it yourself)"; }

# Debian's nodejs:<arch> and every library it depends on, unpacked (not installed).
unpack_sysroot() {
  local arch="$1" sysroot="$cache/sysroot-$1" debs="$cache/debs-$1"
  need_root "a $arch sysroot"
  if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
    dpkg --add-architecture "$arch"
    apt_updated=0
  fi
  apt_update
  rm -rf "$sysroot" "$debs"
  mkdir -p "$sysroot" "$debs"
  chown _apt "$debs" 2>/dev/null || true  # lets apt download as its sandbox user
  # Walk the Depends/Pre-Depends of the same arch, from nodejs down, plus the arch-all
  # node-* packages that Debian's node loads its externalized builtins from (acorn,
  # cjs-module-lexer, undici); those are named as virtual <node-x:arch> deps.
  local -A seen=()
  local queue=("nodejs:$arch") pkg dep
  while [ ${#queue[@]} -gt 0 ]; do
    pkg="${queue[0]}"; queue=("${queue[@]:1}")
    [ -n "${seen[$pkg]:-}" ] && continue
    seen[$pkg]=1
    while read -r dep; do
      [ -n "$dep" ] && [ -z "${seen[$dep]:-}" ] && queue+=("$dep")
    done < <(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
               --no-replaces --no-enhances "$pkg" 2>/dev/null |
             sed -n -e "s/^ *\(Pre\)\{0,1\}Depends: \([^<][^ ]*:$arch\)\$/\2/p" \
                    -e "s/^ *\(Pre\)\{0,1\}Depends: <\(node-[^ :>]*\):$arch>\$/\2/p" \
                    -e "s/^ *\(Pre\)\{0,1\}Depends: \(node-[^ :<>]*\)\$/\2/p")
  done
  log "$arch: downloading ${!seen[*]}"
  (cd "$debs" && apt_get download -qq "${!seen[@]}")
  local deb
  for deb in "$debs"/*.deb; do dpkg -x "$deb" "$sysroot"; done
  [ -x "$sysroot/usr/bin/node" ] || die "$arch: no usr/bin/node in the unpacked packages"
}

# Runs the arch's node under qemu. -L makes qemu look up the ELF interpreter and the
# guest's absolute paths under the sysroot first, but not for every syscall: qemu 7.2
# does not translate statx's path, and 32-bit glibc (armhf) checks with statx whether a
# library directory exists, so a guest path such as /lib/arm-linux-gnueabihf is looked
# up on the host, found missing, and dropped from the search (libc.so.6 not found).
# So the library path names the sysroot's directories by their real host paths, which
# mean the same to every syscall whether qemu translates it or not.
arm_node() {
  local arch="$1"; shift
  local sysroot="$cache/sysroot-$arch" triple
  triple="$(triple_for "$arch")"
  # PREBUILDS_ONLY: node-gyp-build must pick the prebuild, not the host's build/Release.
  # NETPOLL_TEST_NODE: how a test starts another node (test/helpers.ts nodeCommand): through
  # the same qemu, since qemu-user cannot follow a child's exec of an arm binary here.
  PREBUILDS_ONLY=1 FORCE_COLOR=0 NO_COLOR=1 \
    LD_LIBRARY_PATH="$sysroot/lib/$triple:$sysroot/usr/lib/$triple" \
    NETPOLL_TEST_NODE="[\"$(command -v "$(qemu_for "$arch")")\",\"-L\",\"$sysroot\",\"$sysroot/usr/bin/node\"]" \
    "$(qemu_for "$arch")" -L "$sysroot" "$sysroot/usr/bin/node" "$@"
}

# A sysroot counts only if its node runs: a half-unpacked one (an interrupted run) or
# one that no longer loads is unpacked again, and if the fresh one does not run either,
# the run stops here with node's own error.
make_sysroot() {
  local arch="$1" sysroot="$cache/sysroot-$1" out lock
  # One run at a time per cache and arch, so two runs never unpack into each other.
  exec {lock}>"$cache/.lock-$arch"
  flock "$lock"
  if [ -x "$sysroot/usr/bin/node" ] && out="$(arm_node "$arch" -v 2>&1)"; then
    log "$arch: sysroot $sysroot (node $out)"
    exec {lock}>&-
    return 0
  fi
  [ -e "$sysroot" ] && log "$arch: the sysroot's node does not run (${out:-no usr/bin/node}); unpacking it again"
  unpack_sysroot "$arch"
  out="$(arm_node "$arch" -v 2>&1)" ||
    die "$arch: the freshly unpacked node does not run under $(qemu_for "$arch"): $out"
  log "$arch: sysroot $sysroot (node $out)"
  exec {lock}>&-
}

if ! command -v qemu-aarch64-static >/dev/null || ! command -v qemu-arm-static >/dev/null; then
  need_root "qemu-user-static"
  apt_update
  DEBIAN_FRONTEND=noninteractive apt_get install -y -qq --no-install-recommends qemu-user-static >/dev/null
fi

cd "$root"
[ -f dist/test/smoke.test.js ] || npm run build:ts >/dev/null
[ -f "$(prebuild_for arm64)" ] || die "no prebuilds: npm run prebuild"
expected_hash="$(node scripts/source-hash.cjs)"
# The suites that run in one process. Left out: lifetime, waiter-thread, seed, examples and
# docs spawn process.execPath, which qemu-user cannot follow here (no binfmt_misc), and
# prebuilds inspects the x64 build. NETPOLL_ARM_TESTS="dist/test/a.test.js ..." runs others.
default_tests="dist/test/smoke.test.js dist/test/poller.test.js dist/test/iterate.test.js dist/test/queue.test.js
  dist/test/events.test.js dist/test/errors.test.js dist/test/socket.test.js dist/test/backends.test.js"
read -r -d '' -a tests <<<"${NETPOLL_ARM_TESTS:-$default_tests}" || true

total_passed=0
total_failed=0
for arch in "${arches[@]}"; do
  qemu_for "$arch" >/dev/null
  make_sysroot "$arch"
  want="$(prebuild_for "$arch")"
  # Which binary node-gyp-build chooses there, and the sources it says it was built from.
  info="$(arm_node "$arch" -p "[process.version, process.arch, process.config.variables.arm_version || '-', require('path').relative('.', require('node-gyp-build').resolve('.')), require('node-gyp-build')('.').sourceHash].join(' ')")" ||
    die "$arch: the prebuild did not load"
  read -r version parch armv loaded hash <<<"$info"
  log "$arch: node $version ($parch, arm_version $armv) loaded $loaded"
  arch_passed=0
  arch_failed=0
  if [ "$loaded" = "$want" ]; then arch_passed=$((arch_passed + 1)); log "$arch: ok   node-gyp-build picks $want";
  else arch_failed=$((arch_failed + 1)); log "$arch: FAIL expected node-gyp-build to pick $want"; fi
  if [ "$hash" = "$expected_hash" ]; then arch_passed=$((arch_passed + 1)); log "$arch: ok   it was built from the current sources";
  else arch_failed=$((arch_failed + 1)); log "$arch: FAIL $loaded was built from sources $hash, not the current $expected_hash: run npm run prebuild"; fi
  for t in "${tests[@]}"; do
    set +e
    out="$(arm_node "$arch" "$t" 2>&1)"
    code=$?
    set -e
    printf '%s\n' "$out"
    tot="$(sed -n 's/^ *Total: *\([0-9]*\).*/\1/p' <<<"$out" | tail -1)"
    pas="$(sed -n 's/^ *Passed: *\([0-9]*\).*/\1/p' <<<"$out" | tail -1)"
    tot="${tot:-0}"; pas="${pas:-0}"
    fail=$((tot - pas))
    if [ "$code" != 0 ] && [ "$fail" = 0 ]; then fail=1; fi
    if [ "$tot" = 0 ]; then fail=$((fail == 0 ? 1 : fail)); fi
    arch_passed=$((arch_passed + pas))
    arch_failed=$((arch_failed + fail))
  done
  log "$arch: $arch_passed passed, $arch_failed failed"
  total_passed=$((total_passed + arch_passed))
  total_failed=$((total_failed + arch_failed))
done
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" = 0 ]
