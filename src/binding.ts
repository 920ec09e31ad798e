// Loads the native addon, and when it cannot, says where it looked and what to do.
//
// It loads code only from places that belong to the app or to the package, never from a
// directory above them (a bundle in /srv/app/dist must not read /srv, which others may be
// able to write). Where it looks, in order (docs/install.md, "Where netpoll looks"):
//   1. NETPOLL_ADDON: an explicit path to the .node file (a custom build, or wherever a
//      bundled app keeps it). Nothing else is tried.
//   2. Unbundled (this file is <root>/dist/src/binding.js of an installed or checked-out
//      package): <root>/build/Release/netpoll.node, <root>/build/Debug/netpoll.node (both
//      skipped under PREBUILDS_ONLY), then <root>/prebuilds/<platform>-<arch>/ (the file
//      node-gyp-build's tag rules pick). <root> counts as the package only if its
//      package.json names netpoll and passes the ownership checks below.
//   3. Bundled (this file's directory is the bundle's): beside the bundle, netpoll.node,
//      build/Release/netpoll.node, build/Debug/netpoll.node, prebuilds/<platform>-<arch>/.
//   4. Bundled by webpack with the asset relocator: the .node file it copied beside the
//      bundle (it rewrites the one node-gyp-build call below at build time; that call never
//      reaches node-gyp-build at run time).
// A found file is loaded only if no directory from the search root down to it (the
// directories that really hold it, symlinks followed) is writable by every user, and the file and those directories are owned by root, this user, the
// owner of this file or the owner of the search root: a bundle in a shared directory
// (/tmp) must not load a plant.
//
// The binary must also be built from the sources this JavaScript was built with: every
// netpoll binary carries the sha256 of csrc/ and binding.gyp (scripts/source-hash.cjs) as a
// marker string, read from the file's bytes before it is loaded, and `npm run build:ts`
// records the same hash in dist/src/source-hash.js. A mismatching candidate is skipped for
// a matching one (a stale build/Release loses to a fresh prebuild), else refused
// (ERR_NETPOLL_ADDON_MISMATCH). node-gyp-build's own lookup is not used: it reads an
// override from the environment (NETPOLL_PREBUILD), takes any *.node in build/Release and
// looks beside the node executable.
import fs = require('node:fs');
import path = require('node:path');
import type { Binding } from '../typings/binding.js';

type NodeGypBuild = ((dir: string) => unknown) & { resolve?: (dir: string) => string };
// A require, not an import: the asset relocator recognizes `require('node-gyp-build')(…)` calls.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const nodeGypBuild = require('node-gyp-build') as NodeGypBuild;

/** Where the docs say what to do. */
const DOCS = 'docs/install.md, "Bundlers"';

type AddonErrorCode = 'ERR_NETPOLL_ADDON_NOT_FOUND' | 'ERR_NETPOLL_ADDON_LOAD_FAILED' | 'ERR_NETPOLL_ADDON_MISMATCH';

/** The error thrown when no addon could be loaded. */
interface AddonError extends Error {
  readonly code: AddonErrorCode;
  /** What was tried, one line each. */
  readonly looked: readonly string[];
}

function addonError(code: AddonErrorCode, message: string, looked: readonly string[], cause?: unknown): AddonError {
  const err = new Error(message, cause === undefined ? undefined : { cause }) as Error & { code: string; looked: readonly string[] };
  err.code = code;
  err.looked = looked;
  return err as AddonError;
}

/** This runtime, for messages. */
function target(): string {
  const electron = process.versions.electron;
  return [
    `platform=${process.platform}`,
    `arch=${process.arch}`,
    `runtime=${electron ? `electron ${electron}` : `node ${process.versions.node}`}`,
    `abi=${process.versions.modules}`,
    `napi=${process.versions.napi ?? '?'} (netpoll needs 8)`,
  ].join(' ');
}

/**
 * The source hash this JavaScript was built with (scripts/build-dist.mjs writes it at
 * `npm run build:ts`; a bundler inlines the module), or undefined when it was compiled by
 * tsc alone and nothing was recorded: then any netpoll binary is accepted.
 */
function expectedSourceHash(): string | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const recorded = require('./source-hash.js') as unknown;
    return typeof recorded === 'string' && /^[0-9a-f]{64}$/.test(recorded) ? recorded : undefined;
  } catch {
    return undefined;
  }
}

