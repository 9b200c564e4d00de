/** Degradations against PIL/libjpeg-turbo and scipy (fixtures from scripts/reference/). */
import { describe, expect, it } from 'vitest';
import { degrade, quantTable } from '../../shared/degrade.ts';
import { gaussianBlurFloat, gaussianKernel } from '../../shared/degrade/blur.ts';
import { Rng } from '../../shared/rng.ts';
import { reference, toRaw } from './reference.ts';

describe('JPEG degradation vs PIL + libjpeg-turbo', () => {
  it('fixtures cover grayscale and RGB at q = 1, 10, 50, 90, 100', () => {
    expect(reference.versions.libjpeg_turbo).toBe(true);
    const qs = new Set(reference.jpeg.map((c) => c.quality));
    expect([...qs].sort((a, b) => a - b)).toEqual([1, 10, 50, 90, 100]);
    expect(new Set(reference.jpeg.map((c) => c.image.channels))).toEqual(new Set([1, 3]));
  });

  it('uses the same quantization tables as PIL (IJG scaling, baseline clamp)', () => {
    for (const c of reference.jpeg) {
      // Pillow ≥ 8.3 reports the tables in natural (row-major) order, as quantTable returns them.
      expect(Array.from(quantTable(c.quality, false))).toEqual(c.quant['0']);
      if (c.image.channels === 3) expect(Array.from(quantTable(c.quality, true))).toEqual(c.quant['1']);
      else expect(c.quant['1']).toBeUndefined(); // grayscale is one-component JPEG
    }
  });

  it('reproduces PIL encode + decode pixel for pixel', () => {
    const mismatches: string[] = [];
    let total = 0, absErr = 0;
    for (const c of reference.jpeg) {
      const out = degrade(toRaw(c.image), 'jpeg', c.quality, new Rng(0)).data;
      let diff = 0;
      out.forEach((v, i) => {
        absErr += Math.abs(v - c.expected[i]!);
        if (v !== c.expected[i]) diff++;
      });
      total += out.length;
      if (diff) mismatches.push(`${c.image.name} q=${c.quality}: ${diff} samples differ`);
    }
    expect(mismatches).toEqual([]);
    expect(absErr / total).toBe(0);
  });
});

describe('Gaussian blur vs scipy.ndimage.gaussian_filter(mode=nearest, truncate=3)', () => {
  it('matches scipy float output to 1e-9 and its rint exactly', () => {
    for (const c of reference.blur) {
      const img = toRaw(c.image);
      const f = Float64Array.from(img.data);
      gaussianBlurFloat(f, img.width, img.height, img.channels, img.channels, gaussianKernel(c.level / 10), new Float64Array(f.length));
      let worst = 0;
      f.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - c.expected[i]!))));
      expect(worst, `${c.image.name} level ${c.level}`).toBeLessThan(1e-9);
      const out = degrade(img, 'blur', c.level, new Rng(0)).data;
      // numpy rint: half to even (no fixture value sits within 1e-9 of a tie).
      const want = c.expected.map((e) => {
        const r = Math.round(e);
        return r - e === 0.5 && r % 2 === 1 ? r - 1 : r;
      });
      expect(Array.from(out), `${c.image.name} level ${c.level}`).toEqual(want);
    }
  });

  it('uses radius int(3σ + 0.5) and a kernel that sums to 1', () => {
    expect(gaussianKernel(0.1).radius).toBe(0);
    expect(gaussianKernel(0.2).radius).toBe(1);
    expect(gaussianKernel(1.5).radius).toBe(5);
    expect(gaussianKernel(5).radius).toBe(15);
    const k = gaussianKernel(2.3);
    const sum = k.weights.reduce((a, w, j) => a + (j === 0 ? w : 2 * w), 0);
    expect(Math.abs(sum - 1)).toBeLessThan(1e-12);
  });
});
