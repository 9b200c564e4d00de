import { describe, expect, it } from 'vitest';
import { median, pairedDifference, t95 } from '../../bench/stats.ts';

describe('bench/stats', () => {
  it('t95 matches the t table inside it and converges to the normal quantile past it', () => {
    expect(t95(1)).toBeCloseTo(12.706, 3);
    expect(t95(4)).toBeCloseTo(2.776, 3);
    expect(t95(30)).toBeCloseTo(2.042, 3);
    // Published values beyond the table: df 40 → 2.021, 60 → 2.000, 120 → 1.980.
    expect(t95(40)).toBeCloseTo(2.021, 2);
    expect(t95(60)).toBeCloseTo(2.0, 2);
    expect(t95(120)).toBeCloseTo(1.98, 2);
    expect(t95(1e6)).toBeCloseTo(1.96, 3);
    expect(() => t95(0)).toThrow(/positive integer/);
    expect(() => t95(2.5)).toThrow(/positive integer/);
  });

  it('pairedDifference gives the mean gap, its t interval and the win count', () => {
    const r = pairedDifference([1, 2, 3], [0, 0, 0]);
    expect(r.mean).toBeCloseTo(2, 12);
    expect(r.sd).toBeCloseTo(1, 12);
    const half = 4.303 / Math.sqrt(3);
    expect(r.ci95![0]).toBeCloseTo(2 - half, 3);
    expect(r.ci95![1]).toBeCloseTo(2 + half, 3);
    expect([r.wins, r.ties, r.losses]).toEqual([3, 0, 0]);
  });

  it('pairing cancels what both sides of a pair share', () => {
    // A seed effect far larger than the gap: unpaired, the two sets overlap; paired, the gap is exact.
    const base = [0.6, 0.9, 0.7, 0.8];
    const r = pairedDifference(base.map((x) => x + 0.01), base);
    expect(r.ci95![0]).toBeCloseTo(0.01, 12);
    expect(r.ci95![1]).toBeCloseTo(0.01, 12);
    expect(r.wins).toBe(4);
  });

  it('pairedDifference refuses unmatched lists and gives no interval for one pair', () => {
    expect(() => pairedDifference([1, 2], [1])).toThrow(/2 values against 1/);
    const one = pairedDifference([0.5], [0.4]);
    expect(one.ci95).toBeUndefined();
    expect([one.wins, one.ties, one.losses]).toEqual([1, 0, 0]);
    expect(pairedDifference([0.5, 0.4], [0.5, 0.5]).ties).toBe(1);
  });

  it('median takes the mean of the middle two for an even count, NaN for none', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });
});
