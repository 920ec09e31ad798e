// Apps that bundle netpoll, built with the real bundlers (esbuild, webpack) from the
// configurations docs/install.md shows, and run. An app laid out as an install leaves it:
// node_modules/netpoll holds the package's runtime files and a prebuild for this platform.
//
// The build scripts and webpack configurations are read from docs/install.md (the blocks
// after `<!-- bundler-test: NAME -->`), so the documentation is what is tested.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'netpoll-bundlers-'));
const platformDir = `${process.platform}-${process.arch}`;

/** The code blocks of docs/install.md marked `<!-- bundler-test: NAME -->`, by name. */
function documentedConfigs(): Map<string, string> {
  const lines = fs.readFileSync(path.join(root, 'docs', 'install.md'), 'utf8').split('\n');
  const out = new Map<string, string>();
  for (let i = 0; i < lines.length; i++) {
    const m = /^<!-- bundler-test: ([\w-]+) -->$/.exec(lines[i]!);
    if (!m) continue;
    if (!/^```js$/.test(lines[i + 1] ?? '')) throw new Error(`docs/install.md:${i + 1}: a bundler-test marker must be followed by a \`\`\`js block`);
    let end = i + 2;
    while (end < lines.length && lines[end] !== '```') end++;
    out.set(m[1]!, lines.slice(i + 2, end).join('\n') + '\n');
  }
  return out;
}
const configs = documentedConfigs();

function config(name: string): string {
  const text = configs.get(name);
  if (text === undefined) throw new Error(`docs/install.md has no block marked bundler-test: ${name}`);
  return text;
}

// The app: what a main-process module does with netpoll, as an ES module.
const appSource = `import { Backend, openPoller, socketpair, read, write, close, ErrEngineShutdown } from 'netpoll';

const poller = openPoller();
const [a, b] = socketpair();
poller.addRead({ fd: a });
write(b, Buffer.from('hello'));
const buf = Buffer.alloc(16);
poller.polling((fd) => {
  console.log(\`netpoll (\${Backend}) in a bundle: \${buf.toString('utf8', 0, read(fd, buf))}\`);
  return ErrEngineShutdown;
}).then(() => { poller.close(); close(a); close(b); });
`;

/** The source hash `npm run build:ts` recorded: the loader accepts only a binary that carries it. */
const recordedHash = require(path.join(root, 'dist', 'src', 'source-hash.js')) as string;

/** The binary this checkout loads: build/Release or the prebuild, whichever was built from the sources dist/ expects. */
function currentBinary(): string {
  const hash = recordedHash;
  const files = [path.join(root, 'build', 'Release', 'netpoll.node'), path.join(root, 'prebuilds', platformDir, 'node.napi.node')];
  const file = files.find((f) => fs.existsSync(f) && fs.readFileSync(f, 'latin1').includes(`netpoll-source-sha256:${hash}`));
  if (file === undefined) throw new Error(`no binary built from the sources ${hash}: npm run build:native`);
  return file;
}

/** A fresh app directory: package.json, src/main.js, and node_modules as an install leaves it. */
function makeApp(name: string): string {
  const app = path.join(scratch, name);
  fs.mkdirSync(path.join(app, 'src'), { recursive: true });
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: `app-${name}`, version: '1.0.0', private: true }));
  fs.writeFileSync(path.join(app, 'src', 'main.js'), appSource);
  fs.writeFileSync(path.join(app, 'src', 'unbundled.mjs'), appSource); // the same app, run by Node as is
  const pkg = path.join(app, 'node_modules', 'netpoll');
  fs.mkdirSync(path.join(pkg, 'prebuilds', platformDir), { recursive: true });
  fs.copyFileSync(path.join(root, 'package.json'), path.join(pkg, 'package.json'));
  for (const dir of ['src', 'esm', 'typings']) {
    fs.cpSync(path.join(root, 'dist', dir), path.join(pkg, 'dist', dir), { recursive: true, filter: (f) => !f.endsWith('.map') });
  }
  fs.copyFileSync(currentBinary(), path.join(pkg, 'prebuilds', platformDir, 'node.napi.node'));
  // netpoll's runtime dependency, and the build tools the configurations name.
  for (const dep of ['node-gyp-build', 'esbuild', 'webpack', 'node-loader', '@vercel/webpack-asset-relocator-loader']) {
    const link = path.join(app, 'node_modules', dep);
    fs.mkdirSync(path.dirname(link), { recursive: true });
    fs.symlinkSync(path.join(root, 'node_modules', dep), link, 'dir');
  }
  return app;
}

/** The environment of the children: no override that would bypass the lookup under test. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NETPOLL_ADDON;
  delete env.NETPOLL_PREBUILD;
  return { ...env, ...extra };
}

function node(args: string[], cwd: string, env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, args, { cwd, env: childEnv(env), encoding: 'utf8', timeout: 60000 });
}

function ok(r: { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }, what: string): string {
  assert.is(r.signal, null, `${what}: timed out`);
  assert.is(r.status, 0, `${what} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** `node args` in `cwd`, without blocking: the builds run side by side. */
