/** scripts/serve-node.mjs runCached: a CommonJS file run through V8's code cache beside it. */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCached } from '../../scripts/serve-node.mjs';

const dir = mkdtempSync(join(tmpdir(), 'facet-codecache-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('runCached', () => {
  it('runs the file, writes its code cache on request, uses it next time, and replaces it when the source changes', () => {
    const file = join(dir, 'm.cjs');
    // Enough code that V8 has something to cache; the exports prove the file ran.
    const body = Array.from({ length: 200 }, (_, i) => `function f${i}(x) { return x * ${i} + ${i}; }`).join('\n');
    writeFileSync(file, `${body}\nexports.sum = (n) => { let s = 0; for (let i = 0; i < n; i++) s += f7(i); return s; };\nexports.file = __filename;\nexports.req = typeof require('node:path').join;`);
    const first = runCached(file);
    expect(first.cache).toBe('none');
    first.writeCache();
    expect((first.exports.sum as (n: number) => number)(3)).toBe(7 * 0 + 7 + 7 * 1 + 7 + 7 * 2 + 7);
    expect(first.exports.file).toBe(file);
    expect(first.exports.req).toBe('function');
    expect(readFileSync(`${file}.v8cache`).length).toBeGreaterThan(0);
    expect(runCached(file).cache).toBe('used');
    writeFileSync(file, `${body}\nexports.sum = () => -1;`);
    const changed = runCached(file);
    expect(changed.cache).toBe('rejected');
    expect((changed.exports.sum as () => number)()).toBe(-1);
    changed.writeCache();
    expect(runCached(file).cache).toBe('used');
  });

  it('runs without a cache when it cannot write one, leaving no temporary file', () => {
    const sub = join(dir, 'ro');
    const file = join(sub, 'm.cjs');
    rmSync(sub, { recursive: true, force: true });
    mkdirSync(sub);
    writeFileSync(file, 'exports.ok = true;');
    // A cache path that is a directory cannot be read as a file nor renamed onto.
    mkdirSync(`${file}.v8cache`);
    const run = runCached(file);
    expect(run.exports.ok).toBe(true);
    expect(run.cache).toBe('none');
    run.writeCache();
    // Nor does it leave its temporary file behind.
    expect(readdirSync(sub).sort()).toEqual(['m.cjs', 'm.cjs.v8cache']);
    expect(existsSync(`${file}.v8cache`)).toBe(true);
  });
});
