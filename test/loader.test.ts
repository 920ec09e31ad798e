// Where the addon loader (src/binding.ts) looks, and what it refuses: it must load code only
// from places that belong to the app or to the package (never a directory above a bundle,
// where anyone who can write there could plant a package.json and a .node file), and only
// a binary built from the same sources as the JavaScript (a stale build/Release must not
// win over a fresh prebuild).
//
// The planted "addon" is a shared object whose constructor writes a marker file: if the
// marker exists, the loader ran foreign code, whatever it reported afterwards.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const scratch = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'netpoll-loader-')));
const platformDir = `${process.platform}-${process.arch}`;
const asRoot = process.getuid?.() === 0;

/** The binary this checkout's JavaScript loads, and the hash it carries. */
const current = (() => {
  const r = spawnSync(process.execPath, ['-p', "require('./dist/src/binding.js').binding.sourceHash"], { cwd: root, env: childEnv(), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`this checkout's addon does not load: ${r.stderr}`);
  const prebuild = path.join(root, 'prebuilds', platformDir, 'node.napi.node');
  const built = path.join(root, 'build', 'Release', 'netpoll.node');
  const hash = r.stdout.trim();
  // Whichever of the two carries the hash the JavaScript expects.
  const file = [built, prebuild].find((f) => fs.existsSync(f) && fs.readFileSync(f, 'latin1').includes(`netpoll-source-sha256:${hash}`));
  if (file === undefined) throw new Error(`neither ${built} nor ${prebuild} carries ${hash}`);
  return { file, hash };
})();

function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' };
  delete env.NETPOLL_ADDON;
  delete env.NETPOLL_PREBUILD;
  delete env.PREBUILDS_ONLY;
  return { ...env, ...extra };
}

function node(args: string[], cwd: string, env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, args, { cwd, env: childEnv(env), encoding: 'utf8', timeout: 60000 });
}

/** A shared object that, when loaded, creates `marker`: what an attacker would plant. */
function plantedAddon(file: string, marker: string): string {
  const src = path.join(scratch, `planted-${path.basename(marker)}.c`);
  fs.writeFileSync(src, `#include <fcntl.h>
#include <unistd.h>
__attribute__((constructor)) static void planted(void) {
  int fd = open(${JSON.stringify(marker)}, O_CREAT | O_WRONLY, 0644);
  if (fd >= 0) close(fd);
}
`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const cc = spawnSync(process.env.CC ?? 'cc', ['-shared', '-fPIC', '-o', file, src], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`cc failed: ${cc.error?.message ?? cc.stderr}`);
  return file;
}

/** netpoll's code bundled into one file (esbuild, as a bundled app has it). */
const bundleSource = (() => {
  const entry = path.join(scratch, 'entry.js');
  fs.writeFileSync(entry, `const np = require(${JSON.stringify(path.join(root, 'dist', 'src', 'index.js'))});
const { binding } = require(${JSON.stringify(path.join(root, 'dist', 'src', 'binding.js'))});
const p = np.openPoller(); p.close();
console.log('loaded ' + binding.sourceHash);
`);
  const out = path.join(scratch, 'bundle.js');
  require(path.join(root, 'node_modules', 'esbuild')).buildSync({ entryPoints: [entry], bundle: true, platform: 'node', outfile: out, logLevel: 'silent' });
  return out;
})();

/** The bundle placed at `dir`/main.js. */
function bundleAt(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(bundleSource, path.join(dir, 'main.js'));
  return path.join(dir, 'main.js');
}

/** An attacker's plant in `dir`: a package.json named netpoll (unless told not to) and build/Release/x.node. */
function plant(dir: string, marker: string, packageJson = true): void {
  fs.mkdirSync(dir, { recursive: true });
  if (packageJson) fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'netpoll', version: '0.1.0' }));
  plantedAddon(path.join(dir, 'build', 'Release', 'x.node'), marker);
}

/** A copy of netpoll's binary that claims to be built from other sources (a stale build). */
function staleCopy(dest: string): string {
  const bytes = fs.readFileSync(current.file);
  const at = bytes.indexOf(`netpoll-source-sha256:${current.hash}`, 0, 'latin1');
  assert.ok(at >= 0, 'the binary carries its hash');
  const other = current.hash.replace(/^./, (c) => (c === '0' ? '1' : '0'));
  bytes.write(other, at + 'netpoll-source-sha256:'.length, 'latin1');
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  fs.writeFileSync(dest, bytes, { mode: 0o755 });
  return other;
}

