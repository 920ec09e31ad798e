// The modules of src/ import each other one way: no cycle, not even through `import type`
// (a type-only cycle still ties two modules' ideas together, and turns into a run-time
// cycle the day someone needs a value across it).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ts from 'typescript';

const root = path.resolve(__dirname, '..', '..');
const src = path.join(root, 'src');

/** Every .ts file under `dir`, recursively. */
function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** The files under `within` (src/) that `file` imports or re-exports from, value or type, static or `import()`. */
export function importsOf(file: string, within = src): string[] {
  const sf = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const specifiers: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      specifiers.push(node.moduleSpecifier.text);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference) && ts.isStringLiteral(node.moduleReference.expression)) {
      specifiers.push(node.moduleReference.expression.text);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      specifiers.push(node.argument.literal.text);
    } else if (ts.isCallExpression(node) && (node.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(node.expression) && node.expression.text === 'require'))) {
      const [arg] = node.arguments;
      if (arg !== undefined && ts.isStringLiteralLike(arg)) specifiers.push(arg.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  const out: string[] = [];
  for (const spec of specifiers) {
    if (!spec.startsWith('.')) continue;
    const base = path.resolve(path.dirname(file), spec).replace(/\.(m|c)?js$/, '');
    for (const candidate of [`${base}.ts`, path.join(base, 'index.ts')]) {
      if (candidate.startsWith(within + path.sep) && fs.existsSync(candidate)) {
        out.push(candidate);
        break;
      }
    }
  }
  return [...new Set(out)];
}

/** Every cycle of the import graph, each as the files around it (the first repeated at the end). */
export function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 'open');
    stack.push(f);
    for (const g of graph.get(f) ?? []) {
      if (state.get(g) === 'open') found.push([...stack.slice(stack.indexOf(g)), g]);
      else if (!state.has(g)) visit(g);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f);
  return found;
}

const rel = (f: string): string => path.relative(root, f);

test('the import scan sees type imports, re-exports and import() types, and finds a planted cycle', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netpoll-cycle-'));
  try {
    fs.writeFileSync(path.join(dir, 'a.ts'), "import type { B } from './b.js';\nexport type A = B;\n");
    fs.writeFileSync(path.join(dir, 'b.ts'), "export type B = import('./c.js').C;\n");
    fs.writeFileSync(path.join(dir, 'c.ts'), "export { type A as C } from './a.js';\n");
    const graph = new Map(sources(dir).map((f) => [f, importsOf(f, dir)] as const));
    assert.equal(cycles(graph).map((c) => c.map((f) => path.basename(f))), [['a.ts', 'b.ts', 'c.ts', 'a.ts']]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('no import cycle in src/, type imports included', () => {
  const files = sources(src);
  assert.ok(files.length >= 8, `${files.length} files`);
  const graph = new Map(files.map((f) => [f, importsOf(f)] as const));
  assert.ok((graph.get(path.join(src, 'index.ts')) ?? []).length >= 5, 'index.ts re-exports are seen');
  const found = cycles(graph).map((c) => c.map(rel).join(' -> '));
  assert.equal(found, [], `import cycles:\n${found.join('\n')}`);
});

test.run();
