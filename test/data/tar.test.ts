import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataError } from '../../compiler/data/errors.ts';
import { extractTar } from '../../compiler/data/tar.ts';
import { tempDir } from './helpers.ts';

const dir = tempDir();
const src = join(dir, 'src');
const longDir = `deep-${'x'.repeat(90)}`;
mkdirSync(join(src, 'top', longDir), { recursive: true });
const big = new Uint8Array(70_000).map((_, i) => (i * 31) & 0xff); // spans many 512-byte blocks, odd length
writeFileSync(join(src, 'top', 'big.bin'), big);
writeFileSync(join(src, 'top', 'small.txt'), 'hello\n');
writeFileSync(join(src, 'top', 'empty'), '');
writeFileSync(join(src, 'top', longDir, `${'y'.repeat(80)}.bin`), 'long name');
const longName = `top/${longDir}/${'y'.repeat(80)}.bin`;

/** Archives made by GNU tar in its own formats, so the reader is checked against another writer. */
function gnuTar(format: 'gnu' | 'pax' | 'ustar', gzip: boolean): string {
  const path = join(dir, `a-${format}.tar${gzip ? '.gz' : ''}`);
  // Sorted names keep the entry order fixed; ustar stores the 103-character path as prefix + name.
  execFileSync('tar', [`--format=${format}`, '--sort=name', gzip ? '-czf' : '-cf', path, '-C', src, 'top']);
  return path;
}

describe('tar reader', () => {
  for (const [format, gzip] of [['gnu', true], ['pax', false], ['ustar', true]] as const) {
    it(`extracts picked files from a GNU tar --format=${format}${gzip ? ' gzipped' : ''} archive`, async () => {
      const archive = gnuTar(format, gzip);
      const out = join(dir, `out-${format}`);
      mkdirSync(out);
      const rename: Record<string, string> = { 'top/big.bin': 'big.bin', 'top/small.txt': 'small.txt', 'top/empty': 'empty', [longName]: 'long.bin' };
      const extracted = await extractTar(archive, out, (name) => rename[name]);
      expect(readFileSync(join(out, 'big.bin'))).toEqual(Buffer.from(big));
      expect(readFileSync(join(out, 'small.txt'), 'utf8')).toBe('hello\n');
      expect(readFileSync(join(out, 'empty')).length).toBe(0);
      expect(extracted.get('top/big.bin')).toBe(70_000);
      expect(readFileSync(join(out, 'long.bin'), 'utf8')).toBe('long name');
      // Only the picked files, and no temp files left behind.
      expect(readdirSync(out).sort()).toEqual(['big.bin', 'empty', 'long.bin', 'small.txt']);
    });
  }

  it('rejects a header whose checksum does not match', async () => {
    const bytes = readFileSync(gnuTar('pax', false));
    const damaged = join(dir, 'damaged.tar');
    // Flip a byte in the first regular header's name (pax archives start with an 'x' header).
    bytes[1] = bytes[1]! ^ 0x20;
    writeFileSync(damaged, bytes);
    const err = await extractTar(damaged, dir, () => undefined).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect((err as Error).message).toMatch(new RegExp(`^${damaged}: corrupt tar header at byte 0 \\(checksum`));
  });

  it('rejects an archive cut off inside an entry, and leaves no partial file', async () => {
    const bytes = readFileSync(gnuTar('gnu', false));
    const cut = join(dir, 'cut.tar');
    writeFileSync(cut, bytes.subarray(0, 512 * 3 + 100));
    const out = join(dir, 'out-cut');
    mkdirSync(out);
    // Entries by name: top/, top/big.bin (70,000 bytes) ...: the cut lands inside big.bin.
    await expect(extractTar(cut, out, (name) => name.split('/').pop())).rejects.toThrow(`${cut}: truncated tar: entry "top/big.bin" needs 70000 bytes, the archive ends first`);
    expect(readdirSync(out).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});
