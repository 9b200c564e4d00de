import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { splitValidation, subsetClasses, take } from '../../compiler/data/split.ts';
import type { LabelledImages } from '../../compiler/data/types.ts';

/**
 * A set whose example i has label labels[i] and pixels (i & 0xff, i >> 8, label), so every
 * output example can be traced back to its source index and checked against its label.
 */
function tracedSet(classSizes: number[]): LabelledImages {
  const labels: number[] = [];
  // Interleave classes so class members are not contiguous in the source order.
  for (let round = 0; labels.length < classSizes.reduce((a, b) => a + b, 0); round++)
    classSizes.forEach((size, c) => { if (round < size) labels.push(c); });
  const count = labels.length;
  const images = new Uint8Array(count * 3);
  labels.forEach((label, i) => images.set([i & 0xff, i >> 8, label], i * 3));
  return {
    name: 'traced', split: 'train', count, height: 1, width: 1, channels: 3, images,
    labels: Uint16Array.from(labels), classNames: classSizes.map((_, c) => `class${c}`),
  };
}

/** Source indices of a derived set, checking each example's bytes still agree with its label. */
function sourceIndices(ds: LabelledImages, labelMap: (label: number) => number = (l) => l): number[] {
  return Array.from({ length: ds.count }, (_, k) => {
    const [lo, hi, label] = ds.images.subarray(k * 3, k * 3 + 3);
    expect(labelMap(ds.labels[k]!)).toBe(label);
    return lo! + 256 * hi!;
  });
}

const histogram = (ds: LabelledImages) => ds.classNames.map((_, c) => ds.labels.filter((l) => l === c).length);

describe('splitValidation', () => {
  it('is stratified, disjoint, exhaustive and order-preserving for any class sizes and seed', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 2, max: 60 }), { minLength: 1, maxLength: 6 }), fc.double({ min: 0.05, max: 0.5, noNaN: true }), fc.integer(), (sizes, fraction, seed) => {
        const source = tracedSet(sizes);
        const { train, val } = splitValidation(source, { fraction, seed });
        const a = sourceIndices(train);
        const b = sourceIndices(val);
        expect(new Set([...a, ...b]).size).toBe(source.count);
        expect(a.length + b.length).toBe(source.count);
        expect(a).toEqual([...a].sort((x, y) => x - y));
        expect(b).toEqual([...b].sort((x, y) => x - y));
        expect(histogram(val)).toEqual(sizes.map((n) => Math.round(fraction * n)));
        expect([train.split, val.split]).toEqual(['train', 'val']);
      }),
      { numRuns: 60 },
    );
  });

  it('is deterministic for a seed and differs between seeds', () => {
    const source = tracedSet([40, 30, 20]);
    const one = sourceIndices(splitValidation(source, { fraction: 0.2, seed: 7 }).val);
    const again = sourceIndices(splitValidation(source, { fraction: 0.2, seed: 7 }).val);
    const other = sourceIndices(splitValidation(source, { fraction: 0.2, seed: 8 }).val);
    expect(again).toEqual(one);
    expect(other).not.toEqual(one);
  });

  it('holds out exactly perClass examples of every class', () => {
    const { train, val } = splitValidation(tracedSet([10, 7, 5]), { perClass: 3, seed: 1 });
    expect(histogram(val)).toEqual([3, 3, 3]);
    expect(histogram(train)).toEqual([7, 4, 2]);
  });

  it('refuses a hold-out that would leave a class without training data, and bad specs', () => {
    expect(() => splitValidation(tracedSet([10, 3]), { perClass: 3, seed: 1 })).toThrow(/class "class1" of traced has 3 examples; cannot hold out 3/);
    expect(() => splitValidation(tracedSet([10]), { fraction: 1.5, seed: 1 })).toThrow(/fraction must be in \(0, 1\), got 1.5/);
    expect(() => splitValidation(tracedSet([10]), { perClass: 0, seed: 1 })).toThrow(/perClass must be a positive integer, got 0/);
  });

  it('does not share pixel memory with the source', () => {
    const source = tracedSet([5, 5]);
    const { train } = splitValidation(source, { perClass: 1, seed: 3 });
    const before = source.images[0];
    train.images.fill(99);
    expect(source.images[0]).toBe(before);
  });
});

describe('subsetClasses', () => {
  it('keeps only the listed classes, relabelled in the order given', () => {
    const source = tracedSet([4, 5, 6, 7]);
    const sub = subsetClasses(source, [3, 1]);
    expect(sub.classNames).toEqual(['class3', 'class1']);
    expect(sub.count).toBe(12);
    expect(histogram(sub)).toEqual([7, 5]);
    const map = [3, 1];
    const kept = sourceIndices(sub, (l) => map[l]!);
    expect(kept).toEqual([...kept].sort((a, b) => a - b));
  });

  it('rejects out-of-range, repeated or no classes', () => {
    const source = tracedSet([2, 2]);
    expect(() => subsetClasses(source, [0, 2])).toThrow(/class index 2 is out of range: traced has 2 classes/);
    expect(() => subsetClasses(source, [1, 1])).toThrow(/class index 1 is listed twice/);
    expect(() => subsetClasses(source, [])).toThrow(/at least one class/);
  });
});

describe('take', () => {
  it('samples n examples balanced across classes, deterministically, in source order', () => {
    const source = tracedSet([50, 30, 3]);
    const sample = take(source, 21, 5);
    expect(sample.count).toBe(21);
    expect(histogram(sample)).toEqual([9, 9, 3]);
    const picked = sourceIndices(sample);
    expect(new Set(picked).size).toBe(21);
    expect(picked).toEqual([...picked].sort((a, b) => a - b));
    expect(sourceIndices(take(source, 21, 5))).toEqual(picked);
    expect(sourceIndices(take(source, 21, 6))).not.toEqual(picked);
  });

  it('returns everything when n is at least the set size', () => {
    const source = tracedSet([3, 2]);
    expect(sourceIndices(take(source, 99, 1))).toEqual([0, 1, 2, 3, 4]);
    expect(() => take(source, 0, 1)).toThrow(/positive integer/);
  });
});