const MARKER = 'netpoll-source-sha256:';

/** What a file is, from its bytes (never by loading it). */
type Inspection =
  | { kind: 'netpoll'; hash: string }
  | { kind: 'directory' }
  | { kind: 'not-a-file' }
  | { kind: 'javascript' }
  | { kind: 'other-addon' }
  | { kind: 'not-a-library'; head: string }
  | { kind: 'unreadable'; reason: string };

function isSharedLibrary(b: Buffer): boolean {
  if (b.length < 4) return false;
  const be = b.readUInt32BE(0);
  return (
    be === 0x7f454c46 || // ELF
    be === 0xfeedface || be === 0xfeedfacf || be === 0xcefaedfe || be === 0xcffaedfe || // Mach-O
    be === 0xcafebabe || be === 0xbebafeca || // Mach-O universal
    (b[0] === 0x4d && b[1] === 0x5a) // PE (MZ)
  );
}

function inspect(file: string): Inspection {
  let bytes: Buffer;
  try {
    const st = fs.statSync(file);
    if (st.isDirectory()) return { kind: 'directory' };
    if (!st.isFile()) return { kind: 'not-a-file' };
    bytes = fs.readFileSync(file);
  } catch (e) {
    return { kind: 'unreadable', reason: (e as Error).message };
  }
  if (!isSharedLibrary(bytes)) {
    const js = /\.(c|m)?(j|t)sx?$|\.json$/i.test(file) || /^(\s|\/\/|\/\*|'use strict'|"use strict"|import |export |const |let |var |module\.|require\(|#!)/.test(bytes.subarray(0, 64).toString('latin1'));
    return js ? { kind: 'javascript' } : { kind: 'not-a-library', head: bytes.subarray(0, 16).toString('latin1').replace(/[^\x20-\x7e]/g, '.') };
  }
  // Buffer.indexOf, not a regular expression over the whole file as text: a few hundred kB per load.
  for (let at = bytes.indexOf(MARKER, 0, 'latin1'); at >= 0; at = bytes.indexOf(MARKER, at + 1, 'latin1')) {
    const m = /^([0-9a-f]{64}|unknown)/.exec(bytes.toString('latin1', at + MARKER.length, at + MARKER.length + 64));
    if (m) return { kind: 'netpoll', hash: m[1]! };
  }
  return { kind: 'other-addon' };
}

function isAddon(m: unknown): m is Binding {
  return m !== null && typeof m === 'object' && typeof (m as Binding).sourceHash === 'string' && typeof (m as Binding).backend === 'object';
}

/** `process.dlopen`, not `require`: bundlers leave it alone (a computed require warns, or breaks). */
function dlopen(file: string): unknown {
  const module = { exports: {} as unknown };
  process.dlopen(module, file);
  return module.exports;
}

// ---- where a candidate may come from ----

/** Uids whose files we load: root, this process's user, and the owner of the running code. */
function trustedUids(): Set<number> {
  const uids = new Set<number>([0]);
  const euid = process.geteuid?.();
  if (euid !== undefined) uids.add(euid);
  try {
    uids.add(fs.statSync(__filename).uid);
  } catch {
    // __filename of a bundle always exists; if not, root and this user remain.
  }
  return uids;
}

/**
 * Why `file` (found below `base`) must not be loaded, or undefined when it may: a directory
 * on the way that every user can write, or a file or directory owned by someone else than
 * root, this user, the owner of the running code or the owner of `base`, means someone
 * else could have put it there. A group-writable directory is trusted to its group,
 * as Unix permissions say. Inside an asar archive (a single file the app owns, under
 * Electron) there is nothing to check, and Windows has no such modes.
 */
function untrusted(file: string, base: string, codeUids: Set<number>): string | undefined {
  if (process.platform === 'win32') return undefined;
  // Whoever owns the search root could rename any entry in it and put their own in its
  // place: trusting their files too gives them nothing more (and spares teams whose
  // checkout and build belong to different users a refusal).
  const uids = new Set(codeUids);
  try {
    uids.add(fs.statSync(base).uid);
  } catch {
    // checked below, with the reason
  }
  // Electron reads an asar archive as a directory tree; elsewhere a name ending in .asar is no archive.
  if (process.versions.electron && /\.asar([\\/]|$)/i.test(file)) return undefined;
  // The directories that really hold the file, not the names on the way to it: through a
  // symlink (the file, or a directory such as build/) it lives wherever the link points,
  // and whoever can write there can swap it.
  let real: string;
  let realBase: string;
  try {
    real = fs.realpathSync(file);
    realBase = fs.realpathSync(base);
  } catch (e) {
    return `cannot check ${file}: ${(e as Error).message}`;
  }
  const inside = real.startsWith(realBase + path.sep);
  const dirs: string[] = [];
  // Inside the search root, up to it; a link out of it, up to the filesystem's root.
  for (let d = path.dirname(real); ; d = path.dirname(d)) {
    dirs.push(d);
    if ((inside && d === realBase) || path.dirname(d) === d) break;
  }
  for (const p of [real, ...dirs]) {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch (e) {
      return `cannot check ${p}: ${(e as Error).message}`;
    }
    // Above the search root only a shared directory without the sticky bit (/tmp has it)
    // lets others rename what is in it; below it, none is trusted.
    const shared = (st.mode & 0o002) !== 0 && (inside || p === real || (st.mode & 0o1000) === 0);
    if (shared) return `${p} is writable by every user (a shared directory: keep the app and its binary in a directory of their own)`;
    if (!uids.has(st.uid)) return `${p} is owned by uid ${st.uid}, not by root, this user, the owner of netpoll's code or of ${base}`;
  }
  return undefined;
}

/** The package root when this file is unbundled in it (<root>/dist/src/binding.js), else undefined. */
function packageRoot(uids: Set<number>, notes: string[]): string | undefined {
  const src = path.dirname(__filename);
  if (path.basename(__filename) !== 'binding.js' || path.basename(src) !== 'src' || path.basename(path.dirname(src)) !== 'dist') return undefined;
  const root = path.dirname(path.dirname(src));
  const manifest = path.join(root, 'package.json');
  try {
    const pkg = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name?: unknown };
    if (pkg.name !== 'netpoll') return undefined;
  } catch {
    return undefined;
  }
  // A package.json someone else planted above a bundle's dist/src is not the package.
  const why = untrusted(manifest, root, uids);
  if (why !== undefined) {
    notes.push(`${root} (not taken as netpoll's package: ${why})`);
    return undefined;
  }
  return root;
}

// node-gyp-build's naming rules for prebuilds/<platform>-<arch>/<tags>.node, without its
// environment overrides (npm_config_arch, npm_config_platform, NETPOLL_PREBUILD).
interface Tags {
  file: string;
  specificity: number;
  runtime?: string;
  napi?: boolean;
  abi?: string;
  uv?: string;
  armv?: string;
  libc?: string;
}

function parseTags(file: string): Tags | undefined {
  const parts = file.split('.');
  if (parts.pop() !== 'node') return undefined;
  const tags: Tags = { file, specificity: 0 };
  for (const tag of parts) {
    if (tag === 'node' || tag === 'electron' || tag === 'node-webkit') tags.runtime = tag;
    else if (tag === 'napi') tags.napi = true;
    else if (tag.startsWith('abi')) tags.abi = tag.slice(3);
    else if (tag.startsWith('uv')) tags.uv = tag.slice(2);
    else if (tag.startsWith('armv')) tags.armv = tag.slice(4);
    else if (tag === 'glibc' || tag === 'musl') tags.libc = tag;
    else continue;
    tags.specificity++;
  }
  return tags;
}

function readdir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** The prebuild in `dir`/prebuilds/ that node-gyp-build's rules pick for this runtime. */
function prebuildIn(dir: string): string | undefined {
  const tuples = readdir(path.join(dir, 'prebuilds'))
    .map((name) => {
      const [platform, archs, ...rest] = name.split('-');
      return rest.length === 0 && platform && archs ? { name, platform, archs: archs.split('+') } : undefined;
    })
    .filter((t) => t !== undefined && t.platform === process.platform && t.archs.includes(process.arch))
    .sort((a, b) => a!.archs.length - b!.archs.length);
  const tuple = tuples[0];
  if (tuple === undefined) return undefined;
  const runtime = process.versions.electron || process.env.ELECTRON_RUN_AS_NODE ? 'electron' : 'node';
  const abi = process.versions.modules;
  const uv = (process.versions.uv ?? '').split('.')[0];
  const vars = (process.config?.variables ?? {}) as { arm_version?: string };
  const armv = process.arch === 'arm64' ? '8' : (vars.arm_version ?? '');
  const libc = process.platform === 'linux' && fs.existsSync('/etc/alpine-release') ? 'musl' : 'glibc';
  const agnostic = (t: Tags) => t.runtime === 'node' && t.napi === true;
  const dir2 = path.join(dir, 'prebuilds', tuple.name);
  const winner = readdir(dir2)
    .map(parseTags)
    .filter((t): t is Tags => {
      if (t === undefined) return false;
      if (t.runtime && t.runtime !== runtime && !agnostic(t)) return false;
      if (t.abi && t.abi !== abi && !t.napi) return false;
      if (t.uv && t.uv !== uv) return false;
      if (t.armv && t.armv !== armv) return false;
      if (t.libc && t.libc !== libc) return false;
      return true;
    })
    .sort((a, b) => {
      if (a.runtime !== b.runtime) return a.runtime === runtime ? -1 : 1;
      if (a.abi !== b.abi) return a.abi ? -1 : 1;
      return b.specificity - a.specificity;
    })[0];
  return winner && path.join(dir2, winner.file);
}

/** The files to try below `base`, in order: `netpoll.node` only beside a bundle. */
function candidatesIn(base: string, bundled: boolean): string[] {
  const out: string[] = [];
  if (bundled) out.push(path.join(base, 'netpoll.node'));
  // PREBUILDS_ONLY: as node-gyp-build, the prebuild only (CI runs the suites on it).
  if (!process.env.PREBUILDS_ONLY) out.push(path.join(base, 'build', 'Release', 'netpoll.node'), path.join(base, 'build', 'Debug', 'netpoll.node'));
  const prebuild = prebuildIn(base);
  if (prebuild !== undefined) out.push(prebuild);
  return out;
}

/**
 * node-gyp-build's own lookup from the package root, in the one form webpack's asset
 * relocator rewrites (into a require of the .node file it copies beside the bundle). It
 * stays alone in its function: more code around it throws the relocator's analysis off.
 * Not rewritten, it would search the directory two levels above the bundle: `relocated()`
 * runs it only with node-gyp-build's resolver disarmed.
 */
function relocatable(): unknown {
  return nodeGypBuild(path.join(__dirname, '..', '..'));
}

/** Thrown by the disarmed resolver: the call was not rewritten, and nothing was loaded. */
const NOT_RELOCATED = Symbol('not relocated');

/** The module webpack's asset relocator compiled in, or undefined when no bundler rewrote the call. */
function relocated(): unknown {
  const own = nodeGypBuild.resolve;
  // Not node-gyp-build's loader as we know it (a platform's own `require.addon`): it would
  // search on its own terms, so it is not called at all.
  if (typeof own !== 'function') return undefined;
  try {
    nodeGypBuild.resolve = () => {
      throw NOT_RELOCATED;
    };
  } catch {
    return undefined;
  }
  try {
    return relocatable();
  } catch (e) {
    if (e === NOT_RELOCATED) return undefined;
    throw e;
  } finally {
    nodeGypBuild.resolve = own;
  }
}

// ---- what to say ----

const UNPACK = 'in a packaged Electron app, the .node file must be unpacked from app.asar (asarUnpack: ["**/*.node"], or Forge\'s auto-unpack-natives plugin);';
const OVERRIDE = 'or set NETPOLL_ADDON=/path/to/netpoll.node;';

/** What to do, for each way of not finding the addon. */
const STEPS = {
  bundled: [
    `bundled (webpack, Vite, esbuild, Electron Forge)? Mark 'netpoll' external, or copy its binary beside the bundle (${DOCS});`,
    UNPACK,
    OVERRIDE,
    'no prebuilt binary for this platform? Build one (`npm rebuild netpoll --build-from-source`) and copy that.',
  ],
  installed: [
    'the package has no prebuilt binary for this platform and none was built: build one with `npm rebuild netpoll --build-from-source` (it needs a C compiler and Python: docs/install.md);',
    UNPACK,
    OVERRIDE,
  ],
  override: ['NETPOLL_ADDON names a file that does not exist: correct it, or unset it to use the package\'s own binary.'],
};

function notFound(looked: string[], steps: readonly string[], cause?: unknown): AddonError {
  const inAsar = looked.some((l) => /\.asar([\\/]|$)/.test(l));
  // Only in an archive can unpacking be the fix, and then it is the likeliest one.
  const ordered = steps.filter((s) => s !== UNPACK || inAsar || steps === STEPS.bundled);
  if (inAsar) ordered.sort((a, b) => Number(b === UNPACK) - Number(a === UNPACK));
  return addonError(
    'ERR_NETPOLL_ADDON_NOT_FOUND',
    `netpoll: its native addon (netpoll.node) was not found for ${target()}.\n` +
      `Looked in:\n${looked.map((l) => `  - ${l}`).join('\n')}\n` +
      `What to do:\n${ordered.map((s) => `  - ${s}`).join('\n')}`,
    looked,
    cause,
  );
}

/** A netpoll binary that does not load here: the one case where another platform is the likely cause. */
function loadFailed(file: string, why: unknown, looked: string[]): AddonError {
  const reason = why instanceof Error ? why.message.split('\n')[0] : String(why);
  return addonError(
    'ERR_NETPOLL_ADDON_LOAD_FAILED',
    `netpoll: its native addon ${file} was found but failed to load (${reason}), for ${target()}.\n` +
      'It may be built for another platform, architecture or libc: rebuild it here with ' +
      '`npm rebuild netpoll --build-from-source`, or point NETPOLL_ADDON at a build for this system.',
    looked,
    why,
  );
}

/** NETPOLL_ADDON names something that is not a netpoll binary: say what it is instead. */
function wrongOverride(value: string, file: string, what: Inspection, looked: string[]): AddonError {
  let why: string;
  switch (what.kind) {
    case 'directory': {
      const inside = [path.join(file, 'netpoll.node'), path.join(file, 'build', 'Release', 'netpoll.node'), prebuildIn(file)]
        .filter((f): f is string => f !== undefined && fs.existsSync(f));
      why = `NETPOLL_ADDON=${value} is a directory; it must name the addon file itself` +
        (inside.length > 0 ? `, such as ${inside.join(' or ')}` : ' (netpoll.node, or a prebuild\'s .node file)');
      break;
    }
    case 'not-a-file':
      why = `NETPOLL_ADDON=${value} is not a regular file; it must name netpoll's addon (a .node file)`;
      break;
    case 'javascript':
      why = `NETPOLL_ADDON=${value} is a JavaScript (or JSON) file, not the native addon: it must name the compiled .node file (netpoll.node), not netpoll's JavaScript`;
      break;
    case 'unreadable':
      why = `NETPOLL_ADDON=${value} cannot be read (${what.reason})`;
      break;
    case 'other-addon':
      why = `NETPOLL_ADDON=${value} is a native library but not netpoll's addon (it carries no netpoll source hash), so it was not loaded: another package's addon? Point it at netpoll.node`;
      break;
    default:
      why = `NETPOLL_ADDON=${value} is not a compiled library (it starts with "${what.kind === 'not-a-library' ? what.head : ''}"): it must name netpoll.node`;
  }
  return addonError('ERR_NETPOLL_ADDON_LOAD_FAILED', `netpoll: ${why}.`, looked);
}

interface Stale {
  file: string;
  hash: string;
}

function short(hash: string): string {
  return hash === 'unknown' ? 'unknown' : hash.slice(0, 12);
}

function mismatch(stale: Stale[], expected: string, looked: string[], override: boolean): AddonError {
  const files = stale.map((s) => `${s.file} (built from sources ${short(s.hash)}…)`).join('\n  - ');
  const fix = override
    ? 'rebuild that file from the sources this netpoll was built from, or unset NETPOLL_ADDON to use the package\'s own binary'
    : '`npm run build:native` in a checkout of netpoll, `npm rebuild netpoll --build-from-source` in an install, or copy the binary of the netpoll version you bundled';
  return addonError(
    'ERR_NETPOLL_ADDON_MISMATCH',
    `netpoll: its native addon was built from other sources than this JavaScript (which expects csrc/ and binding.gyp with hash ${short(expected)}…, ${expected}):\n  - ${files}\n` +
      `An addon from other sources must not run with this JavaScript. Remove or rebuild ${stale[0]!.file}: ${fix}. ` +
      'In a checkout of netpoll where csrc/ changed after the JavaScript was built, run `npm run build:ts` instead.',
    looked,
  );
}

// ---- the lookup ----

function loadBinding(): Binding {
  const looked: string[] = [];
  const expected = expectedSourceHash();
  const matches = (hash: string) => expected === undefined || hash === expected;
  const open = (file: string): Binding => {
    let m: unknown;
    try {
      m = dlopen(file);
    } catch (e) {
      throw loadFailed(file, e, looked);
    }
    if (!isAddon(m)) throw loadFailed(file, new Error('it loaded, but does not export what netpoll\'s addon exports'), looked);
    if (!matches(m.sourceHash)) throw mismatch([{ file, hash: m.sourceHash }], expected!, looked, false);
    return m;
  };

  const override = process.env.NETPOLL_ADDON;
  if (override) {
    const file = path.resolve(override);
    looked.push(`${file} (NETPOLL_ADDON)`);
    try {
      fs.statSync(file);
    } catch (e) {
      // Only a missing file is "not found": a symlink loop (ELOOP), a component that is not
      // a directory or a search permission denied say what they are.
      if ((e as { code?: unknown }).code !== 'ENOENT') throw wrongOverride(override, file, { kind: 'unreadable', reason: (e as Error).message }, looked);
      throw notFound(looked, STEPS.override, new Error(`NETPOLL_ADDON=${override}: no such file`));
    }
    const what = inspect(file);
    if (what.kind !== 'netpoll') throw wrongOverride(override, file, what, looked);
    if (!matches(what.hash)) throw mismatch([{ file, hash: what.hash }], expected!, looked, true);
    return open(file);
  }

  const uids = trustedUids();
  const root = packageRoot(uids, looked);
  const base = root ?? path.dirname(__filename);
  const stale: Stale[] = [];
  if (root !== undefined) looked.push(`${root} (the package: build/Release/, prebuilds/${process.platform}-${process.arch}/)`);
  else looked.push(`${path.join(base, 'netpoll.node')} (beside the bundle)`, `${base} (beside the bundle: build/Release/, prebuilds/${process.platform}-${process.arch}/)`);
  for (const file of candidatesIn(base, root === undefined)) {
    if (!fs.existsSync(file)) continue;
    const why = untrusted(file, base, uids);
    if (why !== undefined) {
      looked.push(`${file} (skipped: ${why})`);
      continue;
    }
    const what = inspect(file);
    if (what.kind !== 'netpoll') {
      looked.push(`${file} (skipped: ${what.kind === 'unreadable' ? `cannot be read, ${what.reason}` : 'not netpoll\'s addon'})`);
      continue;
    }
    if (!matches(what.hash)) {
      stale.push({ file, hash: what.hash });
      looked.push(`${file} (skipped: built from other sources, ${short(what.hash)}…)`);
      continue;
    }
    const m = open(file);
    for (const s of stale) {
      process.emitWarning(`netpoll: skipped ${s.file}, built from other sources (${short(s.hash)}…) than this JavaScript (${short(expected!)}…), for ${file}. Remove or rebuild it.`, { code: 'NETPOLL_STALE_ADDON' });
    }
    return m;
  }

  if (root === undefined) {
    looked.push('the path a bundler compiled in for node-gyp-build (webpack\'s asset relocator)');
    let m: unknown;
    try {
      m = relocated();
    } catch (e) {
      // The copied file is missing (the bundle was shipped without native_modules/): nothing ran.
      const missing = (e as { code?: unknown }).code === 'MODULE_NOT_FOUND' || /no such file|not found|ENOENT/i.test(String((e as Error)?.message));
      if (missing) throw notFound(looked, STEPS.bundled, e);
      throw loadFailed('(the file webpack\'s asset relocator copied)', e, looked);
    }
    if (m !== undefined) {
      if (!isAddon(m)) throw loadFailed('(the file webpack\'s asset relocator copied)', new Error('it loaded, but is not netpoll\'s addon'), looked);
      if (!matches(m.sourceHash)) throw mismatch([{ file: 'the .node file webpack\'s asset relocator copied (native_modules/)', hash: m.sourceHash }], expected!, looked, false);
      return m;
    }
  }
  if (stale.length > 0) throw mismatch(stale, expected!, looked, false);
  throw notFound(looked, root !== undefined ? STEPS.installed : STEPS.bundled);
}

// A copy of the addon's exports: V8 keeps an addon's exports object in dictionary mode
// (its properties are added one by one from C++), and every `binding.read` in a hot
// path would then be a hash lookup through a generic inline-cache stub. The copy has
// fast properties, so optimized code loads the functions directly.
export const binding: Binding = { ...loadBinding() };
