import { describe, expect, it } from 'vitest';
import { selectLayer, traceRatio } from '../../compiler/catro/select.ts';
import { prng, randomArray, subsets } from './helpers.ts';

/** Exhaustive optimum with the same w regulariser selectLayer uses. */
function exhaustiveBest(b: Float64Array, w: Float64Array, k: number, eps = 1e-8): number {
  const mean = w.reduce((s, v) => s + v, 0) / w.length;
  const wr = w.map((v) => v + eps * mean);
  let best = -Infinity;
  for (const S of subsets(b.length, k)) best = Math.max(best, traceRatio(S, b, wr));
  return best;
}

function regularised(w: Float64Array): Float64Array {
  const mean = w.reduce((s, v) => s + v, 0) / w.length;
  return w.map((v) => v + 1e-8 * mean);
}

describe('selectLayer', () => {
  it('equals exhaustive search for C ≤ 12 on random b, w', () => {
    for (let seed = 1; seed <= 60; seed++) {
      const rand = prng(seed);
      const C = 2 + Math.floor(rand() * 11);
      // Mix scales so ratios differ a lot between channels.
      const b = randomArray(rand, C).map((v) => v * v * 10);
      const w = randomArray(rand, C).map((v) => 0.05 + v * 3);
      for (let k = 1; k <= C; k++) {
        const { selected, ratio } = selectLayer(b, w, k);
        expect(selected).toHaveLength(k);
        expect(new Set(selected).size).toBe(k);
        const best = exhaustiveBest(b, w, k);
        expect(ratio).toBeCloseTo(best, 10);
        expect(traceRatio(selected, b, regularised(w))).toBeCloseTo(best, 10);
      }
    }
  });

  it('with a ridge regulariser still equals exhaustive search, and prefers energetic channels', () => {
    for (let seed = 400; seed < 420; seed++) {
      const rand = prng(seed);
      const C = 3 + Math.floor(rand() * 8);
      const b = randomArray(rand, C).map((v) => v * v * 10);
      const w = randomArray(rand, C).map((v) => v * v * 3);
      for (let k = 1; k < C; k++) expect(selectLayer(b, w, k, { wEpsilon: 0.3 }).ratio).toBeCloseTo(exhaustiveBest(b, w, k, 0.3), 10);
    }
    // A near-silent channel wins on ratio alone; ridge regularisation prefers the energetic one.
    const b = Float64Array.from([1, 0.01]);
    const w = Float64Array.from([2, 0.01]);
    expect(selectLayer(b, w, 1).selected).toEqual([1]);
    expect(selectLayer(b, w, 1, { wEpsilon: 1 }).selected).toEqual([0]);
    expect(() => selectLayer(b, w, 1, { wEpsilon: -1 })).toThrow(/wEpsilon must be finite and ≥ 0/);
  });

  it('raises λ monotonically and ends at the selected ratio', () => {
    let sawSeveralSteps = false;
    for (let seed = 100; seed < 140; seed++) {
      const rand = prng(seed);
      const C = 40;
      const b = randomArray(rand, C, 5);
      const w = randomArray(rand, C).map((v) => 0.01 + v);
      const { lambdas, ratio } = selectLayer(b, w, 10);
      for (let i = 1; i < lambdas.length; i++) expect(lambdas[i]).toBeGreaterThan(lambdas[i - 1]);
      expect(ratio).toBeGreaterThanOrEqual(lambdas[lambdas.length - 1] - 1e-12);
      if (lambdas.length >= 3) sawSeveralSteps = true;
    }
    expect(sawSeveralSteps).toBe(true);
  });

  it('is invariant to scaling b and w together', () => {
    for (let seed = 200; seed < 230; seed++) {
      const rand = prng(seed);
      const C = 24;
      const b = randomArray(rand, C, 3);
      const w = randomArray(rand, C).map((v) => 0.1 + v);
      const k = 1 + Math.floor(rand() * C);
      const base = selectLayer(b, w, k).selected;
      for (const s of [1e-6, 0.37, 1e5]) {
        expect(selectLayer(b.map((v) => v * s), w.map((v) => v * s), k).selected).toEqual(base);
      }
    }
  });

  it('selects a set whose trace ratio is at least that of all channels', () => {
    for (let seed = 300; seed < 340; seed++) {
      const rand = prng(seed);
      const C = 5 + Math.floor(rand() * 60);
      const b = randomArray(rand, C, 2);
      const w = randomArray(rand, C).map((v) => 0.01 + v);
      const all = Array.from({ length: C }, (_, j) => j);
      const k = 1 + Math.floor(rand() * C);
      const { selected } = selectLayer(b, w, k);
      expect(traceRatio(selected, b, w)).toBeGreaterThanOrEqual(traceRatio(all, b, w) - 1e-12);
    }
  });

  it('skips dead channels while live ones remain, then fills with them', () => {
    const b = Float64Array.from([0, 1, 0, 0.5, 0, 2]);
    const w = Float64Array.from([0, 4, 0, 1, 0, 1]);
    expect(selectLayer(b, w, 3).selected).toEqual([1, 3, 5]);
    expect(selectLayer(b, w, 2).selected).toEqual([3, 5]);
    // k above the live count: every live channel, then dead ones by lower index.
    expect(selectLayer(b, w, 4).selected).toEqual([0, 1, 3, 5]);
    // A channel with b = 0 but w > 0 is live (it only hurts the ratio), ranked before dead ones.
    const b2 = Float64Array.from([0, 0, 1]);
    const w2 = Float64Array.from([0, 1, 1]);
    expect(selectLayer(b2, w2, 2).selected).toEqual([1, 2]);
  });

  it('breaks ties by larger b, then lower index', () => {
    // Equal ratios everywhere: score b − λw is 0 for all at λ = 1.
    const b = Float64Array.from([1, 3, 2, 3]);
    const w = Float64Array.from([1, 3, 2, 3]);
    expect(selectLayer(b, w, 2).selected).toEqual([1, 3]);
    const same = Float64Array.from([1, 1, 1, 1]);
    expect(selectLayer(same, same, 2).selected).toEqual([0, 1]);
  });

  it('rejects bad input with a clear error', () => {
    expect(() => selectLayer([1, 2], [1], 1)).toThrow(/b has 2 channels but w has 1/);
    expect(() => selectLayer([1, 2], [1, 1], 3)).toThrow(/k must be an integer in \[1, 2\]/);
    expect(() => selectLayer([1, -2], [1, 1], 1)).toThrow(/channel 1/);
    expect(() => selectLayer([1, NaN], [1, 1], 1)).toThrow(/channel 1/);
  });
});
