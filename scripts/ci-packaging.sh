#!/usr/bin/env bash
# The packaging test (npm run test:packaging): what a user gets from the tarball.
#
#   1. npm pack; the tarball holds what `files` allows and nothing else (no tests, no maps).
#   2. A fresh project with no compiler on PATH (gcc, g++, cc, make absent):
#      `npm install --ignore-scripts <tarball>`, then require('netpoll') (CJS) and
#      import { openPoller } from 'netpoll' (ESM) poll a real socketpair, both from the prebuild.
#   3. TypeScript files using the types compile with `tsc --noEmit` (skipLibCheck off) under
#      moduleResolution node16 (.cts and .mts), bundler and node10; a type error is reported.
#   4. The same install with install scripts on: node-gyp-build accepts the prebuild and
#      compiles nothing.
#   5. @electron/rebuild against a named Electron version (--version, x64, arm64, armv7l)
#      finds the prebuild and skips compiling, with no compiler and no network
#      (in a fresh network namespace when unshare works, else behind a dead proxy).
#   6. With a compiler: `npm rebuild --build-from-source` in the installed package (the
#      macOS/BSD path) builds from the shipped sources and embeds the prebuilds' hash.
#
# Needs: node, npm, network to the npm registry (for node-gyp-build and node-addon-api),
# this checkout's devDependencies (typescript, @types/node, @electron/rebuild).
# Ends with the closing line CI reads: "N passed, N failed".
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/netpoll-packaging-XXXXXX")"
trap 'rm -rf "$work"' EXIT
started=$SECONDS
exec 3>&1  # notes that checks print on success
passed=0
failed=0

log() { printf "[packaging] %3ds %s\n" "$((SECONDS - started))" "$*"; }
ok() { passed=$((passed + 1)); log "ok   $*"; }
bad() { failed=$((failed + 1)); log "FAIL $*"; }
# check "what" cmd...: runs cmd, counts it, shows its output when it fails.
check() {
  local what="$1"; shift
  local out
  if out="$("$@" 2>&1)"; then ok "$what"; else bad "$what"; printf '%s\n' "$out" | tail -40 | sed 's/^/    /'; fi
}

# --- a PATH with node and npm but no compiler ---------------------------------------
nocc="$work/bin"
mkdir -p "$nocc"
for tool in node npm npx sh env; do
  p="$(command -v "$tool")" || { log "no $tool on PATH"; exit 1; }
  ln -s "$(readlink -f "$p")" "$nocc/$tool"
done
NOCC_PATH="$nocc"
no_compiler() {
  for cc in gcc g++ cc c++ make clang; do
    if PATH="$NOCC_PATH" command -v "$cc" >/dev/null; then echo "$cc is on the restricted PATH"; return 1; fi
  done
}
check "the restricted PATH has no compiler or make" no_compiler

# --- 1. pack --------------------------------------------------------------------------
cd "$root"
log "npm pack (runs prepare: node-gyp rebuild, tsc, ESM wrappers)"
if ! tarname="$(npm pack --silent --pack-destination "$work" | tail -1)"; then
  bad "npm pack"; echo "$passed passed, $failed failed"; exit 1
