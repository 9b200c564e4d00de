import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DATASET_LABELS } from '../../shared/labels.ts';
import { loadCifar } from '../../compiler/data/cifar.ts';
import { DataError } from '../../compiler/data/errors.ts';
import { loadDatasetWithSource } from '../../compiler/data/registry.ts';
import { cifarBatch, cifarPixel, tempDir } from './helpers.ts';

const dir = tempDir();
const labels10 = DATASET_LABELS.cifar10;

function write(name: string, bytes: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

// A synthetic two-batch CIFAR-10 set: 3 + 2 records, labels chosen to hit 0 and 9.
const batchA = write('a.bin', cifarBatch('cifar10', [3, 0, 9], 0));
const batchB = write('b.bin', cifarBatch('cifar10', [7, 1], 3));

describe('CIFAR binary loader', () => {
  it('concatenates batches in order and converts CHW planes to HWC pixels', async () => {
    const ds = await loadCifar([batchA, batchB], { variant: 'cifar10', split: 'train', classNames: labels10 });
    expect([ds.count, ds.height, ds.width, ds.channels]).toEqual([5, 32, 32, 3]);
    expect(Array.from(ds.labels)).toEqual([3, 0, 9, 7, 1]);
    let mismatches = 0;
    for (let r = 0; r < 5; r++)
      for (let y = 0; y < 32; y++)
        for (let x = 0; x < 32; x++)
          for (let c = 0; c < 3; c++)
            if (ds.images[((r * 32 + y) * 32 + x) * 3 + c] !== cifarPixel(r, c, y, x)) mismatches++;
    expect(mismatches).toBe(0);
    // Spot check one pixel by hand: record 4, (y=2, x=1) is R,G,B at HWC offset.
    const at = ((4 * 32 + 2) * 32 + 1) * 3;
    expect(Array.from(ds.images.subarray(at, at + 3))).toEqual([cifarPixel(4, 0, 2, 1), cifarPixel(4, 1, 2, 1), cifarPixel(4, 2, 2, 1)]);
  });

  it('uses the fine label of CIFAR-100 records', async () => {
    const path = write('train100.bin', cifarBatch('cifar100', [0, 42, 99]));
    const ds = await loadCifar([path], { variant: 'cifar100', split: 'train', classNames: DATASET_LABELS.cifar100 });
    expect(Array.from(ds.labels)).toEqual([0, 42, 99]);
    expect(ds.images[3 * (32 * 32 + 0)]).toBe(cifarPixel(1, 0, 0, 0));
  });

  it('rejects a truncated batch, saying how many bytes are left over', async () => {
    const full = cifarBatch('cifar10', [1, 2]);
    const path = write('cut.bin', full.subarray(0, full.length - 100));
    const err = await loadCifar([batchA, path], { variant: 'cifar10', split: 'train', classNames: labels10 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect((err as Error).message).toContain(`${path}: truncated or not a cifar10 batch: 6046 bytes is not a whole number of 3073-byte records (1 records and 2973 bytes left over)`);
  });

  it('hints when a CIFAR-100 file is loaded as CIFAR-10', async () => {
    const path = write('wrong.bin', cifarBatch('cifar100', [5, 6, 7]));
    await expect(loadCifar([path], { variant: 'cifar10', split: 'train', classNames: labels10 }))
      .rejects.toThrow(/its size fits cifar100 records; wrong data set\?/);
  });

  it('rejects a label outside the class list, naming file and record', async () => {
    const path = write('badlabel.bin', cifarBatch('cifar10', [1, 10, 2]));
    await expect(loadCifar([path], { variant: 'cifar10', split: 'test', classNames: labels10 }))
      .rejects.toThrow(`${path}: label 10 in record 1 is out of range: cifar10 has 10 classes (0–9)`);
  });

  it('rejects an empty or missing batch file', async () => {
    const empty = write('empty.bin', new Uint8Array(0));
    await expect(loadCifar([empty], { variant: 'cifar10', split: 'test', classNames: labels10 })).rejects.toThrow(`${empty}: file is empty`);
    const missing = join(dir, 'missing.bin');
    await expect(loadCifar([missing], { variant: 'cifar10', split: 'test', classNames: labels10 })).rejects.toThrow(`${missing}: file not found`);
  });

  it('is found by the registry inside the tarball\'s cifar-10-batches-bin folder', async () => {
    const root = join(dir, 'registry');
    const inner = join(root, 'cifar-10-batches-bin');
    mkdirSync(inner, { recursive: true });
    for (let b = 1; b <= 5; b++) writeFileSync(join(inner, `data_batch_${b}.bin`), cifarBatch('cifar10', [b, b + 1], 2 * (b - 1)));
    writeFileSync(join(inner, 'test_batch.bin'), cifarBatch('cifar10', [4]));
    const train = await loadDatasetWithSource({ name: 'cifar10', split: 'train', dir: root });
    expect(train.folder).toBe(inner);
    expect(train.data.count).toBe(10);
    expect(Array.from(train.data.labels)).toEqual([1, 2, 2, 3, 3, 4, 4, 5, 5, 6]);
    expect(train.data.classNames).toEqual(labels10);
    expect(train.data.images[9 * 3072]).toBe(cifarPixel(9, 0, 0, 0));
    const test = await loadDatasetWithSource({ name: 'cifar10', split: 'test', dir: root });
    expect(Array.from(test.data.labels)).toEqual([4]);
  });
});
