import { describe, expect, it } from 'vitest';
import { apacWeight, pairwiseBetween, ScatterAccumulator, sumScatters } from '../../compiler/catro/scatter.ts';
import { selectLayer, traceRatio } from '../../compiler/catro/select.ts';
import { prng } from './helpers.ts';

/** Features of channel set S flattened over space: one row per sample, |S|·H·W columns. */
function features(x: Float32Array, n: number, P: number, C: number, S: number[]): number[][] {
  const rows: number[][] = [];
  for (let i = 0; i < n; i++) {
    const row: number[] = [];
    for (const j of S) for (let p = 0; p < P; p++) row.push(x[(i * P + p) * C + j]);
    rows.push(row);
  }
  return rows;
}

/** Explicit S_b and S_w matrices (D×D) from rows and labels. */
function scatterMatrices(rows: number[][], labels: number[]): { Sb: number[][]; Sw: number[][] } {
  const D = rows[0].length;
  const zero = () => Array.from({ length: D }, () => new Array<number>(D).fill(0));
  const Sb = zero();
  const Sw = zero();
  const mean = new Array<number>(D).fill(0);
  rows.forEach((r) => r.forEach((v, d) => (mean[d] += v / rows.length)));
  for (const c of new Set(labels)) {
    const members = rows.filter((_, i) => labels[i] === c);
    const mc = new Array<number>(D).fill(0);
    members.forEach((r) => r.forEach((v, d) => (mc[d] += v / members.length)));
    for (let p = 0; p < D; p++) {
      for (let q = 0; q < D; q++) {
        Sb[p][q] += members.length * (mc[p] - mean[p]) * (mc[q] - mean[q]);
        for (const r of members) Sw[p][q] += (r[p] - mc[p]) * (r[q] - mc[q]);
      }
    }
  }
  return { Sb, Sw };
}

const trace = (m: number[][]) => m.reduce((s, row, i) => s + row[i], 0);

function tinyTensor(seed: number, n: number, P: number, C: number) {
  const rand = prng(seed);
  const labels = Array.from({ length: n }, (_, i) => i % 3);
  const x = new Float32Array(n * P * C);
  for (let i = 0; i < n; i++) {
    for (let q = 0; q < P * C; q++) {
      const j = q % C;
      // Channel j carries class signal of strength j, plus noise.
      x[i * P * C + q] = labels[i] * j * 0.5 + (rand() - 0.5) * (1 + j);
    }
  }
  return { x, labels };
}