fi
tarball="$work/$tarname"
size="$(stat -c %s "$tarball")"
log "tarball $tarname: $size bytes"
tar -tzf "$tarball" | sed 's#^package/##' | sort > "$work/contents.txt"
log "contents: $(wc -l < "$work/contents.txt") files"
contents_ok() {
  local f
  for f in package.json binding.gyp scripts/source-hash.cjs csrc/binding.cc dist/src/index.js dist/src/index.d.ts \
           dist/esm/index.mjs dist/esm/index.d.mts dist/typings/binding.d.ts \
           prebuilds/linux-x64/node.napi.node prebuilds/linux-arm64/node.napi.armv8.node prebuilds/linux-arm/node.napi.armv7.node \
           README.md docs/install.md docs/guide.md docs/socket.md docs/backends.md docs/benchmarks.md; do
    grep -qx "$f" "$work/contents.txt" || { echo "missing: $f"; return 1; }
  done
  # Nothing else: no tests, source maps, TypeScript sources, build output or dev scripts.
  if grep -P '^(dist/test/|src/|test/|build/|node_modules/)|\.map$|^scripts/(?!source-hash)' "$work/contents.txt"; then
    echo "ships files it should not (above)"; return 1
  fi
}
check "the tarball holds the runtime, types, prebuilds and sources for a source build, and nothing else" contents_ok
# The README and docs in the package link to each other: every relative link must resolve inside
# the tarball, except those to examples/ and bench/, which the README says are in the repository.
cat > "$work/links.cjs" <<'EOF'
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const [contentsFile, tarball] = process.argv.slice(2);
const contents = new Set(fs.readFileSync(contentsFile, 'utf8').split('\n').filter(Boolean));
const dirs = new Set([...contents].flatMap((f) => f.split('/').slice(1).map((_, i, a) => f.split('/').slice(0, i + 1).join('/'))));
const dead = [];
for (const doc of [...contents].filter((f) => f.endsWith('.md'))) {
  const text = execFileSync('tar', ['-xzOf', tarball, `package/${doc}`], { encoding: 'utf8' }).replace(/^```[\s\S]*?^```/gm, '');
  for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
    if (/^[a-z]+:/i.test(target) || target.startsWith('#')) continue;
    const file = path.posix.normalize(path.posix.join(path.posix.dirname(doc), target.split('#')[0])).replace(/\/$/, '');
    if (/^(examples|bench)(\/|$)/.test(file)) continue;
    if (!contents.has(file) && !dirs.has(file)) dead.push(`${doc}: ${target}`);
  }
}
if (dead.length > 0) {
  console.log(`links to files not in the tarball:\n  ${dead.join('\n  ')}`);
  process.exit(1);
}
EOF
check "every relative link in the packed README and docs resolves inside the tarball (examples/ and bench/ live in the repository)" \
  node "$work/links.cjs" "$work/contents.txt" "$tarball"

# --- 2. install with --ignore-scripts, no compiler; CJS and ESM -------------------------
app="$work/app"
mkdir -p "$app"
cat > "$app/package.json" <<'EOF'
{ "name": "netpoll-consumer", "version": "1.0.0", "private": true }
EOF
log "npm install --ignore-scripts (no compiler on PATH)"
check "npm install --ignore-scripts <tarball> with no compiler" \
  env -C "$app" PATH="$NOCC_PATH" npm install --ignore-scripts --no-audit --no-fund --prefer-offline "$tarball"

