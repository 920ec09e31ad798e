// The TypeScript program the type tests build: the compiler options a user of the
// package would have (strict, Node16 modules, @types/node), no output. Apart from
// test/helpers.ts because loading the compiler takes a while, and only these need it.
import * as path from 'node:path';
import * as ts from 'typescript';

const root = path.resolve(__dirname, '..', '..');

/** `files` type-checked as a strict Node16 program; its diagnostics, every file's. */
export function typeCheck(files: readonly string[]): readonly ts.Diagnostic[] {
  const program = ts.createProgram(files, {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.Node16,
    moduleResolution: ts.ModuleResolutionKind.Node16,
    lib: ['lib.es2022.d.ts', 'lib.esnext.disposable.d.ts'],
    types: ['node'],
    typeRoots: [path.join(root, 'node_modules', '@types')],
    strict: true,
    noEmit: true,
    skipLibCheck: true,
  });
  return ts.getPreEmitDiagnostics(program);
}