/** An unbundled install of netpoll at `dir` (its dist/, and a prebuild unless told not to). */
function install(dir: string, prebuild = true): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
  fs.cpSync(path.join(root, 'dist', 'src'), path.join(dir, 'dist', 'src'), { recursive: true, filter: (f) => !f.endsWith('.map') });
  fs.mkdirSync(path.join(dir, 'node_modules'), { recursive: true });
  fs.symlinkSync(path.join(root, 'node_modules', 'node-gyp-build'), path.join(dir, 'node_modules', 'node-gyp-build'), 'dir');
  if (prebuild) {
    fs.mkdirSync(path.join(dir, 'prebuilds', platformDir), { recursive: true });
    fs.copyFileSync(current.file, path.join(dir, 'prebuilds', platformDir, 'node.napi.node'));
  }
  return dir;
}

const loadInstalled = "console.log('loaded ' + require('./dist/src/binding.js').binding.sourceHash)";

function failure(r: SpawnSyncReturns<string>): string {
  assert.is(r.signal, null, 'timed out');
  assert.is.not(r.status, 0, `expected a failure, got:\n${r.stdout}`);
  return r.stderr;
}

function loaded(r: SpawnSyncReturns<string>): string {
  assert.is(r.signal, null, 'timed out');
  assert.is(r.status, 0, `${r.stdout}\n${r.stderr}`);
  const m = /^loaded ([0-9a-f]{64})$/m.exec(r.stdout);
  assert.ok(m, r.stdout);
  return m![1]!;
}

// ---- nothing from above the bundle ----

test('a bundle in <dir>/srv/app/dist loads the binary beside it, not one planted in <dir>/srv with a package.json named netpoll', () => {
  const srv = path.join(scratch, 'planted', 'srv');
  const marker = path.join(scratch, 'planted.marker');
  plant(srv, marker);
  const dist = path.join(srv, 'app', 'dist');
  const main = bundleAt(dist);
  fs.mkdirSync(path.join(dist, 'prebuilds', platformDir), { recursive: true });
  fs.copyFileSync(current.file, path.join(dist, 'prebuilds', platformDir, 'node.napi.node'));
  const r = node([main], os.tmpdir());
  assert.not.ok(fs.existsSync(marker), `the planted addon ran:\n${r.stderr}`);
  assert.is(loaded(r), current.hash);
});

test('a bundle with nothing beside it reports not-found and loads nothing from the directories above it', () => {
  for (const packageJson of [true, false]) {
    const srv = path.join(scratch, `bare-${packageJson}`, 'srv');
    const marker = path.join(scratch, `bare-${packageJson}.marker`);
    plant(srv, marker, packageJson);
    const dist = path.join(srv, 'app', 'dist');
    const err = failure(node([bundleAt(dist)], os.tmpdir()));
    assert.not.ok(fs.existsSync(marker), `the planted addon ran (package.json planted: ${packageJson}):\n${err}`);
    assert.match(err, 'ERR_NETPOLL_ADDON_NOT_FOUND');
    assert.not.match(err, srv + path.sep + 'build', 'it does not look above the bundle');
    assert.not.match(err, `${srv} (`, 'it does not look above the bundle');
    for (const line of /Looked in:\n((?: {2}- .*\n)+)/.exec(err)?.[1]?.split('\n').filter(Boolean) ?? []) {
      const where = /^ {2}- (\/\S*)/.exec(line)?.[1];
      if (where !== undefined) assert.ok(where.startsWith(dist), `looked outside the bundle's directory: ${line}`);
    }
  }
});

test('a bundle in a directory every user can write loads nothing from it', () => {
  const shared = path.join(scratch, 'shared');
  fs.mkdirSync(shared);
  fs.chmodSync(shared, 0o1777);
  const marker = path.join(scratch, 'shared.marker');
  plantedAddon(path.join(shared, 'netpoll.node'), marker);
  const err = failure(node([bundleAt(shared)], os.tmpdir()));
  assert.not.ok(fs.existsSync(marker), `the planted addon ran:\n${err}`);
  assert.match(err, 'ERR_NETPOLL_ADDON_NOT_FOUND');
  assert.match(err, 'writable by every user');
});

