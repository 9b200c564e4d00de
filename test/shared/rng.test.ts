import { describe, expect, it } from 'vitest';
import { Rng, portableLog } from '../../shared/rng.ts';

/** Independent BigInt model of splitmix32-seeded sfc32, written from the algorithms' definitions. */
function referenceSfc32(seed: number, count: number): number[] {
  const M = (1n << 32n) - 1n;
  let s = BigInt(seed >>> 0);
  const mix = (z: bigint) => {
    z = ((z ^ (z >> 16n)) * 0x85ebca6bn) & M;
    z = ((z ^ (z >> 13n)) * 0xc2b2ae35n) & M;
    return z ^ (z >> 16n);
  };
  const next = () => ((s = (s + 0x9e3779b9n) & M), mix(s));
  const hashWord = (w: bigint) => mix((w + 0x9e3779b9n) & M);
  let a = next();
  let b = next() ^ hashWord(0x6a09e667n); // hi word 0
  let c = next() ^ hashWord(0xbb67ae85n); // stream 0
  let d = 1n;
  const out: number[] = [];
  for (let i = 0; i < 12 + count; i++) {
    const t = (a + b + d) & M;
    d = (d + 1n) & M;
    a = b ^ (b >> 9n);
    b = (c + (c << 3n)) & M;
    c = ((c << 21n) | (c >> 11n)) & M;
    c = (c + t) & M;
    if (i >= 12) out.push(Number(t));
  }
  return out;
}

const draw = (rng: Rng, n: number) => Array.from({ length: n }, () => rng.nextU32());