# Real use: a socketpair end registered, written, reported readable, read back.
cat > "$app/use.cjs" <<'EOF'
const assert = require('node:assert');
const path = require('node:path');
const np = require('netpoll');
const pkgDir = path.dirname(require.resolve('netpoll/package.json'));
const loaded = require('node-gyp-build').resolve(pkgDir);
const expected = process.env.EXPECT_ADDON || path.join('prebuilds', `${process.platform}-${process.arch}`, 'node.napi.node');
assert.equal(path.relative(pkgDir, loaded), expected);
const poller = np.openPoller();
const [a, b] = np.socketpair();
poller.addRead({ fd: a });
const got = [];
const timer = setTimeout(() => { throw new Error('no read event within 10 s'); }, 10000);
poller.polling((fd, ev) => {
  assert.equal(fd, a);
  assert.ok(np.isReadEvent(ev));
  const buf = Buffer.alloc(16);
  got.push(buf.subarray(0, np.read(fd, buf)).toString());
  return np.ErrEngineShutdown;
}).then((err) => {
  clearTimeout(timer);
  assert.equal(err, np.ErrEngineShutdown);
  assert.deepEqual(got, ['cjs']);
  poller.close(); np.close(a); np.close(b);
  console.log('cjs ok', path.relative(pkgDir, loaded));
});
np.write(b, Buffer.from('cjs'));
EOF
cat > "$app/use.mjs" <<'EOF'
import assert from 'node:assert';
import { createRequire } from 'node:module';
import netpoll, { openPoller, socketpair, read, write, close, Priority, ErrEngineShutdown, Poller } from 'netpoll';
const require = createRequire(import.meta.url);
// One module instance whichever way it is loaded: the ESM entry re-exports the CJS build.
assert.equal(Poller, require('netpoll').Poller);
assert.equal(netpoll.openPoller, openPoller);
const poller = openPoller();
const [a, b] = socketpair();
poller.addRead({ fd: a, callback: (fd) => {
  const buf = Buffer.alloc(16);
  assert.equal(buf.subarray(0, read(fd, buf)).toString(), 'esm');
  return ErrEngineShutdown;
} });
const stopped = poller.polling();
assert.equal(await poller.trigger(Priority.High, (x) => x + 1, 41), 42);
write(b, Buffer.from('esm'));
const timer = setTimeout(() => { throw new Error('no read event within 10 s'); }, 10000);
assert.equal(await stopped, ErrEngineShutdown);
clearTimeout(timer);
poller.close(); close(a); close(b);
assert.ok(poller instanceof Poller);
console.log('esm ok');
EOF
check "require('netpoll') loads the prebuild and polls a socketpair (CJS)" env -C "$app" PATH="$NOCC_PATH" node use.cjs
check "import { openPoller } from 'netpoll' polls a socketpair and shares the CJS instance (ESM)" env -C "$app" PATH="$NOCC_PATH" node use.mjs
# Every entry of `exports` (".", and "./socket" once it exists) loads both ways, with the same names.
cat > "$app/entries.mjs" <<'EOF'
import assert from 'node:assert';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const { exports: map } = require('netpoll/package.json');
let n = 0;
for (const [sub, target] of Object.entries(map)) {
  if (sub === './package.json') continue;
  const spec = sub === '.' ? 'netpoll' : `netpoll/${sub.slice(2)}`;
  assert.ok(target.import?.types && target.require?.types, `${spec}: exports needs types for import and require`);
  const cjs = require(spec);
  const esm = await import(spec);
  const names = Object.keys(cjs).sort();
  assert.ok(names.length > 0, `${spec} exports nothing`);
  assert.deepEqual(Object.keys(esm).filter((k) => k !== 'default').sort(), names, `${spec}: ESM and CJS names differ`);
  for (const k of names) assert.equal(esm[k], cjs[k], `${spec}: ${k} differs between ESM and CJS`);
  n++;
}
console.log(`${n} entries`);
EOF
check "every exports entry has types and loads through require and import with the same names" env -C "$app" PATH="$NOCC_PATH" node entries.mjs
check "nothing was compiled into node_modules/netpoll/build" test ! -e "$app/node_modules/netpoll/build"

