// Loads the native addon, and when it cannot, says where it looked and what to do.
//
// Where it looks, in order:
//   1. NETPOLL_ADDON: an explicit path (a custom build, or wherever a bundled app keeps it).
//   2. The package's own directory, when this file is still in it (dist/src/ below the
//      package root): node-gyp-build picks build/Release/netpoll.node, else the prebuild
//      that matches the platform. This is every unbundled install.
//   3. Bundled (webpack, esbuild, Vite: this file's directory is the bundle's, and the
//      package's directory is not around it): a netpoll.node beside the bundle, then a
//      prebuilds/ or build/Release/ copied beside it.
//   4. Bundled, the node-gyp-build call below as a bundler may have rewritten it: webpack's
//      asset relocator (Electron Forge's webpack template) replaces that call, at build
//      time, with a require of the .node file it copied next to the bundle.
// The loaded module must look like netpoll's addon; anything else counts as not found.
import fs = require('node:fs');
import path = require('node:path');
import type { Binding } from '../typings/binding.js';

type NodeGypBuild = ((dir: string) => unknown) & { resolve(dir: string): string };
// A require, not an import: the asset relocator recognizes `require('node-gyp-build')(…)` calls.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const nodeGypBuild = require('node-gyp-build') as NodeGypBuild;

/** Where the README tells a bundled app what to do. */
const DOCS = 'docs/install.md, "Bundlers"';

/** The error thrown when no addon could be loaded: code `ERR_NETPOLL_ADDON_NOT_FOUND` or `ERR_NETPOLL_ADDON_LOAD_FAILED`. */
interface AddonError extends Error {
  readonly code: 'ERR_NETPOLL_ADDON_NOT_FOUND' | 'ERR_NETPOLL_ADDON_LOAD_FAILED';
  /** What was tried, one line each. */
  readonly looked: readonly string[];
}

/** This runtime as node-gyp-build names it, for messages. */
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

function isAddon(m: unknown): m is Binding {
  return m !== null && typeof m === 'object' && typeof (m as Binding).sourceHash === 'string' && typeof (m as Binding).backend === 'object';
}

/** `process.dlopen`, not `require`: bundlers leave it alone (a computed require warns, or breaks). */
function dlopen(file: string): unknown {
  const module = { exports: {} as unknown };
  process.dlopen(module, file);
  return module.exports;
}

function failed(file: string, why: unknown, looked: string[]): AddonError {
  const reason = why instanceof Error ? why.message.split('\n')[0] : String(why);
  const err = new Error(
    `netpoll: its native addon ${file} was found but failed to load (${reason}), for ${target()}.\n` +
      'It may be built for another platform, architecture or libc: rebuild it here with ' +
      '`npm rebuild netpoll --build-from-source`, or point NETPOLL_ADDON at a build for this system.',
    { cause: why },
  ) as Error & { code: string; looked: string[] };
  err.code = 'ERR_NETPOLL_ADDON_LOAD_FAILED';
  err.looked = looked;
  return err as AddonError;
}

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

function notFound(looked: string[], causes: unknown[], steps: readonly string[]): AddonError {
  const inAsar = looked.some((l) => /\.asar([\\/]|$)/.test(l));
  // Only in an archive can unpacking be the fix, and then it is the likeliest one.
  const ordered = steps.filter((s) => s !== UNPACK || inAsar || steps === STEPS.bundled);
  if (inAsar) ordered.sort((a, b) => Number(b === UNPACK) - Number(a === UNPACK));
  const err = new Error(
    `netpoll: its native addon (netpoll.node) was not found for ${target()}.\n` +
      `Looked in:\n${looked.map((l) => `  - ${l}`).join('\n')}\n` +
      `What to do:\n${ordered.map((s) => `  - ${s}`).join('\n')}`,
    { cause: causes.length === 1 ? causes[0] : new AggregateError(causes, 'node-gyp-build found nothing') },
  ) as Error & { code: string; looked: string[] };
  err.code = 'ERR_NETPOLL_ADDON_NOT_FOUND';
  err.looked = looked;
  return err as AddonError;
}

/** Whether `dir` is netpoll's own package directory (so this file was not bundled). */
function isPackageDir(dir: string): boolean {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown };
    return pkg.name === 'netpoll';
  } catch {
    return false;
  }
}

/** The file node-gyp-build would load from `dir`, or undefined (with why in `causes`). */
function resolveIn(dir: string, causes: unknown[]): string | undefined {
  try {
    return nodeGypBuild.resolve(dir);
  } catch (e) {
    causes.push(e);
    return undefined;
  }
}

/**
 * node-gyp-build's own lookup from the package root, in the one form webpack's asset
 * relocator rewrites (into a require of the .node file it copies beside the bundle). It
 * stays alone in its function: more code around it throws the relocator's analysis off.
 */
function relocatable(): unknown {
  return nodeGypBuild(path.join(__dirname, '..', '..'));
}

function loadBinding(): Binding {
  const looked: string[] = [];
  const causes: unknown[] = [];
  const open = (file: string): Binding => {
    let m: unknown;
    try {
      m = dlopen(file);
    } catch (e) {
      throw failed(file, e, looked);
    }
    if (!isAddon(m)) throw failed(file, new Error('not netpoll\'s addon'), looked);
    return m;
  };

  const override = process.env.NETPOLL_ADDON;
  if (override) {
    const file = path.resolve(override);
    looked.push(`${file} (NETPOLL_ADDON)`);
    if (!fs.existsSync(file)) throw notFound(looked, [new Error(`NETPOLL_ADDON=${override}: no such file`)], STEPS.override);
    return open(file);
  }

  const here = __dirname;
  const packageRoot = path.dirname(path.dirname(here));
  if (isPackageDir(packageRoot)) {
    looked.push(`${packageRoot} (the package: build/Release/, prebuilds/${process.platform}-${process.arch}/)`);
    const file = resolveIn(packageRoot, causes);
    if (file !== undefined) return open(file);
    throw notFound(looked, causes, STEPS.installed);
  }

  // Bundled: this file's directory is the bundle's.
  const beside = path.join(here, 'netpoll.node');
  looked.push(`${beside} (beside the bundle)`);
  if (fs.existsSync(beside)) return open(beside);
  looked.push(`${here} (beside the bundle: prebuilds/${process.platform}-${process.arch}/, build/Release/)`);
  const copied = resolveIn(here, causes);
  if (copied !== undefined) return open(copied);

  looked.push('the path a bundler compiled in for node-gyp-build (webpack\'s asset relocator)');
  try {
    const m = relocatable();
    if (isAddon(m)) return m;
  } catch (e) {
    causes.push(e);
  }
  throw notFound(looked, causes, STEPS.bundled);
}

// A copy of the addon's exports: V8 keeps an addon's exports object in dictionary mode
// (its properties are added one by one from C++), and every `binding.read` in a hot
// path would then be a hash lookup through a generic inline-cache stub. The copy has
// fast properties, so optimized code loads the functions directly.
export const binding: Binding = { ...loadBinding() };