describe('Rng', () => {
  it('matches an independent BigInt sfc32 + splitmix32 model', () => {
    for (const seed of [0, 1, 42, 0xdeadbeef]) expect(draw(new Rng(seed), 50)).toEqual(referenceSfc32(seed, 50));
  });

  it('is deterministic per seed and differs between seeds, including seeds above 2^32', () => {
    expect(draw(new Rng(7), 20)).toEqual(draw(new Rng(7), 20));
    expect(draw(new Rng(7), 20)).not.toEqual(draw(new Rng(8), 20));
    expect(draw(new Rng(7), 20)).not.toEqual(draw(new Rng(7 + 2 ** 32), 20));
    expect(draw(new Rng(-1), 20)).not.toEqual(draw(new Rng(2 ** 32 - 1), 20));
  });

  it('rejects seeds that are not safe integers', () => {
    for (const bad of [1.5, NaN, Infinity, 2 ** 53]) expect(() => new Rng(bad)).toThrow(RangeError);
  });

  it('float() is uniform in [0, 1)', () => {
    const rng = new Rng(3);
    const n = 100_000;
    const bins = new Array(10).fill(0);
    let sum = 0, outside = 0;
    for (let i = 0; i < n; i++) {
      const f = rng.float();
      if (!(f >= 0 && f < 1)) outside++;
      sum += f;
      bins[Math.floor(f * 10)]++;
    }
    expect(outside).toBe(0);
    expect(Math.abs(sum / n - 0.5)).toBeLessThan(5 * Math.sqrt(1 / 12 / n));
    const chi2 = bins.reduce((acc, b) => acc + (b - n / 10) ** 2 / (n / 10), 0);
    expect(chi2).toBeLessThan(30); // 9 d.o.f.: p ≈ 4e-4
  });

  it('int(lo, hi) covers both ends, stays in range, and validates its arguments', () => {
    const rng = new Rng(4);
    const counts = new Map<number, number>();
    for (let i = 0; i < 7000; i++) {
      const v = rng.int(-3, 3);
      counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    expect([...counts.keys()].sort((a, b) => a - b)).toEqual([-3, -2, -1, 0, 1, 2, 3]);
    for (const c of counts.values()) expect(Math.abs(c - 1000)).toBeLessThan(160);
    expect(rng.int(5, 5)).toBe(5);
    expect(() => rng.int(3, 2)).toThrow(/lo <= hi/);
    expect(() => rng.int(0, 1.5)).toThrow(RangeError);
    expect(() => rng.int(0, 2 ** 33)).toThrow(/exceeds 2\^32/);
  });

  it('gaussian() has mean 0, variance 1 and normal tails', () => {
    const rng = new Rng(5);
    const n = 200_000;
    let s1 = 0, s2 = 0, s4 = 0, within1 = 0;
    for (let i = 0; i < n; i++) {
      const g = rng.gaussian();
      s1 += g;
      s2 += g * g;
      s4 += g ** 4;
      if (Math.abs(g) < 1) within1++;
    }
    const mean = s1 / n, variance = s2 / n - mean * mean;
    expect(Math.abs(mean)).toBeLessThan(5 / Math.sqrt(n));
    expect(Math.abs(variance - 1)).toBeLessThan(5 * Math.sqrt(2 / n));
    expect(Math.abs(s4 / n - 3)).toBeLessThan(0.1);
    expect(Math.abs(within1 / n - 0.682689)).toBeLessThan(5 * Math.sqrt(0.2166 / n));
  });

  it('portableLog agrees with Math.log to ~1 ulp and handles edge values', () => {
    const rng = new Rng(6);
    let worst = 0;
    for (let i = 0; i < 20_000; i++) {
      const x = rng.float() * 2 ** rng.int(-60, 60) + Number.MIN_VALUE;
      const want = Math.log(x);
      worst = Math.max(worst, Math.abs(portableLog(x) - want) / Math.max(1, Math.abs(want)));
    }
    expect(worst).toBeLessThanOrEqual(4e-16);
    expect(portableLog(1)).toBe(0);
    expect(portableLog(0)).toBe(-Infinity);
    expect(portableLog(-1)).toBeNaN();
  });

  it('getState/setState restore the exact sequence, including a cached gaussian', () => {
    const rng = new Rng(9);
    rng.gaussian(); // leaves the pair's second value cached
    const saved = JSON.parse(JSON.stringify(rng.getState())) as number[];
    expect(saved).toHaveLength(5);
    const expected = [rng.gaussian(), rng.nextU32(), rng.gaussian(), rng.float()];
    const restored = new Rng(0);
    restored.setState(saved);
    expect([restored.gaussian(), restored.nextU32(), restored.gaussian(), restored.float()]).toEqual(expected);
    expect(() => restored.setState([1, 2, 3])).toThrow(/4 or 5 numbers/);
    expect(() => restored.setState([1, 2, 3, -1])).toThrow(/word 3/);
  });

  it('fork(stream) is reproducible, independent of other streams and leaves the parent untouched', () => {
    const parent = new Rng(11);
    const a1 = draw(parent.fork(1), 10);
    const a1again = draw(parent.fork(1), 10);
    const a2 = draw(parent.fork(2), 10);
    expect(a1again).toEqual(a1);
    expect(a2).not.toEqual(a1);
    expect(draw(parent, 10)).toEqual(draw(new Rng(11), 10));
    expect(a1).not.toEqual(draw(new Rng(11), 10));
    // Forks of different parent states differ too.
    expect(draw(parent.fork(1), 10)).not.toEqual(a1);
    expect(() => parent.fork(-1)).toThrow(RangeError);
  });
});

describe('Rng.fillGaussian', () => {
  it('gives the same values and final state as repeated gaussian() calls', () => {
    for (const [pre, n] of [[0, 7], [1, 8], [3, 1], [0, 0], [2, 1001]] as const) {
      const a = new Rng(13), b = new Rng(13);
      for (let i = 0; i < pre; i++) expect(b.gaussian()).toBe(a.gaussian());
      const bulk = new Float64Array(n);
      a.fillGaussian(bulk);
      expect(Array.from(bulk)).toEqual(Array.from({ length: n }, () => b.gaussian()));
      expect(a.getState()).toEqual(b.getState());
    }
  });
});
