import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { encode as encodePng } from 'fast-png';
import { describe, expect, it } from 'vitest';
import { DataError } from '../../compiler/data/errors.ts';
import { loadImageFolder } from '../../compiler/data/folder.ts';
import { loadDatasetWithSource } from '../../compiler/data/registry.ts';
import { FIXTURES, tempDir } from './helpers.ts';

/** PIL's decoded pixels of every fixture image (see scripts/make-data-fixtures.py). */
const expected = JSON.parse(readFileSync(join(FIXTURES, 'expected.json'), 'utf8')) as Record<string, { channels: number; pixels: number[]; gray5x5?: number[] }>;
const SHAPES = join(FIXTURES, 'shapes');
const GRAY = join(FIXTURES, 'gray');
const dir = tempDir();

/** Largest absolute difference between our decode of image `i` and PIL's. */
function maxDiff(images: Uint8Array, i: number, reference: number[]): number {
  const n = reference.length;
  let worst = 0;
  for (let k = 0; k < n; k++) worst = Math.max(worst, Math.abs(images[i * n + k]! - reference[k]!));
  return worst;
}

function checkAgainstPil(images: Uint8Array, files: string[], variant: 'pixels' | 'gray5x5' = 'pixels'): void {
  files.forEach((file, i) => {
    const ref = { pixels: expected[relative(FIXTURES, file)]![variant]! };
    // PNG is lossless: exact. JPEG decoders may round the IDCT differently: within 3 levels.
    const tolerance = file.endsWith('.jpg') ? 3 : 0;
    expect(maxDiff(images, i, ref.pixels), file).toBeLessThanOrEqual(tolerance);
  });
}

async function folderError(root: string): Promise<DataError> {
  const err = await loadImageFolder(root).then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(DataError);
  return err as DataError;
}

