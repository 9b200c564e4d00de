/** Temp folders and synthetic data files for the data-set tests. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

export const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'data');

/** A fresh temp folder, removed when the test file finishes. */
export function tempDir(prefix = 'facet-data-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A pixel value that differs by record, channel, row and column, so any reordering shows. */
export function cifarPixel(record: number, channel: number, y: number, x: number): number {
  return (record * 7 + channel * 85 + y * 3 + x * 5) & 0xff;
}

/** CIFAR binary records (planar CHW); CIFAR-100 records get coarse label 99 - fine. */
export function cifarBatch(variant: 'cifar10' | 'cifar100', labels: number[], firstRecord = 0): Uint8Array {
  const head = variant === 'cifar10' ? 1 : 2;
  const size = head + 3072;
  const out = new Uint8Array(labels.length * size);
  labels.forEach((label, r) => {
    const base = r * size;
    if (variant === 'cifar10') out[base] = label;
    else { out[base] = 99 - label; out[base + 1] = label; }
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < 32; y++)
        for (let x = 0; x < 32; x++) out[base + head + c * 1024 + y * 32 + x] = cifarPixel(firstRecord + r, c, y, x);
  });
  return out;
}