# --- 3. types ---------------------------------------------------------------------------
tsc=("$(command -v node)" "$root/node_modules/typescript/bin/tsc")
cat > "$app/types.mts" <<'EOF'
import { openPoller, Priority, isReadEvent, type Poller, type PollAttachment, type IOEvent } from 'netpoll';
import netpoll from 'netpoll';
import * as sock from 'netpoll/socket';
const pair: [number, number] = sock.socketpair();
void pair;
const poller: Poller = openPoller();
const pa: PollAttachment = { fd: 0, callback: (fd: number, ev: IOEvent) => (isReadEvent(ev) && fd > 0 ? undefined : undefined) };
poller.addRead(pa);
const n: Promise<number> = poller.trigger(Priority.Low, (x: number) => x * 2, 21);
void n;
const e: Error | undefined = netpoll.ErrPollerClosed;
void e;
poller.close();
EOF
cat > "$app/types.cts" <<'EOF'
import { openPoller, type Poller } from 'netpoll';
import np = require('netpoll');
import { socketpair } from 'netpoll/socket';
const fds: [number, number] = socketpair();
void fds;
const poller: Poller = openPoller();
const closed: boolean = poller.closed;
void closed;
np.openPoller().close();
EOF
cp "$app/types.mts" "$app/types-bundler.ts"
cat > "$app/types-node10.ts" <<'EOF'
import { openPoller, type Poller } from 'netpoll';
const poller: Poller = openPoller();
poller.close();
EOF
cat > "$app/bad.mts" <<'EOF'
import { openPoller } from 'netpoll';
const n: number = openPoller();
void n;
EOF
common='"strict": true, "noEmit": true, "target": "ES2022", "lib": ["ES2022", "ESNext.Disposable"], "types": ["node"], "typeRoots": ["'"$root"'/node_modules/@types"]'
echo "{ \"compilerOptions\": { $common, \"skipLibCheck\": false, \"module\": \"node16\", \"moduleResolution\": \"node16\" }, \"files\": [\"types.mts\", \"types.cts\"] }" > "$app/tsconfig.node16.json"
echo "{ \"compilerOptions\": { $common, \"skipLibCheck\": true, \"module\": \"esnext\", \"moduleResolution\": \"bundler\" }, \"files\": [\"types-bundler.ts\"] }" > "$app/tsconfig.bundler.json"
echo "{ \"compilerOptions\": { $common, \"skipLibCheck\": true, \"module\": \"commonjs\", \"moduleResolution\": \"node10\", \"ignoreDeprecations\": \"5.0\" }, \"files\": [\"types-node10.ts\"] }" > "$app/tsconfig.node10.json"
echo "{ \"compilerOptions\": { $common, \"skipLibCheck\": true, \"module\": \"node16\", \"moduleResolution\": \"node16\" }, \"files\": [\"bad.mts\"] }" > "$app/tsconfig.bad.json"
check "tsc --noEmit: .mts and .cts consumers (moduleResolution node16, skipLibCheck off)" env -C "$app" "${tsc[@]}" -p tsconfig.node16.json
check "tsc --noEmit: moduleResolution bundler (the import condition)" env -C "$app" "${tsc[@]}" -p tsconfig.bundler.json
check "tsc --noEmit: moduleResolution node10 (the types field)" env -C "$app" "${tsc[@]}" -p tsconfig.node10.json
type_error_reported() {
  local out
  out="$(cd "$app" && "${tsc[@]}" -p tsconfig.bad.json 2>&1)" && { echo "tsc accepted a Poller as a number"; return 1; }
  grep -q "TS2322" <<<"$out" || { echo "$out"; return 1; }
}
check "tsc reports a type error against the package's types (they are not any)" type_error_reported

# --- 4. install with scripts on, no compiler -------------------------------------------
app2="$work/app-scripts"
mkdir -p "$app2"
cp "$app/package.json" "$app/use.cjs" "$app2/"
install_script_accepts_prebuild() {
  local out
  out="$(cd "$app2" && PATH="$NOCC_PATH" npm install --no-audit --no-fund --prefer-offline --foreground-scripts "$tarball" 2>&1)" ||
    { printf '%s\n' "$out" | tail -30; return 1; }
  # The install script ran (npm prints its command), and it compiled nothing.
  grep -q "^> node-gyp-build" <<<"$out" || { printf '%s\n' "$out" | tail -30; echo "netpoll's install script did not run"; return 1; }
  if [ -e "$app2/node_modules/netpoll/build" ]; then echo "it built into node_modules/netpoll/build"; return 1; fi
}
check "npm install <tarball> with install scripts and no compiler: node-gyp-build accepts the prebuild" install_script_accepts_prebuild
check "... and it loads and polls" env -C "$app2" PATH="$NOCC_PATH" node use.cjs

# --- 5. @electron/rebuild skips compiling ------------------------------------------------
if unshare -n true 2>/dev/null; then
  offline=(unshare -n)
  log "electron-rebuild runs in a new network namespace (no network at all)"
else
  offline=(env HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9)
  log "unshare -n is not permitted here: electron-rebuild runs behind a dead proxy instead"
