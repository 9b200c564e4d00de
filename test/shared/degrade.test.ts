import { describe, expect, it } from 'vitest';
import { DEGRADATION_LEVELS, degrade, degradeBatch, identityLevel } from '../../shared/degrade.ts';
import type { RawImage } from '../../shared/image.ts';
import { DEGRADATION_KINDS, type DegradationKind } from '../../shared/manifest.ts';
import { Rng } from '../../shared/rng.ts';

function patternImage(w: number, h: number, c: 1 | 3 | 4, seed = 1): RawImage {
  const rng = new Rng(seed);
  const data = new Uint8Array(w * h * c);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + rng.int(0, 60)) & 255;
  return { width: w, height: h, channels: c, data };
}

function constantImage(w: number, h: number, c: 1 | 3 | 4, value: number): RawImage {
  return { width: w, height: h, channels: c, data: new Uint8Array(w * h * c).fill(value) };
}

/** A level in the middle of the range that really changes images. */
const MID: Record<DegradationKind, number> = { jpeg: 20, blur: 15, awgn: 20, saltpepper: 10 };

describe('degrade: contract', () => {
  it('declares the published level ranges', () => {
    expect(DEGRADATION_LEVELS).toEqual({
      jpeg: { min: 1, max: 101 }, blur: { min: 0, max: 50 }, awgn: { min: 0, max: 50 }, saltpepper: { min: 0, max: 25 },
    });
    expect(() => {
      (DEGRADATION_LEVELS.jpeg as { max: number }).max = 200;
    }).toThrow(TypeError);
  });

  it('identity levels (jpeg 101, others 0) return an equal copy and draw no random numbers', () => {
    const img = patternImage(9, 7, 3);
    for (const kind of DEGRADATION_KINDS) {
      const rng = new Rng(1);
      const out = degrade(img, kind, identityLevel(kind), rng);
      expect(out.data).toEqual(img.data);
      expect(out.data).not.toBe(img.data);
      expect(rng.nextU32()).toBe(new Rng(1).nextU32());
    }
  });

  it('out-of-range or fractional levels throw a RangeError naming the kind and range', () => {
    const img = patternImage(4, 4, 1);
    const bad: [DegradationKind, number][] = [['jpeg', 0], ['jpeg', 102], ['blur', -1], ['blur', 51], ['awgn', 51], ['saltpepper', 26], ['awgn', 2.5], ['blur', NaN]];
    for (const [kind, level] of bad) {
      const { min, max } = DEGRADATION_LEVELS[kind];
      expect(() => degrade(img, kind, level, new Rng(0))).toThrow(RangeError);
      expect(() => degrade(img, kind, level, new Rng(0))).toThrow(`${kind} level must be an integer in ${min}..${max}, got ${level}`);
    }
    expect(() => degrade(img, 'sharpen' as DegradationKind, 1, new Rng(0))).toThrow(/unknown degradation "sharpen"/);
  });

  it('rejects images whose data does not match their size', () => {
    const img = { width: 4, height: 4, channels: 3 as const, data: new Uint8Array(47) };
    expect(() => degrade(img, 'blur', 5, new Rng(0))).toThrow(/47 bytes, expected 1×4×4×3 = 48/);
    expect(() => degrade({ ...img, channels: 2 as 3, data: new Uint8Array(32) }, 'blur', 5, new Rng(0))).toThrow(/channels must be 1, 3 or 4/);
  });

  it('never modifies the input, works on 1×1 images, and keeps size and channels', () => {
    for (const kind of DEGRADATION_KINDS) {
      for (const c of [1, 3, 4] as const) {
        for (const [w, h] of [[1, 1], [5, 3], [28, 28]]) {
          const img = patternImage(w!, h!, c);
          const before = img.data.slice();
          const out = degrade(img, kind, DEGRADATION_LEVELS[kind].max === 101 ? 1 : DEGRADATION_LEVELS[kind].max, new Rng(2));
          expect(img.data).toEqual(before);
          expect([out.width, out.height, out.channels, out.data.length]).toEqual([w, h, c, w! * h! * c]);
        }
      }
    }
  });

  it('is deterministic for a seed; the random ones differ between seeds', () => {
    const img = patternImage(16, 12, 3);
    for (const kind of DEGRADATION_KINDS) {
      const a = degrade(img, kind, MID[kind], new Rng(5)).data;
      expect(degrade(img, kind, MID[kind], new Rng(5)).data).toEqual(a);
      const b = degrade(img, kind, MID[kind], new Rng(6)).data;
      if (kind === 'awgn' || kind === 'saltpepper') expect(b).not.toEqual(a);
      else expect(b).toEqual(a);
    }
  });

  it('leaves alpha untouched and degrades RGBA colour exactly like RGB', () => {
    const rgb = patternImage(10, 6, 3);
    const rgba: RawImage = { width: 10, height: 6, channels: 4, data: new Uint8Array(240) };
    for (let i = 0; i < 60; i++) {
      rgba.data.set(rgb.data.subarray(i * 3, i * 3 + 3), i * 4);
      rgba.data[i * 4 + 3] = (i * 11) & 255;
    }
    for (const kind of DEGRADATION_KINDS) {
      const outRgb = degrade(rgb, kind, MID[kind], new Rng(3)).data;
      const outRgba = degrade(rgba, kind, MID[kind], new Rng(3)).data;
      for (let i = 0; i < 60; i++) {
        expect(outRgba[i * 4 + 3]).toBe(rgba.data[i * 4 + 3]);
        if (kind !== 'awgn') expect(Array.from(outRgba.subarray(i * 4, i * 4 + 3))).toEqual(Array.from(outRgb.subarray(i * 3, i * 3 + 3)));
      }
    }
  });
});

