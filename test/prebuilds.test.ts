// The committed prebuilds must be built from the committed native sources: each binary
// carries the hash of csrc/ and binding.gyp it was built from (scripts/source-hash.cjs),
// and a C change without `npm run prebuild` fails here instead of shipping old binaries.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const hashScript = path.join(root, 'scripts', 'source-hash.cjs');
const { sourceHash, sourceFiles } = require(hashScript) as { sourceHash(): string; sourceFiles(): string[] };

const REGENERATE = 'run `npm run prebuild` (needs the Debian cross compilers, see docs/install.md) and commit prebuilds/';

/** What we ship prebuilt, and the ELF machine each must be built for. */
const EXPECTED: Record<string, { file: string; elfClass: 1 | 2; machine: number }> = {
  'linux-x64': { file: 'node.napi.node', elfClass: 2, machine: 62 /* EM_X86_64 */ },
  'linux-arm64': { file: 'node.napi.armv8.node', elfClass: 2, machine: 183 /* EM_AARCH64 */ },
  'linux-arm': { file: 'node.napi.armv7.node', elfClass: 1, machine: 40 /* EM_ARM */ },
};

const prebuildsDir = path.join(root, 'prebuilds');
const prebuilds = fs.existsSync(prebuildsDir)
  ? fs.readdirSync(prebuildsDir).sort().flatMap((dir) =>
      fs.readdirSync(path.join(prebuildsDir, dir)).filter((f) => f.endsWith('.node')).sort().map((f) => `${dir}/${f}`))
  : [];
const current = sourceHash();

/** The source hash a binary embeds (binding.cc's marker string), read from its bytes. */
function embeddedHash(bytes: Buffer): string | undefined {
  const m = /netpoll-source-sha256:([0-9a-f]{64}|unknown)/.exec(bytes.toString('latin1'));
  return m?.[1];
}

test('prebuilds exist for linux-x64, linux-arm64 and linux-arm under the names both loaders look for', () => {
  const want = Object.entries(EXPECTED).map(([dir, e]) => `${dir}/${e.file}`).sort();
  assert.equal(prebuilds, want, `prebuilds/ holds ${JSON.stringify(prebuilds)}; ${REGENERATE}`);
});

for (const rel of prebuilds) {
  test(`prebuilds/${rel} was built from the current csrc/ and binding.gyp, for its architecture`, () => {
    const bytes = fs.readFileSync(path.join(prebuildsDir, rel));
    const built = embeddedHash(bytes);
    assert.ok(built !== undefined, `prebuilds/${rel} carries no source hash; ${REGENERATE}`);
    assert.is(built, current, `prebuilds/${rel} was built from sources ${built}, but csrc/ and binding.gyp now hash to ${current}: ${REGENERATE}`);
    const expected = EXPECTED[rel.split('/')[0]!];
    assert.ok(expected !== undefined, `prebuilds/${rel} is for no target we build`);
    assert.equal([...bytes.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], `prebuilds/${rel} is not an ELF file`);
    assert.is(bytes[4], expected.elfClass, `prebuilds/${rel} has ELF class ${bytes[4]}`);
    assert.is(bytes.readUInt16LE(18), expected.machine, `prebuilds/${rel} is for ELF machine ${bytes.readUInt16LE(18)}`);
  });
}

// The oldest C and C++ runtimes the prebuilds run on, as docs/install.md states them: the
// newest symbol version a binary asks for (fcntl64, GLIBC_2.28; the waiter thread avoids
// pthread_setname_np and pthread_sigmask, which Debian 12 binds to 2.34 and 2.32). A prebuild
// that needs more fails to load on older systems (which then build from source): raise these
// only together with the documentation.
const GLIBC_FLOOR = [2, 28];
const GLIBCXX_FLOOR = [3, 4, 21];

function newestVersion(bytes: Buffer, prefix: string): number[] {
  let newest: number[] = [];
  for (const m of bytes.toString('latin1').matchAll(new RegExp(`${prefix}_(\\d+(?:\\.\\d+)+)`, 'g'))) {
    const v = m[1]!.split('.').map(Number);
    const cmp = compareVersions(v, newest);
    if (cmp > 0) newest = v;
  }
  return newest;
}

