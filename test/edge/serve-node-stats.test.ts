/**
 * scripts/serve-node.mjs decides bundle freshness from each input's size and mtime when the
 * inputs record has them (no hashing on the start path), and falls back to the sha256 for a
 * file whose stat changed.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inputsFile, type BundleInputs } from '../../scripts/build-edge.ts';
import { staleReason } from '../../scripts/serve-node.mjs';

const dir = mkdtempSync(join(tmpdir(), 'facet-stats-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const bundle = join(dir, 'dist', 'b.mjs');
const BUILT = new Date(Math.floor(Date.now() / 1000) * 1000 - 3_600_000);
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

function setup(files: Record<string, string>): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'dist'), { recursive: true });
  mkdirSync(join(dir, 'src'));
  for (const [p, text] of Object.entries(files)) {
    writeFileSync(join(dir, p), text);
    // Whole seconds, so that a test can put the same mtime back exactly.
    utimesSync(join(dir, p), BUILT, BUILT);
  }
  writeFileSync(bundle, '// bundle');
  const record: BundleInputs = {
    schema: 'facet.edge-bundle-inputs/1',
    inputs: Object.fromEntries(Object.keys(files).map((p) => [p, sha256(join(dir, p))])),
    stats: Object.fromEntries(Object.keys(files).map((p) => [p, [statSync(join(dir, p)).size, statSync(join(dir, p)).mtimeMs] as [number, number]])),
  };
  writeFileSync(inputsFile(bundle), JSON.stringify(record));
}

describe('bundle freshness with recorded stats', () => {
  it('trusts an unchanged size and mtime without reading the file', () => {
    setup({ 'src/a.ts': 'export const a = 1;' });
    const file = join(dir, 'src/a.ts');
    // Same size, other content, mtime put back: only the stat is looked at, so still fresh.
    writeFileSync(file, 'export const a = 2;');
    utimesSync(file, BUILT, BUILT);
    expect(staleReason(bundle, dir)).toBeNull();
  });

  it('hashes a file whose mtime changed: fresh when the content is the same, stale when not', () => {
    setup({ 'src/a.ts': 'export const a = 1;', 'src/b.ts': 'export const b = 2;' });
    const later = new Date(Date.now() + 60_000);
    writeFileSync(join(dir, 'src/a.ts'), 'export const a = 1;');
    utimesSync(join(dir, 'src/a.ts'), later, later);
    expect(staleReason(bundle, dir)).toBeNull();
    writeFileSync(join(dir, 'src/b.ts'), 'export const b = 3;');
    utimesSync(join(dir, 'src/b.ts'), later, later);
    expect(staleReason(bundle, dir)).toBe('src/b.ts changed');
  });

  it('sees a file grown or removed', () => {
    setup({ 'src/a.ts': 'export const a = 1;' });
    writeFileSync(join(dir, 'src/a.ts'), 'export const a = 10;');
    expect(staleReason(bundle, dir)).toBe('src/a.ts changed');
    rmSync(join(dir, 'src/a.ts'));
    expect(staleReason(bundle, dir)).toBe('src/a.ts is gone');
  });
});
