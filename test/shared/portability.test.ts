/** shared/ runs in Workers, Deno, Bun and browsers: no Node-only modules or globals there. */
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('../../shared/', import.meta.url).pathname;

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tsFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Source without comments and string contents' comment-like text, so prose does not trip the scan. */
function code(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

const NODE_GLOBALS = /\b(Buffer|process|__dirname|__filename|require|global|setImmediate)\b/;

describe('shared/ portability', () => {
  const files = tsFiles(root);

  it('finds the shared sources', () => {
    expect(files.map((f) => relative(root, f))).toEqual(expect.arrayContaining(['rng.ts', 'degrade.ts', 'preprocess.ts', 'manifest.ts']));
  });

  it('imports only relative .ts files and zod', () => {
    const bad: string[] = [];
    for (const f of files) {
      for (const m of code(readFileSync(f, 'utf8')).matchAll(/(?:import|export)\s[^;]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
        const spec = m[1] ?? m[2]!;
        if (!(spec === 'zod' || (spec.startsWith('.') && spec.endsWith('.ts')))) bad.push(`${relative(root, f)}: ${spec}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('uses no Node globals', () => {
    const bad: string[] = [];
    for (const f of files) {
      code(readFileSync(f, 'utf8')).split('\n').forEach((line, i) => {
        if (NODE_GLOBALS.test(line)) bad.push(`${relative(root, f)}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(bad).toEqual([]);
  });

  it('the scanner itself catches violations', () => {
    expect(NODE_GLOBALS.test(code('const b = Buffer.from(x);'))).toBe(true);
    expect(NODE_GLOBALS.test(code('// Buffer is not used here'))).toBe(false);
    expect(/from\s+['"]node:/.test(code("import { readFileSync } from 'node:fs';"))).toBe(true);
  });
});
