// Loads the native addon: a prebuild from prebuilds/ when one matches this
// platform, else what `node-gyp rebuild` put in build/.
import * as path from 'node:path';
import type { Binding } from '../typings/binding.js';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const load = require('node-gyp-build') as (dir: string) => unknown;

/** The package root: dist/src/ is two levels below it. */
const packageRoot = path.resolve(__dirname, '..', '..');

function loadBinding(): Binding {
  // NETPOLL_ADDON points at another build of the addon (the kqueue build, an ASan build).
  const override = process.env.NETPOLL_ADDON;
  if (override) return require(path.resolve(override)) as Binding;
  return load(packageRoot) as Binding;
}

// A copy of the addon's exports: V8 keeps an addon's exports object in dictionary mode
// (its properties are added one by one from C++), and every `binding.read` in a hot
// path would then be a hash lookup through a generic inline-cache stub. The copy has
// fast properties, so optimized code loads the functions directly.
export const binding: Binding = { ...loadBinding() };
