import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { DATASET_LABELS } from '../../shared/labels.ts';
import { DataError } from '../../compiler/data/errors.ts';
import { loadIdx, readIdxImages } from '../../compiler/data/idx.ts';
import { FIXTURES, tempDir } from './helpers.ts';

const FM = join(FIXTURES, 'fashion-mnist-100');
const IMAGES_GZ = join(FM, 't10k-images-idx3-ubyte.gz');
const LABELS_GZ = join(FM, 't10k-labels-idx1-ubyte.gz');
const reference = JSON.parse(readFileSync(join(FM, 'reference.json'), 'utf8')) as { labels: number[]; pixelSums: number[] };
const classNames = DATASET_LABELS['fashion-mnist'];
const rawImages = gunzipSync(readFileSync(IMAGES_GZ));
const rawLabels = gunzipSync(readFileSync(LABELS_GZ));
const dir = tempDir();

function write(name: string, bytes: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

function load(imagesPath: string, labelsPath: string) {
  return loadIdx({ imagesPath, labelsPath, name: 'fashion-mnist', split: 'test', classNames });
}

/** Runs the load and returns its DataError (failing the test when it succeeds). */
async function loadError(imagesPath: string, labelsPath: string): Promise<DataError> {
  const err = await load(imagesPath, labelsPath).then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(DataError);
  return err as DataError;
}

describe('IDX loader', () => {
  it('reads the first 100 Fashion-MNIST test images with the labels and pixels Python saw', async () => {
    const ds = await load(IMAGES_GZ, LABELS_GZ);
    expect([ds.count, ds.height, ds.width, ds.channels]).toEqual([100, 28, 28, 1]);
    expect(ds.images.length).toBe(100 * 28 * 28);
    expect(Array.from(ds.labels)).toEqual(reference.labels);
    const sums = Array.from({ length: 100 }, (_, i) => ds.images.subarray(i * 784, (i + 1) * 784).reduce((a, b) => a + b, 0));
    expect(sums).toEqual(reference.pixelSums);
    expect(ds.classNames[ds.labels[0]!]).toBe('Ankle boot');
  });

  it('gives identical results for raw and gzipped files', async () => {
    const gz = await load(IMAGES_GZ, LABELS_GZ);
    const raw = await load(write('raw-images', rawImages), write('raw-labels', rawLabels));
    expect(raw.images).toEqual(gz.images);
    expect(raw.labels).toEqual(gz.labels);
    // Mixed: gz images with raw labels, detected by content, not by extension.
    const mixed = await load(write('images-no-ext', readFileSync(IMAGES_GZ)), write('labels.gz', rawLabels));
    expect(mixed.images).toEqual(gz.images);
  });

  it('rejects a bad magic, naming the file and the expected magic', async () => {
    const bad = Uint8Array.from(rawImages);
    bad[3] = 0x04;
    const path = write('bad-magic', bad);
    const err = await loadError(path, LABELS_GZ);
    expect(err.file).toBe(path);
    expect(err.message).toContain(path);
    expect(err.message).toMatch(/bad magic 0x00000804, expected 0x00000803/);
  });

  it('says when the image and label files are swapped', async () => {
    const err = await loadError(LABELS_GZ, IMAGES_GZ);
    expect(err.message).toContain(LABELS_GZ);
    expect(err.message).toMatch(/looks like an IDX labels file.*swapped/);
  });

  it('reports a truncated raw file with expected and actual byte counts', async () => {
    const path = write('short-raw', rawImages.subarray(0, rawImages.length - 10));
    const err = await loadError(path, LABELS_GZ);
    expect(err.message).toContain(path);
    expect(err.message).toContain('truncated: header says 100×28×28 pixels = 78400 bytes, file has 78390');
  });

  it('reports a truncated gzipped file (short content) with byte counts', async () => {
    const path = write('short.gz', gzipSync(rawImages.subarray(0, 16 + 784 * 50)));
    const err = await loadError(path, LABELS_GZ);
    expect(err.message).toContain(`${path}: truncated: header says 100×28×28 pixels = 78400 bytes, file has 39200`);
  });

  it('reports a gzip stream cut off mid-way', async () => {
    const gz = readFileSync(IMAGES_GZ);
    const path = write('cut.gz', gz.subarray(0, gz.length >> 1));
    const err = await loadError(path, LABELS_GZ);
    expect(err.message).toContain(path);
    expect(err.message).toMatch(/gzip data is truncated or corrupt/);
  });

  it('reports a header too short to read', async () => {
    const path = write('tiny', rawImages.subarray(0, 9));
    const err = await loadError(path, LABELS_GZ);
    expect(err.message).toContain(`${path}: truncated: header needs 16 bytes, file has 9`);
  });

  it('rejects trailing bytes after the announced data', async () => {
    const path = write('long-labels', Buffer.concat([rawLabels, Buffer.from([1, 2, 3])]));
    const err = await loadError(IMAGES_GZ, path);
    expect(err.message).toContain(`${path}: 3 unexpected bytes after the 100 labels`);
  });

  it('rejects a label outside the class list, naming index and value', async () => {
    const bad = Uint8Array.from(rawLabels);
    bad[8 + 3] = 10;
    const path = write('label-10', bad);
    const err = await loadError(IMAGES_GZ, path);
    expect(err.message).toContain(`${path}: label 10 at index 3 is out of range: fashion-mnist has 10 classes (0–9)`);
  });

  it('rejects image and label files whose counts disagree', async () => {
    const fewer = Uint8Array.from(rawLabels.subarray(0, 8 + 99));
    new DataView(fewer.buffer).setUint32(4, 99);
    const path = write('labels-99', fewer);
    const err = await loadError(IMAGES_GZ, path);
    expect(err.message).toContain(`${path}: has 99 labels but ${IMAGES_GZ} has 100 images`);
  });

  it('refuses an absurd header before allocating for it', async () => {
    const bad = Uint8Array.from(rawImages);
    new DataView(bad.buffer).setUint32(4, 0xffffffff);
    const path = write('huge-count', bad);
    await expect(readIdxImages(path)).rejects.toThrow(/header claims 4294967295×28×28 = \d+ bytes.*corrupt/);
  });

  it('names a missing file, or a folder given as a file', async () => {
    const missing = join(dir, 'nope.gz');
    expect((await loadError(missing, LABELS_GZ)).message).toBe(`${missing}: file not found`);
    expect((await loadError(dir, LABELS_GZ)).message).toBe(`${dir}: is a folder, expected a file`);
  });
});