function nodeAsync(args: string[], cwd: string): Promise<{ status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd, env: childEnv(), encoding: 'utf8', timeout: 60000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number' && err.signal == null) return reject(err);
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, signal: err?.signal ?? null, stdout, stderr });
    });
  });
}

type BuildName = 'esbuild-external' | 'esbuild-bundled' | 'webpack-external' | 'webpack-bundled';

/** How each documented configuration is run: an esbuild script, or webpack through its Node API. */
function buildCommand(app: string, name: BuildName): string[] {
  if (name.startsWith('esbuild')) {
    fs.writeFileSync(path.join(app, 'build.mjs'), config(name));
    return ['build.mjs'];
  }
  fs.writeFileSync(path.join(app, 'webpack.config.js'), config(name));
  return ['-e', `require('webpack')(require('./webpack.config.js'), (err, stats) => {
    if (err) throw err;
    if (stats.hasErrors() || stats.hasWarnings()) { console.error(stats.toString('errors-warnings')); process.exit(1); }
  });`];
}

const builds = new Map<BuildName, Promise<string>>();

/** The app built with configuration `name` (started once; all four start together in test.before). */
function built(name: BuildName): Promise<string> {
  let b = builds.get(name);
  if (b === undefined) {
    const app = makeApp(name);
    b = nodeAsync(buildCommand(app, name), app).then((r) => {
      ok(r, `${name}${name.startsWith('webpack') ? ', with no errors or warnings' : ''}`);
      return app;
    });
    b.catch(() => {}); // reported by the test that awaits it
    builds.set(name, b);
  }
  return b;
}

test.before(() => {
  for (const name of ['webpack-bundled', 'webpack-external', 'esbuild-bundled', 'esbuild-external'] as const) void built(name);
});

/** Copies the build output somewhere with no node_modules above it: what a packaged app ships. */
function ship(app: string, name: string): string {
  const dest = path.join(scratch, 'shipped', name);
  fs.cpSync(path.join(app, 'dist'), dest, { recursive: true });
  return dest;
}

const hello = /^netpoll \((epoll|kqueue)\) in a bundle: hello$/m;

test('esbuild, netpoll external: the bundle leaves netpoll to node_modules and runs', async () => {
  const app = await built('esbuild-external');
  const bundle = fs.readFileSync(path.join(app, 'dist', 'main.js'), 'utf8');
  assert.ok(bundle.includes('require("netpoll")'), 'netpoll is required at run time');
  assert.not.ok(bundle.includes('ERR_NETPOLL_ADDON_NOT_FOUND'), 'none of netpoll\'s code is in the bundle');
  assert.match(ok(node(['dist/main.js'], app), 'the bundle'), hello);
});

test('esbuild, netpoll bundled in: with the binaries copied beside it, the bundle runs where no node_modules is', async () => {
  const app = await built('esbuild-bundled');
  const shipped = ship(app, 'esbuild-bundled');
  assert.ok(fs.existsSync(path.join(shipped, 'prebuilds', platformDir, 'node.napi.node')), 'the build script copied the prebuilds');
  assert.ok(fs.readFileSync(path.join(shipped, 'main.js'), 'utf8').includes(recordedHash), 'the bundle carries the source hash its binary must match');
  assert.match(ok(node([path.join(shipped, 'main.js')], os.tmpdir()), 'the shipped bundle'), hello);
});

test('webpack, netpoll external: the bundle leaves netpoll to node_modules and runs', async () => {
  const app = await built('webpack-external');
  const bundle = fs.readFileSync(path.join(app, 'dist', 'main.js'), 'utf8');
  assert.ok(bundle.includes('require("netpoll")'), 'netpoll is required at run time');
  assert.not.ok(bundle.includes('ERR_NETPOLL_ADDON_NOT_FOUND'), 'none of netpoll\'s code is in the bundle');
  assert.match(ok(node(['dist/main.js'], app), 'the bundle'), hello);
});

test('webpack with Electron Forge\'s native-module rules, netpoll bundled in: the relocated binary loads where no node_modules is', async () => {
  const app = await built('webpack-bundled');
  const relocated = fs.readdirSync(path.join(app, 'dist', 'native_modules'), { recursive: true }).map(String).filter((f) => f.endsWith('.node'));
  assert.equal(relocated, [path.join('prebuilds', platformDir, 'node.napi.node')], 'the relocator copied the one binary node-gyp-build picks');
  assert.ok(fs.readFileSync(path.join(app, 'dist', 'main.js'), 'utf8').includes(recordedHash), 'the bundle carries the source hash its binary must match');
  const shipped = ship(app, 'webpack-bundled');
  assert.match(ok(node([path.join(shipped, 'main.js')], os.tmpdir()), 'the shipped bundle'), hello);

  // Shipped without native_modules/: nothing was loaded, so it is not-found, not a platform problem.
  const bare = path.join(scratch, 'shipped', 'webpack-bare', 'app', 'dist');
  fs.mkdirSync(bare, { recursive: true });
  fs.copyFileSync(path.join(shipped, 'main.js'), path.join(bare, 'main.js'));
  const err = failure(node([path.join(bare, 'main.js')], os.tmpdir()));
  assert.match(err, 'ERR_NETPOLL_ADDON_NOT_FOUND');
  assert.match(err, 'webpack\'s asset relocator');
});