fi
electron_version="${NETPOLL_ELECTRON_VERSION:-28.0.0}"
rebuild_skips() {
  local arch="$1" file="$2" out
  out="$(cd "$app" && "${offline[@]}" env PATH="$NOCC_PATH" DEBUG=electron-rebuild HOME="$work/home" \
    node "$root/node_modules/@electron/rebuild/lib/cli.js" --version "$electron_version" --arch "$arch" --module-dir . --force 2>&1)" ||
    { printf '%s\n' "$out" | tail -30; return 1; }
  grep -q "Found prebuilt Node-API module in .*prebuilds/$file" <<<"$out" || { printf '%s\n' "$out" | tail -30; echo "no prebuild found for $arch"; return 1; }
  if grep -qE "electron-rebuild (rebuilding netpoll with args|built via node-gyp)" <<<"$out"; then echo "it compiled:"; grep -E "rebuilding netpoll|built via" <<<"$out"; return 1; fi
  if find "$app/node_modules/netpoll/build" -name '*.node' 2>/dev/null | grep -q .; then echo "a .node file appeared in build/"; return 1; fi
}
check "electron-rebuild --version $electron_version (x64) uses prebuilds/linux-x64, offline, no compiler" rebuild_skips x64 linux-x64
check "electron-rebuild --version $electron_version --arch arm64 uses prebuilds/linux-arm64" rebuild_skips arm64 linux-arm64
check "electron-rebuild --version $electron_version --arch armv7l uses prebuilds/linux-arm" rebuild_skips armv7l linux-arm
# The control: made to compile, the same command fails here, so the skips above compiled nothing.
rebuild_from_source_fails() {
  local out
  if out="$(cd "$app" && "${offline[@]}" env PATH="$NOCC_PATH" DEBUG=electron-rebuild HOME="$work/home" \
      node "$root/node_modules/@electron/rebuild/lib/cli.js" --version "$electron_version" --module-dir . --force --build-from-source 2>&1)"; then
    echo "electron-rebuild --build-from-source succeeded without a compiler or network"; return 1
  fi
  grep -q "rebuilding netpoll with args" <<<"$out" || { printf "%s\n" "$out" | tail -20; echo "it did not try to compile"; return 1; }
  printf "%s\n" "$out" | grep -m1 "^Error: " | sed "s/^/    why: /" >&3
  rm -rf "$app/node_modules/netpoll/build"
}
check "control: electron-rebuild --build-from-source tries to compile and fails here" rebuild_from_source_fails
check "after electron-rebuild the package still loads its prebuild" env -C "$app" PATH="$NOCC_PATH" node use.cjs

# --- 6. the source-build fallback (what macOS and the BSDs get), with the compiler ------
# Built from the unpacked tarball by node-gyp, it embeds the same source hash as the
# prebuilds: binding.gyp computes it from the package root, with the files that ship.
source_build_matches() {
  (cd "$app2" && npm rebuild netpoll --build-from-source --foreground-scripts >"$work/source-build.log" 2>&1) ||
    { tail -30 "$work/source-build.log"; return 1; }
  local pkg="$app2/node_modules/netpoll"
  [ -f "$pkg/build/Release/netpoll.node" ] || { echo "no build/Release/netpoll.node"; return 1; }
  (cd "$app2" && node -e '
    const assert = require("node:assert");
    const path = require("node:path");
    const pkg = path.dirname(require.resolve("netpoll/package.json"));
    const built = require(path.join(pkg, "build/Release/netpoll.node")).sourceHash;
    const prebuilt = require(path.join(pkg, "prebuilds", `${process.platform}-${process.arch}`, "node.napi.node")).sourceHash;
    assert.match(built, /^[0-9a-f]{64}$/);
    assert.equal(built, prebuilt);
    assert.equal(path.relative(pkg, require("node-gyp-build").resolve(pkg)), path.join("build", "Release", "netpoll.node"));
  ') && (cd "$app2" && EXPECT_ADDON=build/Release/netpoll.node node use.cjs)
}
if command -v g++ >/dev/null && command -v make >/dev/null; then
  check "npm rebuild --build-from-source in the installed package builds the same sources the prebuilds carry" source_build_matches
else
  log "skip the source-build check: no g++/make here"
fi

log "tarball $size bytes; took $((SECONDS - started)) s"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
