// The code in README.md and docs/guide.md is real code: every TypeScript block that imports
// 'netpoll' type-checks against src/, and every block preceded by
// `<!-- doctest: expect "…" "…" -->` runs and prints those lines, in that order.
// `<!-- doctest: skip … -->` exempts a block (it needs Electron); `<!-- doctest: typecheck … -->`
// only type-checks it (it needs hardware); `(epoll only)` in an expect directive runs the block
// only on the epoll backend (its output names epoll's event bits). `<!-- doctest: echo-server -->`
// runs a server block until it prints `listening on HOST:PORT`, sets clients that reset,
// abandon their replies, read slowly and half-close on it (test/clients.ts), checks that it
// is still serving, and stops it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ts from 'typescript';
import { Backend } from '../src/index.js';
import { survivesBadEchoClients } from './clients.js';
import { within } from './helpers.js';
import { typeCheck } from './typecheck.js';

const root = path.resolve(__dirname, '..', '..');
const documents = ['README.md', 'docs/guide.md', 'docs/socket.md'];

interface Block {
  readonly where: string; // file:line of the block's first code line
  readonly doc: string;
  readonly line: number;
  readonly code: string;
  readonly directive: string | undefined;
}

function blocksOf(doc: string): Block[] {
  const lines = fs.readFileSync(path.join(root, doc), 'utf8').split('\n');
  const blocks: Block[] = [];
  let pending: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const marker = /^<!-- doctest: (.*) -->$/.exec(lines[i]!);
    if (marker) {
      pending = marker[1];
      if (!/^```ts$/.test(lines[i + 1] ?? '')) throw new Error(`${doc}:${i + 1}: a doctest marker must be followed by a \`\`\`ts block`);
      continue;
    }
    if (lines[i] !== '```ts') continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && lines[end] !== '```') end++;
    blocks.push({ where: `${doc}:${start + 1}`, doc, line: start + 1, code: lines.slice(start, end).join('\n'), directive: pending });
    pending = undefined;
    i = end;
  }
  return blocks;
}

const blocks = documents.flatMap(blocksOf);
const programs = blocks.filter((b) => /from 'netpoll'/.test(b.code) && !b.directive?.startsWith('skip'));
const runnable = blocks.filter((b) => b.directive?.startsWith('expect'));
const servers = blocks.filter((b) => b.directive === 'echo-server');

/** The quoted strings of an `expect "a" "b"` directive. */
function expectedLines(directive: string): string[] {
  return [...directive.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
}

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'netpoll-doctest-'));
const fileOf = (b: Block): string => path.join(scratch, `${b.doc.replace(/[^a-z0-9]+/gi, '_')}_${b.line}.mts`);

test('the documents contain the examples this test expects to check', () => {
  assert.ok(programs.some((b) => b.doc === 'README.md'), 'README.md has a checked example');
  assert.ok(runnable.some((b) => b.doc === 'README.md'), 'README.md has a run example');
  assert.ok(runnable.filter((b) => b.doc === 'docs/guide.md').length >= 4, 'docs/guide.md has run examples');
  assert.ok(servers.some((b) => b.doc === 'docs/socket.md'), 'docs/socket.md has a server example run against bad clients');
  for (const b of runnable) assert.ok(expectedLines(b.directive!).length > 0, `${b.where}: expect lists no output`);
});

test('every example that imports netpoll type-checks against src/', () => {
  const index = path.join(root, 'src', 'index.js'); // node16 resolution maps it to index.ts
  const files = programs.map((b) => {
    const file = fileOf(b);
    const server = path.join(root, 'src', 'server.js');
    fs.writeFileSync(file, b.code.replaceAll("from 'netpoll'", `from ${JSON.stringify(index)}`).replaceAll("from 'netpoll/server'", `from ${JSON.stringify(server)}`));
    return file;
  });
  const problems = typeCheck(files).map((d) => {
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (d.file === undefined || d.start === undefined) return text;
    const { line } = d.file.getLineAndCharacterOfPosition(d.start);
    const block = programs[files.indexOf(path.normalize(d.file.fileName))];
    return block ? `${block.doc}:${block.line + line}: ${text}` : `${d.file.fileName}:${line + 1}: ${text}`;
  });
  assert.equal(problems, []);
});

/** The block compiled to a runnable .mjs file that imports the built package. */
function runnableFile(b: Block): string {
  const dist = path.join(root, 'dist', 'src', 'index.js');
  const js = ts.transpileModule(b.code.replaceAll("from 'netpoll'", `from ${JSON.stringify(dist)}`), {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext },
    fileName: 'example.mts',
  }).outputText;
  const file = fileOf(b).replace(/\.mts$/, '.mjs');
  fs.writeFileSync(file, js);
  return file;
}