test('a binary beside the bundle that another user owns is not loaded (a group-writable directory)', () => {
  if (!asRoot) return; // making a file of another uid needs root
  const dir = path.join(scratch, 'group');
  fs.mkdirSync(dir);
  fs.chmodSync(dir, 0o775);
  const marker = path.join(scratch, 'group.marker');
  const planted = plantedAddon(path.join(dir, 'netpoll.node'), marker);
  fs.chownSync(planted, 65534, 65534);
  const err = failure(node([bundleAt(dir)], os.tmpdir()));
  assert.not.ok(fs.existsSync(marker), `the planted addon ran:\n${err}`);
  assert.match(err, 'owned by uid 65534');
});

test('a binary beside the bundle that is a symlink into a directory every user can write is not loaded', () => {
  const world = path.join(scratch, 'world');
  fs.mkdirSync(path.join(world, 'build'), { recursive: true });
  fs.chmodSync(world, 0o777); // not sticky: anyone can rename build/ and put their own in its place
  fs.copyFileSync(current.file, path.join(world, 'netpoll.node'));
  fs.copyFileSync(current.file, path.join(world, 'build', 'netpoll.node'));
  const linked = path.join(scratch, 'linked');
  fs.mkdirSync(path.join(linked, 'build'), { recursive: true });
  fs.symlinkSync(path.join(world, 'netpoll.node'), path.join(linked, 'netpoll.node'));
  fs.symlinkSync(path.join(world, 'build'), path.join(linked, 'build', 'Release'));
  const err = failure(node([bundleAt(linked)], os.tmpdir()));
  assert.match(err, 'ERR_NETPOLL_ADDON_NOT_FOUND');
  assert.match(err, `${world} is writable by every user`);
});

// ---- the binary must match the JavaScript ----

test('npm run build:ts records the hash of the current csrc/ and binding.gyp in dist/src/source-hash.js', () => {
  const { sourceHash } = require(path.join(root, 'scripts', 'source-hash.cjs')) as { sourceHash(): string };
  assert.is(require(path.join(root, 'dist', 'src', 'source-hash.js')), sourceHash(), 'dist/ is older than the sources: npm run build:ts');
  assert.is(current.hash, sourceHash());
});

test('a stale build/Release/netpoll.node loses to a prebuild built from the current sources', () => {
  const pkg = install(path.join(scratch, 'stale-and-fresh', 'node_modules', 'netpoll'));
  staleCopy(path.join(pkg, 'build', 'Release', 'netpoll.node'));
  const r = node(['-e', loadInstalled], pkg);
  assert.is(loaded(r), current.hash);
  assert.match(r.stderr, path.join(pkg, 'build', 'Release', 'netpoll.node'), 'a warning names the stale file');
});

test('a stale build/Release/netpoll.node with no matching prebuild is refused, and the error names it', () => {
  const pkg = install(path.join(scratch, 'stale-only', 'node_modules', 'netpoll'), false);
  const stale = path.join(pkg, 'build', 'Release', 'netpoll.node');
  const other = staleCopy(stale);
  const err = failure(node(['-e', loadInstalled], pkg));
  assert.match(err, 'ERR_NETPOLL_ADDON_MISMATCH');
  assert.match(err, `Remove or rebuild ${stale}`);
  assert.match(err, other.slice(0, 12));
  assert.match(err, current.hash.slice(0, 12));
});

test('a stale netpoll.node beside a bundle loses to the prebuild copied beside it', () => {
  const dist = path.join(scratch, 'stale-bundle', 'app', 'dist');
  const main = bundleAt(dist);
  staleCopy(path.join(dist, 'netpoll.node'));
  fs.mkdirSync(path.join(dist, 'prebuilds', platformDir), { recursive: true });
  fs.copyFileSync(current.file, path.join(dist, 'prebuilds', platformDir, 'node.napi.node'));
  assert.is(loaded(node([main], os.tmpdir())), current.hash);
});

test('PREBUILDS_ONLY skips build/Release, as node-gyp-build does', () => {
  const pkg = install(path.join(scratch, 'prebuilds-only', 'node_modules', 'netpoll'));
  const marker = path.join(scratch, 'prebuilds-only.marker');
  plantedAddon(path.join(pkg, 'build', 'Release', 'netpoll.node'), marker);
  assert.is(loaded(node(['-e', loadInstalled], pkg, { PREBUILDS_ONLY: '1' })), current.hash);
  assert.not.ok(fs.existsSync(marker));
});

