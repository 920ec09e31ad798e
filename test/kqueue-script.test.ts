// scripts/kqueue.mjs run as its header documents, `node scripts/kqueue.mjs build`, not
// through npm: npm puts node_modules/.bin on PATH and names its node-gyp in
// npm_config_node_gyp, a direct run has neither, and the script used to fail with
// `spawnSync node-gyp ENOENT`.
//
// The script is run from a copy of the package layout in a temporary directory, with a
// binding.gyp of one tiny addon that reports the kqueue backend, and a fake libkqueue
// prefix: so it really runs node-gyp end to end, in seconds, without libkqueue and
// without touching the build-kqueue/ of a real kqueue build (which a suite run under
// `npm run test:kqueue` is testing).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');

const fakeAddon = `#include <node_api.h>
static napi_value init(napi_env env, napi_value exports) {
  napi_value backend, name;
  napi_create_object(env, &backend);
  napi_create_string_utf8(env, "kqueue", NAPI_AUTO_LENGTH, &name);
  napi_set_named_property(env, backend, "name", name);
  napi_set_named_property(env, exports, "backend", backend);
  return exports;
}
NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
`;

/** This environment as a plain `node` run would have it: no npm variables, no node_modules/.bin. */
function directEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  env.PATH = [path.dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(path.delimiter);
  return env;
}

test('`node scripts/kqueue.mjs build` finds node-gyp without npm, builds, and checks the backend', () => {
  if (process.platform !== 'linux') return; // elsewhere the script only says kqueue is native
  // node-gyp needs this node's headers: beside it (Debian's node, official tarballs) or in
  // node-gyp's cache. The Node matrix's binaries come without them, and with no network
  // node-gyp cannot fetch them: that is no fault of the script's, so say so and skip.
  const headers = [
    path.join(path.dirname(process.execPath), '..', 'include', 'node', 'common.gypi'),
    path.join(os.homedir(), '.cache', 'node-gyp', process.versions.node, 'include', 'node', 'common.gypi'),
  ];
  if (!headers.some((h) => fs.existsSync(h))) {
    console.log(`  (skipped: no headers for node ${process.versions.node} beside it or in node-gyp's cache)`);
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netpoll-kqueue-script-'));
  try {
    fs.mkdirSync(path.join(dir, 'scripts'));
    fs.copyFileSync(path.join(root, 'scripts', 'kqueue.mjs'), path.join(dir, 'scripts', 'kqueue.mjs'));
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
    fs.writeFileSync(path.join(dir, 'fake.c'), fakeAddon);
    fs.writeFileSync(
      path.join(dir, 'binding.gyp'),
      JSON.stringify({
        variables: { 'kqueue_prefix%': '', 'kqueue_waker%': '' },
        targets: [{ target_name: 'netpoll', sources: ['fake.c'] }],
      }),
    );
    const prefix = path.join(dir, 'prefix');
    fs.mkdirSync(path.join(prefix, 'include', 'kqueue', 'sys'), { recursive: true });
    fs.writeFileSync(path.join(prefix, 'include', 'kqueue', 'sys', 'event.h'), '/* fake */\n');

    const env = { ...directEnv(), NETPOLL_KQUEUE_PREFIX: prefix };
    const r = spawnSync(process.execPath, [path.join(dir, 'scripts', 'kqueue.mjs'), 'build'], {
      cwd: dir,
      env,
      encoding: 'utf8',
      timeout: 170000,
    });
    const output = `${r.stdout}\n${r.stderr}`;
    assert.not.match(output, /ENOENT/, 'node-gyp was found');
    assert.is(r.status, 0, output.slice(-3000));
    assert.match(r.stdout, /built .*build-kqueue\/build\/Release\/netpoll\.node \(kqueue/);
    assert.ok(fs.existsSync(path.join(dir, 'build-kqueue', 'build', 'Release', 'netpoll.node')));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('`node scripts/kqueue.mjs build` without a prefix says what to set, with the usage', () => {
  if (process.platform !== 'linux') return;
  const env = directEnv();
  delete env.NETPOLL_KQUEUE_PREFIX;
  const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'kqueue.mjs'), 'build'], { env, encoding: 'utf8' });
  assert.is(r.status, 2);
  assert.match(r.stderr, /NETPOLL_KQUEUE_PREFIX is not set/);
  assert.match(r.stderr, /usage: /);
});

test.run();