describe('ScatterAccumulator', () => {
  it('satisfies the block-trace identity against explicit S_b, S_w', () => {
    const n = 12, H = 2, W = 2, C = 4, P = H * W;
    const { x, labels } = tinyTensor(7, n, P, C);
    const acc = new ScatterAccumulator({ classes: 3, height: H, width: W, channels: C });
    acc.add(x, labels);
    const { b, w } = acc.scatter();
    for (let j = 0; j < C; j++) {
      const { Sb, Sw } = scatterMatrices(features(x, n, P, C, [j]), labels);
      expect(b[j]).toBeCloseTo(trace(Sb), 9);
      expect(w[j]).toBeCloseTo(trace(Sw), 9);
    }
    for (const S of [[0, 1], [1, 3], [0, 2, 3], [0, 1, 2, 3]]) {
      const { Sb, Sw } = scatterMatrices(features(x, n, P, C, S), labels);
      expect(traceRatio(S, b, w)).toBeCloseTo(trace(Sb) / trace(Sw), 9);
    }
  });

  it('gives the same scatter streamed in batches as in one pass', () => {
    const n = 30, P = 9, C = 5;
    const { x, labels } = tinyTensor(11, n, P, C);
    const whole = new ScatterAccumulator({ classes: 3, height: 3, width: 3, channels: C });
    whole.add(x, labels);
    const streamed = new ScatterAccumulator({ classes: 3, height: 3, width: 3, channels: C });
    for (const [lo, hi] of [[0, 7], [7, 8], [8, 30]]) {
      streamed.add(x.subarray(lo * P * C, hi * P * C), labels.slice(lo, hi));
    }
    const a = whole.scatter();
    const s = streamed.scatter();
    for (let j = 0; j < C; j++) {
      expect(s.b[j]).toBeCloseTo(a.b[j], 9);
      expect(s.w[j]).toBeCloseTo(a.w[j], 9);
    }
    expect(streamed.classCounts()).toEqual([10, 10, 10]);
  });

  it('pools globally with pooling: gap', () => {
    const n = 12, H = 2, W = 3, C = 3, P = H * W;
    const { x, labels } = tinyTensor(3, n, P, C);
    const acc = new ScatterAccumulator({ classes: 3, height: H, width: W, channels: C, pooling: 'gap' });
    acc.add(x, labels);
    const { b, w } = acc.scatter();
    const pooled = new Float32Array(n * C);
    for (let i = 0; i < n; i++) for (let p = 0; p < P; p++) for (let j = 0; j < C; j++) pooled[i * C + j] += x[(i * P + p) * C + j] / P;
    for (let j = 0; j < C; j++) {
      const { Sb, Sw } = scatterMatrices(features(pooled, n, 1, C, [j]), labels);
      expect(b[j]).toBeCloseTo(trace(Sb), 6);
      expect(w[j]).toBeCloseTo(trace(Sw), 6);
    }
  });

  it('keeps precision where float32 sums of squares would cancel', () => {
    // Large offset, tiny spread: float32 Σx² − (Σx)²/n loses everything.
    const n = 200;
    const x = new Float32Array(n);
    const labels = new Array<number>(n).fill(0);
    for (let i = 0; i < n; i++) x[i] = 1000 + (i % 2 === 0 ? 0.01 : -0.01);
    const acc = new ScatterAccumulator({ classes: 1, height: 1, width: 1, channels: 1 });
    acc.add(x, labels);
    const mean = Array.from(x).reduce((s, v) => s + v, 0) / n;
    const exact = Array.from(x).reduce((s, v) => s + (v - mean) ** 2, 0); // two-pass, float64
    expect(exact).toBeGreaterThan(0.01);
    expect(Math.abs(acc.scatter().w[0] - exact) / exact).toBeLessThan(1e-6);
  });

  it('reports a dead channel as b = w = 0', () => {
    const { x, labels } = tinyTensor(5, 12, 4, 3);
    for (let i = 0; i < 12 * 4; i++) x[i * 3 + 1] = 0;
    const acc = new ScatterAccumulator({ classes: 3, height: 2, width: 2, channels: 3 });
    acc.add(x, labels);
    const { b, w } = acc.scatter();
    expect([b[1], w[1]]).toEqual([0, 0]);
    expect(b[2]).toBeGreaterThan(0);
  });

  it('sums the scatter of tied tensors', () => {
    const s = sumScatters([
      { b: Float64Array.from([1, 2]), w: Float64Array.from([3, 4]) },
      { b: Float64Array.from([10, 20]), w: Float64Array.from([30, 40]) },
    ]);
    expect(Array.from(s.b)).toEqual([11, 22]);
    expect(Array.from(s.w)).toEqual([33, 44]);
  });

  it('rejects bad input with clear errors', () => {
    const acc = new ScatterAccumulator({ classes: 2, height: 1, width: 2, channels: 3 });
    expect(() => acc.add(new Float32Array(5), [0])).toThrow(/1 labels need 6 activations/);
    expect(() => acc.add(new Float32Array(6), [2])).toThrow(/label 0 is 2, outside \[0, 2\)/);
    expect(() => acc.scatter()).toThrow(/no samples/);
    expect(() => new ScatterAccumulator({ classes: 0, height: 1, width: 1, channels: 1 })).toThrow(/classes must be a positive integer/);
  });

  it('writes the centroid b as a sum over class pairs (the pairwise form with every weight 1)', () => {
    const { x, labels } = tinyTensor(9, 30, 4, 3);
    const acc = new ScatterAccumulator({ classes: 3, height: 2, width: 2, channels: 3 });
    acc.add(x, labels);
    const { b } = acc.scatter();
    // Per-class sums in the accumulator's layout [class][position][channel], rebuilt here.
    const sums = new Float64Array(3 * 4 * 3);
    labels.forEach((c, i) => { for (let q = 0; q < 12; q++) sums[c * 12 + q] += x[i * 12 + q]; });
    const pairwise = pairwiseBetween(sums, Float64Array.from([10, 10, 10]), 4, 3, () => 1);
    for (let j = 0; j < 3; j++) expect(pairwise[j]).toBeCloseTo(b[j], 6);
  });

  it('weighs pairs by erf(Δ/2√2)/(2Δ²): near pairs most, none at Δ = 0 or ∞', () => {
    expect(apacWeight(4)).toBeCloseTo(0.682689 / 8, 5); // Δ = 2: erf(1/√2) = P(|z| < 1)
    expect(apacWeight(1e6)).toBeCloseTo(1 / 2e6, 12);
    expect(apacWeight(0.25)).toBeGreaterThan(apacWeight(1));
    expect(apacWeight(1)).toBeGreaterThan(apacWeight(4));
    expect([apacWeight(0), apacWeight(Infinity)]).toEqual([0, 0]);
  });

  it("counts every class pair once with between: 'pairwise', so a channel that parts the near classes can win", () => {
    // Channel 0 sets class 0 far from the other four (4 pairs, 10 apart); channel 1 parts
    // classes 1–4 from each other, 1 apart (6 pairs). Around the grand mean channel 0's 4 far
    // pairs outweigh channel 1's 6 near ones; counted pair by pair, channel 1 parts more pairs.
    const rand = prng(3);
    const n = 500;
    const labels = Array.from({ length: n }, (_, i) => i % 5);
    const x = new Float32Array(n * 2);
    labels.forEach((c, i) => {
      x[i * 2] = (c === 0 ? 10 : 0) + 0.2 * (rand() - 0.5);
      x[i * 2 + 1] = (c === 0 ? 0 : c - 2.5) + 0.2 * (rand() - 0.5);
    });
    const acc = new ScatterAccumulator({ classes: 5, height: 1, width: 1, channels: 2 });
    acc.add(x, labels);
    const centroid = acc.scatter();
    const pairwise = acc.scatter('pairwise');
    expect(Array.from(pairwise.w)).toEqual(Array.from(centroid.w));
    expect(selectLayer(centroid.b, centroid.w, 1).selected).toEqual([0]);
    expect(selectLayer(pairwise.b, pairwise.w, 1).selected).toEqual([1]);
  });
});