describe('degradeBatch', () => {
  it('equals degrading each image in order with the same generator', () => {
    const n = 5, h = 7, w = 6, c = 3;
    const imgs = Array.from({ length: n }, (_, i) => patternImage(w, h, c, i + 10));
    const batch = new Uint8Array(n * h * w * c);
    imgs.forEach((img, i) => batch.set(img.data, i * h * w * c));
    for (const kind of DEGRADATION_KINDS) {
      const { min, max } = DEGRADATION_LEVELS[kind];
      const levels = [min, max, Math.floor((min + max) / 2), min + 1, max - 1];
      const rngA = new Rng(21), rngB = new Rng(21);
      const out = degradeBatch(batch, n, h, w, c, kind, levels, rngA);
      imgs.forEach((img, i) => {
        expect(out.subarray(i * h * w * c, (i + 1) * h * w * c)).toEqual(degrade(img, kind, levels[i]!, rngB).data);
      });
      expect(rngA.getState()).toEqual(rngB.getState());
    }
  });

  it('validates shape and levels with clear messages', () => {
    const batch = new Uint8Array(2 * 4 * 4);
    expect(() => degradeBatch(batch, 2, 4, 4, 1, 'blur', [1], new Rng(0))).toThrow('degradeBatch: 1 levels for 2 images');
    expect(() => degradeBatch(batch, 3, 4, 4, 1, 'blur', [1, 1, 1], new Rng(0))).toThrow(/32 bytes, expected 3×4×4×1 = 48/);
    expect(() => degradeBatch(batch, 2, 4, 4, 1, 'jpeg', [50, 0], new Rng(0))).toThrow('jpeg level of image 1 must be an integer in 1..101, got 0');
    expect(degradeBatch(new Uint8Array(0), 0, 4, 4, 1, 'awgn', [], new Rng(0))).toHaveLength(0);
  });
});

describe('JPEG', () => {
  it('loses more at lower quality, and keeps flat mid-grey blocks exact', () => {
    const img = patternImage(32, 32, 3, 4);
    const err = (q: number) => {
      const out = degrade(img, 'jpeg', q, new Rng(0)).data;
      return out.reduce((a, v, i) => a + Math.abs(v - img.data[i]!), 0) / out.length;
    };
    expect(err(10)).toBeGreaterThan(err(50));
    expect(err(50)).toBeGreaterThan(err(95));
    expect(degrade(constantImage(16, 16, 1, 128), 'jpeg', 1, new Rng(0)).data.every((v) => v === 128)).toBe(true);
  });
});

