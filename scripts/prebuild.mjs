#!/usr/bin/env node
// Regenerates the committed prebuilds (prebuilds/<platform>-<arch>/node.napi[.armvN].node)
// from the current csrc/ and binding.gyp: linux-x64 natively, linux-arm64 and linux-arm
// (armv7, hard float) with Debian's cross compilers. Run it after every change to the
// native sources; test/prebuilds.test.ts fails until you do.
//
//   npm run prebuild                  all three
//   node scripts/prebuild.mjs arm64   only the named ones (x64, arm64, arm)
//
// Needs: Linux x64 host, gcc/g++, and for the cross builds
//   apt-get install gcc-aarch64-linux-gnu g++-aarch64-linux-gnu gcc-arm-linux-gnueabihf g++-arm-linux-gnueabihf
// No network: the addon is built against the host node's headers (Node-API is the same
// for every architecture; NAPI_VERSION=8 in binding.gyp keeps newer calls out).
//
// File names are what both loaders look for: node-gyp-build matches "node" + "napi" on any
// Node or Electron, and @electron/rebuild only skips compiling when it finds exactly
// node.napi.node (x64), node.napi.armv8.node (arm64) or node.napi.armv7.node (armv7l).
// That is also why there is no libc tag: on musl the glibc binary fails node-gyp-build's
// install-time load test and the install falls back to compiling from source.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = fileURLToPath(new URL('..', import.meta.url));
const { sourceHash, sourceFiles } = require('./source-hash.cjs');

/** What we ship prebuilt. `cross` is the Debian toolchain prefix (none: the host compiler). */
const TARGETS = {
  x64: { arch: 'x64', dir: 'linux-x64', args: [] },
  arm64: { arch: 'arm64', dir: 'linux-arm64', cross: 'aarch64-linux-gnu', args: ['--tag-armv', '8'] },
  arm: { arch: 'arm', dir: 'linux-arm', cross: 'arm-linux-gnueabihf', args: ['--armv', '7', '--tag-armv', '7'] },
};

const wanted = process.argv.slice(2);
for (const name of wanted) {
  if (!(name in TARGETS)) fail(`unknown target "${name}"; known: ${Object.keys(TARGETS).join(', ')}`);
}
const targets = (wanted.length ? wanted : Object.keys(TARGETS)).map((name) => ({ name, ...TARGETS[name] }));

if (process.platform !== 'linux' || process.arch !== 'x64') {
  fail(`prebuilds are made on linux-x64 (this is ${process.platform}-${process.arch})`);
}
for (const t of targets) {
  if (!t.cross) continue;
  for (const tool of ['gcc', 'g++', 'ar', 'strip']) {
    if (!onPath(`${t.cross}-${tool}`)) {
      fail(`${t.cross}-${tool} not found: apt-get install gcc-${t.cross} g++-${t.cross}`);
    }
  }
}

const hash = sourceHash();
const stage = makeStage();
console.log(`[prebuild] sources ${hash} (${sourceFiles().length} files), staged in ${stage}`);

try {
  for (const t of targets) {
    const out = join(root, 'prebuilds', t.dir);
    rmSync(out, { recursive: true, force: true });
    const env = { ...process.env, ...headerEnv() };
    if (t.cross) {
      Object.assign(env, {
        CC: `${t.cross}-gcc`,
        CXX: `${t.cross}-g++`,
        LINK: `${t.cross}-g++`,
        AR: `${t.cross}-ar`,
        PREBUILD_STRIP_BIN: `${t.cross}-strip`,
      });
    }
    const args = [
      require.resolve('prebuildify/bin.js'),
      '--napi', '--strip',
      // The running node's headers: nothing to download, and Node-API does not depend on them.
      '--target', process.versions.node,
      '--arch', t.arch,
      ...t.args,
      '--name', 'node.napi',
      '--cwd', stage,
      '--out', root,
    ];
    console.log(`[prebuild] ${t.dir}${t.cross ? ` with ${t.cross}-g++` : ''}`);
    const r = spawnSync(process.execPath, args, { cwd: stage, env, stdio: 'inherit' });
    if (r.status !== 0) fail(`prebuildify for ${t.dir} failed (exit ${r.status ?? r.signal})`);
    for (const file of readdirSync(out)) {
      console.log(`[prebuild]   prebuilds/${t.dir}/${file}  ${statSync(join(out, file)).size} bytes`);
    }
  }
} finally {
  rmSync(stage, { recursive: true, force: true });
}
console.log('[prebuild] done; commit prebuilds/ together with the source change');

/**
 * A copy of exactly what the addon is built from, so that the build cannot pick up
 * anything else and does not overwrite the developer's build/ with a foreign binary.
 */
function makeStage() {
  const dir = mkdtempSync(join(tmpdir(), 'netpoll-prebuild-'));
  for (const rel of [...sourceFiles(), 'package.json', 'scripts/source-hash.cjs']) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    cpSync(join(root, rel), join(dir, rel));
  }
  // binding.gyp asks node-addon-api for its include dir; resolve it from our node_modules.
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return dir;
}

/** Points node-gyp at the running node's own headers when it ships them (Debian, nodesource, official tarballs). */
function headerEnv() {
  if (process.env.npm_config_nodedir) return {};
  const prefix = resolve(dirname(process.execPath), '..');
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? { npm_config_nodedir: prefix } : {};
}

function onPath(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function fail(msg) {
  console.error(`[prebuild] ${msg}`);
  process.exit(1);
}