test('NETPOLL_PREBUILD (node-gyp-build\'s override) is ignored: netpoll loads only from its own places', () => {
  const pkg = install(path.join(scratch, 'prebuild-override', 'node_modules', 'netpoll'));
  const elsewhere = path.join(scratch, 'prebuild-override-elsewhere');
  const marker = path.join(scratch, 'prebuild-override.marker');
  plantedAddon(path.join(elsewhere, 'build', 'Release', 'netpoll.node'), marker);
  assert.is(loaded(node(['-e', loadInstalled], pkg, { NETPOLL_PREBUILD: elsewhere })), current.hash);
  assert.not.ok(fs.existsSync(marker));
});

// ---- NETPOLL_ADDON: what it names, said accurately ----

const installed = () => install(path.join(scratch, 'override', 'node_modules', 'netpoll'));
let overridePkg: string | undefined;
function withOverride(value: string): string {
  overridePkg ??= installed();
  return failure(node(['-e', loadInstalled], overridePkg, { NETPOLL_ADDON: value }));
}
const rebuildAdvice = /built for another platform|another platform, architecture or libc/;

test('NETPOLL_ADDON naming a directory says it must name the file', () => {
  const dir = path.join(scratch, 'addon-dir');
  fs.mkdirSync(path.join(dir, 'build', 'Release'), { recursive: true });
  fs.copyFileSync(current.file, path.join(dir, 'build', 'Release', 'netpoll.node'));
  const err = withOverride(dir);
  assert.match(err, 'ERR_NETPOLL_ADDON_LOAD_FAILED');
  assert.match(err, `NETPOLL_ADDON=${dir} is a directory`);
  assert.match(err, path.join(dir, 'build', 'Release', 'netpoll.node'), 'it names the addon inside');
  assert.not.match(err, rebuildAdvice);
});

test('NETPOLL_ADDON naming a JavaScript file says it must name the .node file', () => {
  const js = path.join(scratch, 'index.js');
  fs.writeFileSync(js, "module.exports = require('netpoll');\n");
  const err = withOverride(js);
  assert.match(err, 'ERR_NETPOLL_ADDON_LOAD_FAILED');
  assert.match(err, 'JavaScript');
  assert.not.match(err, rebuildAdvice);
});

test('NETPOLL_ADDON naming another package\'s addon says so, without loading it', () => {
  const marker = path.join(scratch, 'other-package.marker');
  const other = plantedAddon(path.join(scratch, 'other-package', 'build', 'Release', 'other.node'), marker);
  const err = withOverride(other);
  assert.not.ok(fs.existsSync(marker), 'it was not loaded');
  assert.match(err, 'ERR_NETPOLL_ADDON_LOAD_FAILED');
  assert.match(err, 'not netpoll\'s addon');
  assert.not.match(err, rebuildAdvice);
});

test('NETPOLL_ADDON naming a netpoll binary built from other sources is refused', () => {
  const stale = path.join(scratch, 'override-stale', 'netpoll.node');
  staleCopy(stale);
  const err = withOverride(stale);
  assert.match(err, 'ERR_NETPOLL_ADDON_MISMATCH');
  assert.match(err, `Remove or rebuild ${stale}`);
});

test('NETPOLL_ADDON naming a symlink loop says why it cannot be used, not that no such file exists', () => {
  const a = path.join(scratch, 'loop-a.node');
  const b = path.join(scratch, 'loop-b.node');
  fs.symlinkSync(b, a);
  fs.symlinkSync(a, b);
  const err = withOverride(a);
  assert.match(err, 'ELOOP');
  assert.not.match(err, 'no such file');
  assert.not.match(err, rebuildAdvice);
});

test('NETPOLL_ADDON naming a file for another platform keeps the rebuild advice', () => {
  const foreign = path.join(root, 'prebuilds', process.arch === 'arm64' ? 'linux-x64' : 'linux-arm64');
  const file = fs.readdirSync(foreign).map((f) => path.join(foreign, f))[0]!;
  const err = withOverride(file);
  assert.match(err, 'ERR_NETPOLL_ADDON_LOAD_FAILED');
  assert.match(err, rebuildAdvice);
});

test.after(() => fs.rmSync(scratch, { recursive: true, force: true }));

test.run();