describe('Gaussian blur', () => {
  it('keeps constant images constant and preserves the mean of a periodic-free interior', () => {
    expect(degrade(constantImage(13, 9, 3, 77), 'blur', 50, new Rng(0)).data.every((v) => v === 77)).toBe(true);
    // One bright pixel spreads symmetrically and keeps (almost) all its mass when far from borders.
    const dot = constantImage(31, 31, 1, 0);
    dot.data[15 * 31 + 15] = 255;
    const out = degrade(dot, 'blur', 10, new Rng(0)).data; // σ = 1
    expect(out[15 * 31 + 14]).toBe(out[15 * 31 + 16]);
    expect(out[14 * 31 + 15]).toBe(out[16 * 31 + 15]);
    const centre = 1 / (1 + 2 * (Math.exp(-0.5) + Math.exp(-2) + Math.exp(-4.5))); // σ = 1, radius 3
    expect(out[15 * 31 + 15]).toBe(Math.round(255 * centre * centre));
    const mass = out.reduce((a, v) => a + v, 0);
    expect(Math.abs(mass - 255)).toBeLessThan(20); // rounding of the small tails
  });

  it('does not mix channels', () => {
    const img = constantImage(8, 8, 3, 0);
    for (let i = 0; i < 64; i++) img.data[i * 3 + 1] = 200;
    const out = degrade(img, 'blur', 30, new Rng(0)).data;
    for (let i = 0; i < 64; i++) expect([out[i * 3], out[i * 3 + 1], out[i * 3 + 2]]).toEqual([0, 200, 0]);
  });
});

describe('AWGN', () => {
  it('adds zero-mean noise with σ = level (plus rounding variance 1/12)', () => {
    const img = constantImage(256, 256, 1, 128);
    for (const level of [5, 20]) {
      const out = degrade(img, 'awgn', level, new Rng(level)).data;
      let s1 = 0, s2 = 0;
      for (const v of out) {
        s1 += v - 128;
        s2 += (v - 128) ** 2;
      }
      const n = out.length, mean = s1 / n, sd = Math.sqrt(s2 / n - mean * mean);
      const want = Math.sqrt(level * level + 1 / 12);
      expect(Math.abs(mean)).toBeLessThan((5 * want) / Math.sqrt(n));
      expect(Math.abs(sd - want)).toBeLessThan((5 * want) / Math.sqrt(2 * n));
    }
  });

  it('clips to 0..255: about half of a black image stays 0', () => {
    const out = degrade(constantImage(200, 200, 3, 0), 'awgn', 50, new Rng(8)).data;
    const zeros = out.reduce((a, v) => a + (v === 0 ? 1 : 0), 0) / out.length;
    const p = 0.503989; // Φ(0.5 / 50): the noise rounds to ≤ 0
    expect(Math.abs(zeros - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / out.length));
    const white = degrade(constantImage(200, 200, 3, 255), 'awgn', 50, new Rng(9)).data;
    const full = white.reduce((a, v) => a + (v === 255 ? 1 : 0), 0) / white.length;
    expect(Math.abs(full - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / white.length));
  });

  it('draws independent noise per channel', () => {
    const out = degrade(constantImage(100, 100, 3, 128), 'awgn', 30, new Rng(10)).data;
    let same = 0;
    for (let i = 0; i < out.length; i += 3) if (out[i] === out[i + 1] && out[i] === out[i + 2]) same++;
    expect(same / 10_000).toBeLessThan(0.01);
  });
});

describe('salt-and-pepper', () => {
  const grey = constantImage(200, 200, 3, 128);
  const count = (data: Uint8Array, v: number) => {
    let k = 0;
    for (let i = 0; i < data.length; i += 3) if (data[i] === v) k++;
    return k;
  };

  it('sets whole pixels to 0 or 255, each with probability p/2, and leaves the rest', () => {
    for (const level of [1, 10, 25]) {
      const out = degrade(grey, 'saltpepper', level, new Rng(level)).data;
      const n = 40_000, half = level / 200;
      const bound = 5 * Math.sqrt(n * half * (1 - half));
      expect(Math.abs(count(out, 0) - n * half)).toBeLessThan(bound);
      expect(Math.abs(count(out, 255) - n * half)).toBeLessThan(bound);
      for (let i = 0; i < out.length; i += 3) {
        const px = [out[i], out[i + 1], out[i + 2]];
        if (!(px.every((v) => v === 0) || px.every((v) => v === 255) || px.every((v) => v === 128))) throw new Error(`pixel ${i / 3} is ${px}`);
      }
    }
  });

  it('saltValue 1 reproduces the published code (salt written as 1)', () => {
    const out = degrade(grey, 'saltpepper', 20, new Rng(4), { saltValue: 1 }).data;
    const ref = degrade(grey, 'saltpepper', 20, new Rng(4)).data;
    expect(count(out, 255)).toBe(0);
    expect(count(out, 1)).toBe(count(ref, 255));
    expect(count(out, 0)).toBe(count(ref, 0));
    expect(() => degrade(grey, 'saltpepper', 20, new Rng(4), { saltValue: 7 as 1 })).toThrow(/saltValue must be 255 or 1/);
  });
});
