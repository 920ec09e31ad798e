#!/usr/bin/env node
// Runs each compiled test file (dist/test/**/*.test.js) in its own process, so a
// crash in one file is reported as a failure instead of ending the run, and sums
// uvu's per-file totals into the one line CI reads: "N passed, N failed".
//
//   node scripts/run-tests.mjs [filter...]   only files whose path contains a filter
//   NETPOLL_TEST_TIMEOUT=ms                  per-file limit (default 180000)
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const testDir = join(root, 'dist', 'test');
const filters = process.argv.slice(2);
const timeoutMs = Number(process.env.NETPOLL_TEST_TIMEOUT ?? 180000);

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');

function runFile(file) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--expose-gc', file], {
      cwd: root,
      env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => { output += d; process.stdout.write(d); });
    child.stderr.on('data', (d) => { output += d; process.stderr.write(d); });
    const timer = setTimeout(() => { output += `\n[run-tests] timed out after ${timeoutMs} ms\n`; child.kill('SIGKILL'); }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const text = strip(output);
      const num = (label) => { const m = text.match(new RegExp(`${label}:\\s+(\\d+)`, 'g')); return m ? m.map((x) => Number(x.split(/:\s+/)[1])).reduce((a, b) => a + b, 0) : undefined; };
      const total = num('Total') ?? 0;
      const passed = num('Passed') ?? 0;
      const skipped = num('Skipped') ?? 0;
      let failed = total - passed - skipped;
      // A crash, a timeout or an unhandled rejection after the summary still fails the file.
      if ((code !== 0 || signal) && failed === 0) failed = 1;
      // A file that died (a signal, or an exit before uvu's summary) is told again at the
      // end with its last lines: a CI log cut to its tail still shows why.
      const died = signal !== null || (code !== 0 && num('Total') === undefined);
      const tail = died ? text.trimEnd().split('\n').slice(-20).join('\n') : '';
      resolve({ passed, failed, skipped, code, signal, tail });
    });
  });
}

const files = findTests(testDir).filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
let passed = 0, failed = 0, skipped = 0;
const failures = [];
const deaths = [];
const started = Date.now();
for (const file of files) {
  const name = relative(root, file);
  process.stdout.write(`\n# ${name}\n`);
  const r = await runFile(file);
  passed += r.passed; failed += r.failed; skipped += r.skipped;
  if (r.failed > 0) failures.push(`${name} (${r.failed} failed${r.signal ? `, ${r.signal}` : r.code ? `, exit ${r.code}` : ''})`);
  if (r.tail) deaths.push(`[run-tests] ${name} died (${r.signal ?? `exit ${r.code}`}); its last lines:\n${r.tail}`);
}
process.stdout.write(`\n${files.length} files in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
for (const d of deaths) process.stdout.write(`${d}\n`);
if (failures.length) process.stdout.write(`failing: ${failures.join('; ')}\n`);
process.stdout.write(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
process.exitCode = failed > 0 || files.length === 0 ? 1 : 0;