for (const b of runnable) {
  test(`the example at ${b.where} runs and prints what the document says`, () => {
    if (b.directive!.includes('(epoll only)') && Backend !== 'epoll') return;
    const file = runnableFile(b);
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 20000 });
    assert.is(r.signal, null, `${b.where} timed out`);
    assert.is(r.status, 0, `${b.where} failed:\n${r.stderr}`);
    // The lines must appear in order; lines printed by concurrent code may interleave.
    const out = r.stdout.split('\n');
    let at = 0;
    for (const want of expectedLines(b.directive!)) {
      const found = out.indexOf(want, at);
      assert.ok(found >= 0, `${b.where}: expected the line ${JSON.stringify(want)} (in order) in:\n${r.stdout}`);
      at = found + 1;
    }
  });
}

for (const b of servers) {
  test(`the server at ${b.where} survives resets, abandoned replies, slow readers and half-closes, and keeps serving`, async () => {
    const child = spawn(process.execPath, [runnableFile(b)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    const exited = new Promise<string>((resolve) => child.on('exit', (code, signal) => resolve(`exited (${signal ?? code})`)));
    try {
      const port = await within(
        new Promise<number>((resolve, reject) => {
          child.stdout!.on('data', () => {
            const m = /listening on (?:\[[^\]]+\]|[\d.]+):(\d+)/.exec(out);
            if (m) resolve(Number(m[1]));
          });
          void exited.then((how) => reject(new Error(`${b.where} ${how} before listening:\n${out}${err}`)));
        }),
        10000,
        `${b.where} listening`,
      );
      const served = survivesBadEchoClients(port).then(
        () => 'served',
        (e: Error) => `failed its clients (${e.message})`,
      );
      const verdict = await Promise.race([served, exited]);
      if (verdict !== 'served') {
        // Clients fail first when the server dies under them: give its exit and stderr time to arrive.
        const how = await within(exited, 2000, 'the exit').catch(() => 'is still running');
        assert.unreachable(`${b.where} ${verdict} under bad clients, and ${how}:\n${err}`);
      }
      assert.is(child.exitCode, null, `${b.where} is still running`);
      assert.is(err, '', 'and printed no error');
    } finally {
      child.kill('SIGKILL');
    }
  });
}

// ---- links ----

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

function ignoredByGit(file: string): boolean {
  return spawnSync('git', ['check-ignore', '-q', file], { cwd: root }).status === 0;
}

function anchorsOf(file: string): Set<string> {
  const text = fs.readFileSync(file, 'utf8').replace(/^```[\s\S]*?^```/gm, '');
  return new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1]!)));
}

test('every relative link in README.md, docs/*.md and the examples\' READMEs points at a file of the repository, and every #anchor at a heading', () => {
  const docs = ['README.md', 'examples/electron/README.md', ...fs.readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  const dead: string[] = [];
  for (const doc of docs) {
    const text = fs.readFileSync(path.join(root, doc), 'utf8').replace(/^```[\s\S]*?^```/gm, '');
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/i.test(target!)) continue; // https:, mailto:
      const [file, anchor] = target!.split('#') as [string, string | undefined];
      const resolved = file === '' ? path.join(root, doc) : path.resolve(path.dirname(path.join(root, doc)), file);
      if (!fs.existsSync(resolved)) dead.push(`${doc}: ${target} (no such file)`);
      else if (ignoredByGit(resolved)) dead.push(`${doc}: ${target} (ignored by git: not in a fresh clone)`);
      else if (anchor !== undefined && resolved.endsWith('.md') && !anchorsOf(resolved).has(anchor)) dead.push(`${doc}: ${target} (no such heading)`);
    }
  }
  assert.equal(dead, []);
});

test('every Node.js floor the documents name ("Node.js ≥ x.y") is package.json\'s engines floor', () => {
  const engines = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
  const floor = /^>=\s*(\d+)\.(\d+)\.(\d+)$/.exec(engines);
  assert.ok(floor, `engines.node is a plain floor: ${engines}`);
  const docs = ['README.md', ...fs.readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  const wrong: string[] = [];
  let seen = 0;
  for (const doc of docs) {
    const lines = fs.readFileSync(path.join(root, doc), 'utf8').split('\n');
    lines.forEach((line, i) => {
      for (const m of line.matchAll(/Node(?:\.js)?\s*(?:≥|>=)\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?/g)) {
        seen++;
        const [, major, minor = '0', patch = '0'] = m;
        if (major !== floor[1] || minor !== floor[2] || patch !== floor[3]) wrong.push(`${doc}:${i + 1}: "${m[0]}" (engines: ${engines})`);
      }
    });
  }
  assert.ok(seen > 0, 'README.md names the Node.js floor');
  assert.equal(wrong, []);
});

test.after(() => fs.rmSync(scratch, { recursive: true, force: true }));

test.run();
