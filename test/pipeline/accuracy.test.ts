import { describe, expect, it } from 'vitest';
import { accuracyPoints, formatPoints } from '../../compiler/pipeline/accuracy.ts';

describe('formatPoints', () => {
  it('rounds half up on the decimal value, where toFixed rounds the binary one', () => {
    // 1,857 of 2,000: the shipped model's clean accuracy at the time of writing.
    expect((100 * (1857 / 2000)).toFixed(1)).toBe('92.8');
    expect(formatPoints(1857 / 2000)).toBe('92.9');
    expect(formatPoints(1143 / 2000)).toBe('57.2');
    expect(accuracyPoints(1857 / 2000)).toBe(92.9);
  });

  it('keeps values just under a half down, and prints the ends and missing cells', () => {
    expect(formatPoints(0.92849)).toBe('92.8');
    expect(formatPoints(1)).toBe('100.0');
    expect(formatPoints(0)).toBe('0.0');
    expect(formatPoints(1 / 3)).toBe('33.3');
    expect(formatPoints(null)).toBe('—');
    expect(formatPoints(undefined)).toBe('—');
  });
});
