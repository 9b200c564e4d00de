/**
 * CIFAR binary batches. CIFAR-10: records of 1 label byte + 3072 pixel bytes; CIFAR-100:
 * coarse label + fine label + 3072 pixel bytes (we keep the fine label). Pixels are stored
 * channel-planar (1024 R, 1024 G, 1024 B, each 32×32 row-major); we convert to HWC.
 */
import { stat } from 'node:fs/promises';
import { ByteReader } from './byte-reader.ts';
import { DataError } from './errors.ts';
import type { LabelledImages } from './types.ts';

export type CifarVariant = 'cifar10' | 'cifar100';

const SIDE = 32;
const PLANE = SIDE * SIDE;
const PIXEL_BYTES = 3 * PLANE;
/** Records converted per read: big enough to amortise the async read, small enough to stay in cache. */
const RECORDS_PER_READ = 512;

export const CIFAR_FILES: Record<CifarVariant, { train: string[]; test: string[] }> = {
  cifar10: {
    train: ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'],
    test: ['test_batch.bin'],
  },
  cifar100: { train: ['train.bin'], test: ['test.bin'] },
};

export function cifarRecordBytes(variant: CifarVariant): number {
  return (variant === 'cifar10' ? 1 : 2) + PIXEL_BYTES;
}

/** Loads and concatenates batch files, in the order given. */
export async function loadCifar(
  paths: string[],
  { variant, name = variant, split, classNames }: { variant: CifarVariant; name?: string; split: string; classNames: string[] },
): Promise<LabelledImages> {
  const recordBytes = cifarRecordBytes(variant);
  const labelOffset = variant === 'cifar10' ? 0 : 1;
  const counts: number[] = [];
  for (const path of paths) counts.push(await recordCount(path, recordBytes, variant));
  const total = counts.reduce((a, b) => a + b, 0);
  const images = new Uint8Array(total * PIXEL_BYTES);
  const labels = new Uint16Array(total);
  const chunk = new Uint8Array(RECORDS_PER_READ * recordBytes);

  let index = 0;
  for (const [fileIndex, path] of paths.entries()) {
    const reader = await ByteReader.open(path);
    try {
      for (let left = counts[fileIndex]!; left > 0;) {
        const records = Math.min(left, RECORDS_PER_READ);
        const want = records * recordBytes;
        const got = await reader.fill(chunk.subarray(0, want));
        if (got < want) throw new DataError(path, `truncated while reading: expected ${counts[fileIndex]! * recordBytes} bytes, got ${reader.position}`);
        for (let r = 0; r < records; r++, index++) {
          const base = r * recordBytes;
          const label = chunk[base + labelOffset]!;
          if (label >= classNames.length) {
            const recordIndex = index - counts.slice(0, fileIndex).reduce((a, b) => a + b, 0);
            throw new DataError(path, `label ${label} in record ${recordIndex} is out of range: ${name} has ${classNames.length} classes (0–${classNames.length - 1})`);
          }
          labels[index] = label;
          planarToInterleaved(chunk, base + recordBytes - PIXEL_BYTES, images, index * PIXEL_BYTES);
        }
        left -= records;
      }
    } finally {
      await reader.close();
    }
  }
  return { name, split, count: total, height: SIDE, width: SIDE, channels: 3, images, labels, classNames: [...classNames] };
}

/** Number of whole records in a batch file; a size that is not a whole multiple means truncation. */
async function recordCount(path: string, recordBytes: number, variant: CifarVariant): Promise<number> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    throw new DataError(path, 'file not found');
  }
  if (size === 0) throw new DataError(path, 'file is empty');
  if (size % recordBytes !== 0) {
    const other = variant === 'cifar10' ? 'cifar100' : 'cifar10';
    const hint = size % cifarRecordBytes(other) === 0 ? ` (its size fits ${other} records; wrong data set?)` : '';
    throw new DataError(path, `truncated or not a ${variant} batch: ${size} bytes is not a whole number of ${recordBytes}-byte records (${Math.floor(size / recordBytes)} records and ${size % recordBytes} bytes left over)${hint}`);
  }
  return size / recordBytes;
}

/** CHW planes (R, G, B) at `src[from..]` → HWC pixels at `dst[to..]`. */
function planarToInterleaved(src: Uint8Array, from: number, dst: Uint8Array, to: number): void {
  for (let p = 0; p < PLANE; p++) {
    const o = to + 3 * p;
    dst[o] = src[from + p]!;
    dst[o + 1] = src[from + PLANE + p]!;
    dst[o + 2] = src[from + 2 * PLANE + p]!;
  }
}