describe('image folder loader', () => {
  it('loads RGB PNG, palette PNG and JPEG with sorted classes, matching PIL', async () => {
    const root = join(SHAPES, 'train');
    const ds = await loadImageFolder(root, { name: 'shapes', split: 'train' });
    expect(ds.classNames).toEqual(['cross', 'disk', 'ring']);
    expect([ds.count, ds.height, ds.width, ds.channels]).toEqual([9, 8, 8, 3]);
    expect(Array.from(ds.labels)).toEqual([0, 0, 0, 1, 1, 1, 2, 2, 2]);
    const files = ds.classNames.flatMap((c) => ['a.png', 'b.jpg', 'c.png'].map((f) => join(root, c, f)));
    checkAgainstPil(ds.images, files);
  });

  it('keeps a grayscale folder 1-channel: 8-bit, 16-bit and 1-bit PNG and gray JPEG', async () => {
    const ds = await loadImageFolder(GRAY);
    expect(ds.classNames).toEqual(['dark', 'light']);
    expect([ds.count, ds.height, ds.width, ds.channels]).toEqual([4, 6, 6, 1]);
    expect(Array.from(ds.labels)).toEqual([0, 0, 1, 1]);
    checkAgainstPil(ds.images, ['dark/g16.png', 'dark/g8.png', 'light/g1.png', 'light/gj.jpg'].map((f) => join(GRAY, f)));
  });

  it('converts to gray and resizes to a target size as PIL does', async () => {
    const root = join(SHAPES, 'train');
    const ds = await loadImageFolder(root, { size: { width: 5, height: 5 }, channels: 1 });
    expect([ds.count, ds.height, ds.width, ds.channels]).toEqual([9, 5, 5, 1]);
    const files = ds.classNames.flatMap((c) => ['a.png', 'b.jpg', 'c.png'].map((f) => join(root, c, f)));
    checkAgainstPil(ds.images, files, 'gray5x5');
  });

  it('makes a mixed gray/RGB folder RGB, replicating gray pixels', async () => {
    const root = join(dir, 'mixed');
    cpSync(join(SHAPES, 'train'), root, { recursive: true });
    cpSync(join(GRAY, 'dark', 'g8.png'), join(root, 'disk', 'gray.png'));
    const ds = await loadImageFolder(root, { size: { width: 8, height: 8 } });
    expect(ds.channels).toBe(3);
    const i = ds.classNames.indexOf('disk') * 3 + 3; // after a.png, b.jpg, c.png
    expect(ds.labels[i]).toBe(1);
    // g8.png is 6×6; at 8×8 it is resampled, but every pixel must stay gray (R = G = B).
    const pixels = ds.images.subarray(i * 192, (i + 1) * 192);
    for (let p = 0; p < 64; p++) expect(new Set(pixels.subarray(3 * p, 3 * p + 3)).size).toBe(1);
  });

  it('composites alpha onto black: RGBA and 16-bit gray+alpha PNGs', async () => {
    const root = join(dir, 'alpha');
    mkdirSync(join(root, 'rgba'), { recursive: true });
    mkdirSync(join(root, 'la'), { recursive: true });
    const rgba = new Uint8Array([200, 100, 50, 255, 200, 100, 50, 128, 200, 100, 50, 0, 10, 20, 30, 64]);
    writeFileSync(join(root, 'rgba', 'x.png'), encodePng({ width: 2, height: 2, channels: 4, data: rgba }));
    const la16 = new Uint16Array([0xc8ff, 0xffff, 0xc800, 0x8000, 0x6400, 0x0000, 0xffff, 0x4000]);
    writeFileSync(join(root, 'la', 'y.png'), encodePng({ width: 2, height: 2, channels: 2, depth: 16, data: la16 }));
    const ds = await loadImageFolder(root);
    expect(ds.classNames).toEqual(['la', 'rgba']);
    expect(ds.channels).toBe(3);
    const over = (v: number, a: number) => Math.floor((v * a + 127) / 255);
    // la: gray (high byte) 200/200/100/255 with alpha 255/128/0/64, then gray → RGB.
    expect(Array.from(ds.images.subarray(0, 12))).toEqual([over(200, 255), over(200, 128), over(100, 0), over(255, 64)].flatMap((g) => [g, g, g]));
    expect(Array.from(ds.images.subarray(12, 24))).toEqual([0, 1, 2, 3].flatMap((p) => [0, 1, 2].map((c) => over(rgba[4 * p + c]!, rgba[4 * p + 3]!))));
    const gray = await loadImageFolder(join(root), { channels: 1 });
    expect(Array.from(gray.images.subarray(0, 4))).toEqual([over(200, 255), over(200, 128), over(100, 0), over(255, 64)]);
  });

  it('refuses an image whose header claims too many pixels, before decoding it', async () => {
    const root = join(dir, 'huge');
    cpSync(join(SHAPES, 'train'), root, { recursive: true });
    const jpg = join(root, 'ring', 'b.jpg');
    const bytes = readFileSync(jpg);
    // Patch the baseline frame header (FFC0): height and width to 60000.
    const sof = bytes.indexOf(Buffer.from([0xff, 0xc0]));
    bytes.writeUInt16BE(60000, sof + 5);
    bytes.writeUInt16BE(60000, sof + 7);
    writeFileSync(jpg, bytes);
    const err = await folderError(root);
    expect(err.file).toBe(jpg);
    expect(err.message).toMatch(/cannot decode image: image is 60000×60000 = 3600000000 pixels, over the \d+ limit/);
  });

  it('uses <dir>/train and <dir>/test through the registry', async () => {
    const train = await loadDatasetWithSource({ name: 'folder', split: 'train', dir: SHAPES });
    const test = await loadDatasetWithSource({ name: 'folder', split: 'test', dir: SHAPES });
    expect(train.folder).toBe(join(SHAPES, 'train'));
    expect([train.data.count, test.data.count]).toEqual([9, 3]);
    expect(test.data.classNames).toEqual(train.data.classNames);
    await expect(loadDatasetWithSource({ name: 'folder', split: 'test', dir: GRAY }))
      .rejects.toThrow(`${GRAY}: no test split (expected ${join(GRAY, 'test')}/<class>/*.png|jpg)`);
    await expect(loadDatasetWithSource({ name: 'folder', split: 'train' })).rejects.toThrow(/needs a folder: pass dir/);
  });

  it('rejects an empty class folder, naming it', async () => {
    const root = join(dir, 'empty-class');
    cpSync(join(SHAPES, 'train'), root, { recursive: true });
    mkdirSync(join(root, 'blank'));
    writeFileSync(join(root, 'blank', 'notes.txt'), 'not an image');
    const err = await folderError(root);
    expect(err.file).toBe(join(root, 'blank'));
    expect(err.message).toContain('class folder "blank" has no .png/.jpg/.jpeg images');
  });

  it('rejects an unreadable image, naming the file', async () => {
    const root = join(dir, 'corrupt');
    cpSync(join(SHAPES, 'train'), root, { recursive: true });
    const broken = join(root, 'disk', 'b.jpg');
    writeFileSync(broken, readFileSync(broken).subarray(0, 40));
    const err = await folderError(root);
    expect(err.file).toBe(broken);
    expect(err.message).toMatch(/cannot decode image/);
    const notImage = join(root, 'disk', 'b.jpg');
    writeFileSync(notImage, 'hello');
    expect((await folderError(root)).message).toBe(`${notImage}: cannot decode image: not a PNG or JPEG file (unrecognised signature)`);
  });

  it('rejects images of different sizes when no target size is given', async () => {
    const root = join(dir, 'sizes');
    cpSync(join(SHAPES, 'train'), root, { recursive: true });
    const odd = join(root, 'ring', 'z.png');
    writeFileSync(odd, encodePng({ width: 5, height: 4, channels: 3, data: new Uint8Array(60) }));
    const err = await folderError(root);
    expect(err.file).toBe(odd);
    expect(err.message).toContain(`is 5×4 but ${join(root, 'cross', 'a.png')} is 8×8; all images must have the same size unless a target size is given`);
  });

  it('rejects a folder without class folders, and a missing folder', async () => {
    const root = join(dir, 'flat');
    mkdirSync(root);
    writeFileSync(join(root, 'x.png'), encodePng({ width: 2, height: 2, channels: 1, data: new Uint8Array(4) }));
    expect((await folderError(root)).message).toContain('no class folders found');
    expect((await folderError(join(dir, 'absent'))).message).toBe(`${join(dir, 'absent')}: folder not found`);
  });
});
