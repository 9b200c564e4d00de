import { describe, expect, it } from 'vitest';
import { applyCrop, applyCutout, applyFlip, normalizeBatch, sampleCutout, sampleFlipCrop } from '../../compiler/train/augment.ts';
import { type BatchRecipe, type Degrader, epochOrder, prepareBatch } from '../../compiler/train/batches.ts';
import { Rng } from '../../shared/rng.ts';
import { tinyData } from './helpers.ts';

describe('flip and crop', () => {
  it('flips only the marked images, keeping channel order', () => {
    // two 1×3 RGB images: pixels (1,2,3) (4,5,6) (7,8,9)
    const img = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const out = applyFlip(img, { n: 2, height: 1, width: 3, channels: 3 }, Uint8Array.from([1, 0]));
    expect([...out]).toEqual([7, 8, 9, 4, 5, 6, 1, 2, 3, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('crop shifts by (dy, dx) and fills with zeros (pad-then-crop)', () => {
    // 3×3 image 1..9; dy = 1, dx = −1: out(y, x) = in(y + 1, x − 1), zero outside.
    const img = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const out = applyCrop(img, { n: 1, height: 3, width: 3, channels: 1 }, Int16Array.from([1]), Int16Array.from([-1]));
    expect([...out]).toEqual([0, 4, 5, 0, 7, 8, 0, 0, 0]);
    const far = applyCrop(img, { n: 1, height: 3, width: 3, channels: 1 }, Int16Array.from([0]), Int16Array.from([4]));
    expect([...far]).toEqual(new Array(9).fill(0));
  });

  it('draws offsets uniformly in [−pad, pad] and flips about half', () => {
    const draw = sampleFlipCrop(9000, { flip: true, pad: 4, cutout: 0 }, new Rng(3));
    const counts = new Map<number, number>();
    for (const v of draw.dy) counts.set(v, (counts.get(v) ?? 0) + 1);
    expect([...counts.keys()].sort((a, b) => a - b)).toEqual([-4, -3, -2, -1, 0, 1, 2, 3, 4]);
    for (const c of counts.values()) expect(Math.abs(c - 1000)).toBeLessThan(150);
    const flips = draw.flip.reduce((a, b) => a + b, 0);
    expect(Math.abs(flips - 4500)).toBeLessThan(250);
    const none = sampleFlipCrop(100, { flip: false, pad: 0, cutout: 0 }, new Rng(3));
    expect(none.flip.every((f) => f === 0) && none.dx.every((d) => d === 0) && none.dy.every((d) => d === 0)).toBe(true);
  });
});

describe('cutout and normalization', () => {
  it('normalizes (v/255 − mean)/std per channel', () => {
    const x = normalizeBatch(Uint8Array.from([0, 255, 51, 102]), 2, [0.5, 0.2], [0.25, 0.4]);
    expect(x[0]).toBeCloseTo(-2, 6); // (0 − 0.5)/0.25
    expect(x[1]).toBeCloseTo(2, 6); // (1 − 0.2)/0.4
    expect(x[2]).toBeCloseTo(-1.2, 6); // (0.2 − 0.5)/0.25
    expect(x[3]).toBeCloseTo(0.5, 6); // (0.4 − 0.2)/0.4
    expect(() => normalizeBatch(new Uint8Array(4), 2, [0.5], [1, 1])).toThrow(/need 2 mean\/std/);
  });

  it('zeroes a size×size square in every channel, clipped at the border', () => {
    const dims = { n: 2, height: 6, width: 6, channels: 2 };
    const x = new Float32Array(2 * 6 * 6 * 2).fill(7);
    // image 0: centre (2, 3), size 4 → rows 0..3, cols 1..4; image 1: centre (0, 5) → rows 0..1, cols 3..5
    applyCutout(x, dims, 4, Int16Array.from([2, 0]), Int16Array.from([3, 5]));
    for (let i = 0; i < 2; i++)
      for (let y = 0; y < 6; y++)
        for (let xx = 0; xx < 6; xx++)
          for (let c = 0; c < 2; c++) {
            const inHole = i === 0 ? y <= 3 && xx >= 1 && xx <= 4 : y <= 1 && xx >= 3;
            expect(x[((i * 6 + y) * 6 + xx) * 2 + c], `img ${i} (${y},${xx}) c${c}`).toBe(inHole ? 0 : 7);
          }
    const centres = sampleCutout(500, { height: 6, width: 6 }, new Rng(1));
    expect(Math.min(...centres.cy)).toBe(0);
    expect(Math.max(...centres.cy)).toBe(5);
  });
});

describe('batch preparation', () => {
  const data = tinyData(40, 5, 'train', 8, 1);
  // A stand-in degradation that inverts pixels, so clean and degraded copies can be matched pixel by pixel.
  const inverting: Degrader = {
    degradeBatch: (images) => images.map((v) => 255 - v),
    DEGRADATION_LEVELS: { jpeg: { min: 1, max: 101 }, blur: { min: 0, max: 50 }, awgn: { min: 0, max: 50 }, saltpepper: { min: 0, max: 25 } },
  };
  const recipe: BatchRecipe = {
    augment: { flip: true, pad: 2, cutout: 0 },
    degrade: { kinds: ['blur', 'awgn'] },
    keepClean: true,
    mean: [0],
    std: [1],
  };

  it('epoch order is a seed-dependent permutation', () => {
    const a = epochOrder(100, 11);
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect([...epochOrder(100, 11)]).toEqual([...a]);
    expect([...epochOrder(100, 12)]).not.toEqual([...a]);
  });

  it('applies the same flip and crop to the clean and the degraded copy', () => {
    const indices = Uint32Array.from({ length: 8 }, (_, i) => i * 3);
    const b = prepareBatch(data, indices, 2, 99, recipe, inverting);
    expect([...b.labels]).toEqual([...indices].map((i) => data.labels[i]));
    let padded = 0;
    for (let i = 0; i < b.x.length; i++) {
      const student = Math.round(b.x[i]! * 255);
      const clean = Math.round(b.clean![i]! * 255);
      if (student === 0 && clean === 0) padded++;
      else expect(student + clean, `value ${i}`).toBe(255);
    }
    expect(padded).toBeGreaterThan(0); // some crops moved the image
    // Sub-batch k's levels come from kinds[k]'s range.
    expect(b.levels!.length).toBe(8);
    for (const l of b.levels!) expect(l >= 0 && l <= 50).toBe(true);
  });

  it('is a pure function of (epoch seed, batch index)', () => {
    const indices = Uint32Array.from([1, 2, 3, 4]);
    const a = prepareBatch(data, indices, 0, 7, { ...recipe, augment: { flip: true, pad: 2, cutout: 3 } }, inverting);
    const b = prepareBatch(data, indices, 0, 7, { ...recipe, augment: { flip: true, pad: 2, cutout: 3 } }, inverting);
    const c = prepareBatch(data, indices, 1, 7, { ...recipe, augment: { flip: true, pad: 2, cutout: 3 } }, inverting);
    expect(a.x).toEqual(b.x);
    expect(a.clean).toEqual(b.clean);
    expect(a.x).not.toEqual(c.x);
  });

  it('refuses a batch that does not split into equal degradation sub-batches', () => {
    expect(() => prepareBatch(data, Uint32Array.from([0, 1, 2]), 0, 1, recipe, inverting)).toThrow(/cannot be split into 2 equal/);
  });
});