function compareVersions(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

for (const rel of prebuilds) {
  test(`prebuilds/${rel} needs no glibc newer than ${GLIBC_FLOOR.join('.')} nor libstdc++ newer than GLIBCXX ${GLIBCXX_FLOOR.join('.')}`, () => {
    const bytes = fs.readFileSync(path.join(prebuildsDir, rel));
    const glibc = newestVersion(bytes, 'GLIBC');
    const glibcxx = newestVersion(bytes, 'GLIBCXX');
    assert.ok(glibc.length > 0, 'no GLIBC symbol versions found: not a glibc build?');
    assert.ok(compareVersions(glibc, GLIBC_FLOOR) <= 0, `needs GLIBC_${glibc.join('.')}: update docs/install.md and GLIBC_FLOOR, or avoid the newer symbol`);
    assert.ok(compareVersions(glibcxx, GLIBCXX_FLOOR) <= 0, `needs GLIBCXX_${glibcxx.join('.')}: update docs/install.md and GLIBCXX_FLOOR`);
  });
}

test('the prebuild for this machine loads and reports the hash its bytes carry', () => {
  const dir = `${process.platform}-${process.arch}`;
  const expected = EXPECTED[dir];
  if (expected === undefined) return; // no prebuild for this platform: installs build from source
  const file = path.join(prebuildsDir, dir, expected.file);
  const addon = require(file) as { sourceHash: string; socketpair(): unknown };
  assert.is(addon.sourceHash, embeddedHash(fs.readFileSync(file)));
  assert.is(addon.sourceHash, current, `prebuilds/${dir}/${expected.file} reports ${addon.sourceHash}; ${REGENERATE}`);
});

// node-gyp-build's choice matters at install time (its install script) and to @electron/rebuild;
// at run time netpoll applies the same file-name rules itself (src/binding.ts).
test('node-gyp-build picks the committed prebuild when there is no local build', () => {
  const dir = `${process.platform}-${process.arch}`;
  const expected = EXPECTED[dir];
  if (expected === undefined) return;
  // PREBUILDS_ONLY makes node-gyp-build skip build/Release, as in an installed tarball.
  const picked = execFileSync(process.execPath, ['-p', `require('node-gyp-build').resolve(${JSON.stringify(root)})`], {
    cwd: root,
    env: { ...process.env, NETPOLL_PREBUILD: undefined, PREBUILDS_ONLY: '1' },
    encoding: 'utf8',
  }).trim();
  assert.is(path.relative(root, picked), path.join('prebuilds', dir, expected.file));
});

test('the prebuild for this machine passes the smoke tests (open, register, poll a socketpair, trigger, close)', () => {
  const dir = `${process.platform}-${process.arch}`;
  if (EXPECTED[dir] === undefined) return;
  // The rest of the suite runs on build/Release when there is one; this runs on what ships.
  const out = execFileSync(process.execPath, [path.join(__dirname, 'smoke.test.js')], {
    cwd: root,
    // NETPOLL_ADDON would bypass the loader's lookup (undefined values are left out of the env).
    env: { ...process.env, NETPOLL_ADDON: undefined, PREBUILDS_ONLY: '1', FORCE_COLOR: '0', NO_COLOR: '1' },
    encoding: 'utf8',
    timeout: 60000,
  });
  const total = Number(/Total:\s+(\d+)/.exec(out)?.[1]);
  const passed = Number(/Passed:\s+(\d+)/.exec(out)?.[1]);
  assert.ok(total >= 3, out);
  assert.is(passed, total, out);
});

test('the source hash covers csrc/ and binding.gyp and ignores line endings, mtimes and dotfiles', () => {
  const files = sourceFiles();
  assert.ok(files.includes('binding.gyp'));
  assert.ok(files.includes('csrc/binding.cc'));
  assert.ok(files.every((f) => f === 'binding.gyp' || f.startsWith('csrc/')), files.join(' '));

  // A copy elsewhere, as a fresh clone on a Windows checkout (CRLF) with new mtimes would be.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'netpoll-hash-'));
  try {
    fs.mkdirSync(path.join(tmp, 'scripts'));
    fs.copyFileSync(hashScript, path.join(tmp, 'scripts', 'source-hash.cjs'));
    for (const f of files) {
      fs.mkdirSync(path.dirname(path.join(tmp, f)), { recursive: true });
      const text = fs.readFileSync(path.join(root, f), 'latin1').replace(/\r?\n/g, '\r\n');
      fs.writeFileSync(path.join(tmp, f), text, 'latin1');
      fs.utimesSync(path.join(tmp, f), new Date(0), new Date(0));
    }
    fs.writeFileSync(path.join(tmp, 'csrc', '.binding.cc.swp'), 'editor state');
    const run = () => execFileSync(process.execPath, [path.join(tmp, 'scripts', 'source-hash.cjs')], { cwd: os.tmpdir(), encoding: 'utf8' }).trim();
    assert.is(run(), current);

    // Any content change, or a new source file, is a different build.
    fs.appendFileSync(path.join(tmp, 'csrc', 'fdio.h'), '\n');
    const changed = run();
    assert.is.not(changed, current);
    fs.writeFileSync(path.join(tmp, 'csrc', 'extra.c'), '');
    assert.is.not(run(), changed);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test.run();