// ---- when the binary cannot be found ----

/** An esbuild bundle with netpoll in it and no binary anywhere near, placed in `dir`. */
async function bundleWithoutBinary(dir: string): Promise<string> {
  const app = await built('esbuild-bundled');
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(path.join(app, 'dist', 'main.js'), path.join(dir, 'main.js'));
  return path.join(dir, 'main.js');
}

function failure(r: SpawnSyncReturns<string>): string {
  assert.is(r.signal, null, 'timed out');
  assert.is.not(r.status, 0, `expected a failure, got:\n${r.stdout}`);
  return r.stderr;
}

const runtime = `platform=${process.platform} arch=${process.arch} runtime=node ${process.versions.node} abi=${process.versions.modules}`;

test('bundled in without its binary: netpoll\'s own error says where it looked and what to do, and names the platform', async () => {
  // An app's dist/, two levels below a directory of this test's own: the loader must look
  // beside the bundle only, never above it (once it took that directory for the package).
  const dir = path.join(scratch, 'no-binary', 'app', 'dist');
  const main = await bundleWithoutBinary(dir);
  const err = failure(node([main], os.tmpdir()));
  for (const line of /Looked in:\n((?: {2}- .*\n)+)/.exec(err)?.[1]?.split('\n').filter(Boolean) ?? []) {
    const where = /^ {2}- (\/\S*)/.exec(line)?.[1];
    if (where !== undefined) assert.ok(where.startsWith(dir), `looked outside the bundle's directory: ${line}`);
  }
  assert.match(err, 'ERR_NETPOLL_ADDON_NOT_FOUND');
  assert.match(err, `netpoll: its native addon (netpoll.node) was not found for ${runtime}`);
  assert.match(err, `${path.join(dir, 'netpoll.node')} (beside the bundle)`);
  assert.match(err, `${dir} (beside the bundle: build/Release/, prebuilds/${platformDir}/)`);
  assert.match(err, 'Mark \'netpoll\' external, or copy its binary beside the bundle');
  assert.match(err, 'unpacked from app.asar');
  assert.match(err, 'NETPOLL_ADDON=/path/to/netpoll.node');
  assert.match(err, /^Error: netpoll: /m, 'the error is netpoll\'s');
  assert.not.match(err, /^Error: No native build was found/m, 'node-gyp-build\'s error is at most its cause');
});

test('inside an app.asar that was not unpacked: the error puts unpacking first', async () => {
  // A directory named app.asar stands in for the archive: the path is what the message reads.
  const dir = path.join(scratch, 'resources', 'app.asar', '.webpack', 'main');
  const err = failure(node([await bundleWithoutBinary(dir)], os.tmpdir()));
  const steps = err.slice(err.indexOf('What to do:'));
  assert.match(steps, /What to do:\n {2}- in a packaged Electron app, the \.node file must be unpacked from app\.asar/);
});

test('an installed package with no binary for this platform: the error names the platform and says to build from source', () => {
  const app = makeApp('unsupported');
  // The package as it would arrive on a platform it has no prebuild for.
  const prebuilds = path.join(app, 'node_modules', 'netpoll', 'prebuilds');
  fs.renameSync(path.join(prebuilds, platformDir), path.join(prebuilds, 'sunos-sparc'));
  const err = failure(node(['src/unbundled.mjs'], app));
  assert.match(err, `was not found for ${runtime}`);
  assert.match(err, `${path.join(app, 'node_modules', 'netpoll')} (the package: build/Release/, prebuilds/${platformDir}/)`);
  assert.match(err, 'npm rebuild netpoll --build-from-source');
  assert.not.match(err, 'Mark \'netpoll\' external', 'not bundled: no bundler advice');
});

test('NETPOLL_ADDON naming a missing file, or a file that is not a library: the errors say which and why', () => {
  const app = path.join(scratch, 'unsupported'); // any install will do
  const missing = path.join(scratch, 'nowhere', 'netpoll.node');
  let err = failure(node(['src/unbundled.mjs'], app, { NETPOLL_ADDON: missing }));
  assert.match(err, 'ERR_NETPOLL_ADDON_NOT_FOUND');
  assert.match(err, `${missing} (NETPOLL_ADDON)`);
  assert.match(err, 'NETPOLL_ADDON names a file that does not exist');

  const bogus = path.join(scratch, 'bogus.node');
  fs.writeFileSync(bogus, 'not a shared object');
  err = failure(node(['src/unbundled.mjs'], app, { NETPOLL_ADDON: bogus }));
  assert.match(err, 'ERR_NETPOLL_ADDON_LOAD_FAILED');
  assert.match(err, `netpoll: NETPOLL_ADDON=${bogus} is not a compiled library (it starts with "not a shared obj")`);
  assert.not.match(err, 'another platform', 'not a build for another platform: no rebuild advice');
});

test.after(() => fs.rmSync(scratch, { recursive: true, force: true }));

test.run();
