/**
 * The import graph of the project's own source: layers import downwards only (shared/ knows
 * neither side; the edge app never loads the compiler), and no module reaches itself through
 * its imports, static or dynamic. Type-only imports vanish at run time, so the runtime graph
 * leaves them out; a cycle through them is still checked for, because it means two modules
 * each define what the other needs, and the layering no longer says which comes first.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : /\.(ts|tsx)$/.test(e.name) && !e.name.endsWith('.d.ts') ? [join(dir, e.name)] : [],
  );
}

/**
 * Relative imports of a file, as project paths: `import … from`, `export … from`, `import()`;
 * type-only ones only when `withTypes`.
 */
export function projectImports(file: string, text: string, withTypes = false): string[] {
  const specs: string[] = [];
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  for (const m of code.matchAll(/^\s*(import|export)\s+(type\s+)?([^;]*?)\s*from\s*'([^']+)'/gms)) {
    const braces = /^\{([^}]*)\}$/.exec(m[3]!.trim());
    const allTypes = braces !== null && braces[1]!.split(',').map((s) => s.trim()).filter(Boolean).every((s) => s.startsWith('type '));
    if (withTypes || (!m[2] && !allTypes)) specs.push(m[4]!);
  }
  for (const m of code.matchAll(/^\s*import\s+'([^']+)'/gm)) specs.push(m[1]!);
  for (const m of code.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)) specs.push(m[1]!);
  return specs.filter((s) => s.startsWith('.')).map((s) => relative(ROOT, resolve(ROOT, dirname(file), s)));
}

function graph(dirs: string[], withTypes = false): Map<string, string[]> {
  const files = dirs.flatMap(sources);
  return new Map(files.map((f) => [f, projectImports(f, readFileSync(join(ROOT, f), 'utf8'), withTypes)]));
}

function cycles(g: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string) => {
    state.set(f, 'open');
    stack.push(f);
    for (const to of g.get(f) ?? []) {
      if (state.get(to) === 'open') found.push([...stack.slice(stack.indexOf(to)), to]);
      else if (!state.has(to)) visit(to);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of g.keys()) if (!state.has(f)) visit(f);
  return found;
}

describe('import graph', () => {
  const g = graph(['compiler', 'edge', 'shared']);

  it('reads runtime imports and skips type-only ones', () => {
    const text = [
      "import { a } from './a.ts';",
      "import type { B } from './b.ts';",
      "import { type C, type D } from './c.ts';",
      "import { e, type E } from './e.ts';",
      "export { f } from './f.ts';",
      "export type { G } from './g.ts';",
      "const h = await import('./h.ts');",
      "import { readFile } from 'node:fs';",
      "// import { x } from './commented.ts';",
    ].join('\n');
    expect(projectImports('compiler/x/y.ts', text)).toEqual(['compiler/x/a.ts', 'compiler/x/e.ts', 'compiler/x/f.ts', 'compiler/x/h.ts']);
    expect(projectImports('compiler/x/y.ts', text, true)).toEqual(['compiler/x/a.ts', 'compiler/x/b.ts', 'compiler/x/c.ts', 'compiler/x/e.ts', 'compiler/x/f.ts', 'compiler/x/g.ts', 'compiler/x/h.ts']);
    expect(cycles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]]))).toEqual([['a', 'b', 'c', 'a']]);
  });

  it('has no cycles', () => {
    expect(g.size).toBeGreaterThan(50);
    expect(cycles(g).map((c) => c.join(' → '))).toEqual([]);
  });

  it('has no cycles through type-only imports either', () => {
    expect(cycles(graph(['compiler', 'edge', 'shared'], true)).map((c) => c.join(' → '))).toEqual([]);
  });

  it('the product imports neither the benchmarks nor the tests', () => {
    const product = graph(['compiler', 'edge', 'shared'], true);
    const crossing = [...product].flatMap(([from, tos]) => tos.filter((to) => to.startsWith('bench/') || to.startsWith('test/')).map((to) => `${from} → ${to}`));
    expect(crossing).toEqual([]);
  });

  it('shared/ imports neither the compiler nor the edge, and the edge does not import the compiler', () => {
    const crossing = [...g].flatMap(([from, tos]) => tos.filter((to) =>
      (from.startsWith('shared/') && !to.startsWith('shared/')) || (from.startsWith('edge/') && to.startsWith('compiler/'))).map((to) => `${from} → ${to}`));
    expect(crossing).toEqual([]);
  });
});
