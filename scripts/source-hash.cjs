#!/usr/bin/env node
// Prints the sha256 of the native sources: every file under csrc/ plus binding.gyp.
// binding.gyp compiles it into the addon (NETPOLL_SOURCE_HASH) so that a prebuild
// can be checked against the sources it ships with (test/prebuilds.test.ts).
//
// The hash must be the same in a git checkout, a fresh clone on another machine and
// an unpacked npm tarball, so it depends on nothing but paths and text:
//   - files are visited in sorted order of their '/'-separated path from the package root;
//   - each file contributes its path, its byte length and its content, so that moving
//     bytes from one file to the next changes the hash;
//   - CRLF is read as LF (a checkout with core.autocrlf must not look like a change);
//   - dotfiles (editor swap files, .DS_Store) are skipped; mtimes and modes are never read.
//
//   node scripts/source-hash.cjs          the hash
//   node scripts/source-hash.cjs --list   the files it covers, one per line
//
// CommonJS and no dependencies: gyp runs it while configuring, before anything is installed.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

/** The package root: this file lives in <root>/scripts/. gyp may run us from anywhere. */
const root = path.resolve(__dirname, '..');

/** What the addon is built from; a directory means every file below it. */
const SOURCES = ['csrc', 'binding.gyp'];

function collect(rel, out) {
  const abs = path.join(root, ...rel.split('/'));
  const st = fs.statSync(abs);
  if (st.isDirectory()) {
    for (const name of fs.readdirSync(abs)) {
      if (name.startsWith('.')) continue;
      collect(`${rel}/${name}`, out);
    }
  } else if (st.isFile()) {
    out.push(rel);
  }
  return out;
}

function sourceFiles() {
  const files = [];
  for (const rel of SOURCES) collect(rel, files);
  // Plain code-unit order: the same on every platform and locale.
  return files.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function sourceHash() {
  const hash = crypto.createHash('sha256');
  for (const rel of sourceFiles()) {
    const text = fs.readFileSync(path.join(root, ...rel.split('/'))).toString('latin1').replace(/\r\n/g, '\n');
    const bytes = Buffer.from(text, 'latin1');
    hash.update(`${rel}\0${bytes.length}\0`);
    hash.update(bytes);
  }
  return hash.digest('hex');
}

module.exports = { sourceHash, sourceFiles, root };

if (require.main === module) {
  if (process.argv.includes('--list')) process.stdout.write(sourceFiles().join('\n') + '\n');
  else process.stdout.write(sourceHash() + '\n');
}
