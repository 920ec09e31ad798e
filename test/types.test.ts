// The types reject what they should: each fixture in test/types/ compiles cleanly with
// its @ts-expect-error lines, and without them each of those lines is an error.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';
import { typeCheck } from './typecheck.js';

const root = path.resolve(__dirname, '..', '..');
const fixtures = fs
  .readdirSync(path.join(root, 'test', 'types'))
  .filter((f) => f.endsWith('.ts') && !f.startsWith('.'))
  .map((f) => path.join(root, 'test', 'types', f));

/** The 1-based lines of `file`'s type errors. */
function errorLines(file: string): { line: number; text: string }[] {
  return typeCheck([file])
    .filter((d) => d.file !== undefined && path.resolve(d.file.fileName) === path.resolve(file))
    .map((d) => ({ line: d.file!.getLineAndCharacterOfPosition(d.start!).line + 1, text: ts.flattenDiagnosticMessageText(d.messageText, ' ') }));
}

test('there are type fixtures', () => {
  assert.ok(fixtures.length >= 2, fixtures.join(', '));
});

for (const fixture of fixtures) {
  const name = path.basename(fixture);
  const source = fs.readFileSync(fixture, 'utf8').split('\n');
  const expected = source.flatMap((l, i) => (/^\s*\/\/ @ts-expect-error/.test(l) ? [i + 1] : []));

  test(`${name}: the fixture has expectations to check`, () => {
    assert.ok(expected.length >= 6, `${expected.length} @ts-expect-error lines`);
  });

  test(`${name}: with its @ts-expect-error lines, the fixture compiles without an error`, () => {
    assert.equal(errorLines(fixture), []);
  });

  test(`${name}: without them, each line they marked is a type error, and no other line is`, () => {
    // Blank the directives (keeping line numbers): the line after each must now fail. The
    // copy sits beside the fixture, so that its relative imports resolve the same way.
    const stripped = path.join(path.dirname(fixture), `.stripped-${process.pid}.ts`);
    fs.writeFileSync(stripped, source.map((l) => (/^\s*\/\/ @ts-expect-error/.test(l) ? '' : l)).join('\n'));
    try {
      const errors = errorLines(stripped);
      const lines = [...new Set(errors.map((e) => e.line))].sort((a, b) => a - b);
      assert.equal(lines, expected.map((l) => l + 1), errors.map((e) => `${e.line}: ${e.text}`).join('\n'));
    } finally {
      fs.rmSync(stripped, { force: true });
    }
  });
}

test.run();
