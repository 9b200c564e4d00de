import { describe, expect, it } from 'vitest';
import type { RawImage } from '../../shared/image.ts';
import type { InputSpec } from '../../shared/manifest.ts';
import { batchToNCHW, batchToNHWC, preprocess, resizeBilinear, toChannels } from '../../shared/preprocess.ts';
import { reference, toRaw } from './reference.ts';

const img = (width: number, height: number, channels: 1 | 3 | 4, values: number[]): RawImage => ({ width, height, channels, data: Uint8Array.from(values) });

describe('toChannels', () => {
  it('RGB → gray is bit-identical to PIL convert("L")', () => {
    for (const c of reference.gray) expect(Array.from(toChannels(toRaw(c.image), 1).data)).toEqual(c.expected);
  });

  it('gray → RGB replicates; same channel count returns the input', () => {
    const g = img(2, 1, 1, [10, 200]);
    expect(Array.from(toChannels(g, 3).data)).toEqual([10, 10, 10, 200, 200, 200]);
    expect(toChannels(g, 1)).toBe(g);
  });

  it('composites RGBA onto black by default, or white', () => {
    const rgba = img(3, 1, 4, [200, 100, 50, 255, 200, 100, 50, 0, 200, 100, 50, 128]);
    expect(Array.from(toChannels(rgba, 3).data)).toEqual([200, 100, 50, 0, 0, 0, 100, 50, 25]);
    // 200·128/255 = 100.39 → 100; white: (200·128 + 255·127)/255 = 227.4 → 227.
    expect(Array.from(toChannels(rgba, 3, { background: 255 }).data)).toEqual([200, 100, 50, 255, 255, 255, 227, 177, 152]);
    const gray = toChannels(rgba, 1).data;
    expect(gray[1]).toBe(0);
    expect(gray[0]).toBe(toChannels(img(1, 1, 3, [200, 100, 50]), 1).data[0]);
  });

  it('accepts Uint8ClampedArray data (canvas ImageData, image decoders)', () => {
    const clamped = { width: 1, height: 1, channels: 4 as const, data: Uint8ClampedArray.of(200, 100, 50, 255) as unknown as Uint8Array };
    expect(Array.from(toChannels(clamped, 3).data)).toEqual([200, 100, 50]);
    expect(() => toChannels({ width: 1, height: 1, channels: 1, data: [7] as unknown as Uint8Array }, 3)).toThrow(/got Array of 1/);
  });

  it('rejects bad images and targets with clear messages', () => {
    expect(() => toChannels(img(2, 2, 3, [1, 2, 3]), 1)).toThrow(/toChannels: data must be a Uint8Array of 2×2×3 = 12 bytes, got Uint8Array of 3/);
    expect(() => toChannels(img(1, 1, 3, [1, 2, 3]), 4 as 3)).toThrow(/target channels must be 1 or 3/);
    expect(() => toChannels(img(1, 1, 4, [1, 2, 3, 4]), 3, { background: 7 as 0 })).toThrow(/background must be 0 or 255/);
  });
});

describe('resizeBilinear', () => {
  it('is bit-identical to PIL Image.resize(BILINEAR) up, down and non-uniformly', () => {
    for (const c of reference.resize) {
      const out = resizeBilinear(toRaw(c.image), c.width, c.height);
      expect([out.width, out.height, out.channels]).toEqual([c.width, c.height, c.image.channels]);
      expect(Array.from(out.data), c.image.name).toEqual(c.expected);
    }
  });

  it('averages the whole footprint when shrinking (no aliasing of a fine checkerboard)', () => {
    const n = 64;
    const data = new Uint8Array(n * n).map((_, i) => (((i % n) + Math.floor(i / n)) % 2 ? 255 : 0));
    const out = resizeBilinear({ width: n, height: n, channels: 1, data }, 8, 8).data;
    for (const v of out) expect(Math.abs(v - 127.5)).toBeLessThan(2);
  });

  it('returns a copy at the same size and validates the target', () => {
    const g = img(2, 2, 1, [1, 2, 3, 4]);
    const same = resizeBilinear(g, 2, 2);
    expect(same.data).toEqual(g.data);
    expect(same.data).not.toBe(g.data);
    expect(() => resizeBilinear(g, 0, 2)).toThrow(/bad target size 0×2/);
  });
});

describe('normalization', () => {
  it('batchToNCHW transposes NHWC and normalizes (x/255 − mean)/std per channel', () => {
    // 2 images of 1×2 pixels, RGB.
    const bytes = Uint8Array.from([0, 51, 255, 10, 20, 30, 100, 110, 120, 200, 210, 220]);
    const mean = [0.5, 0.4, 0.3], std = [0.5, 0.25, 0.2];
    const out = batchToNCHW(bytes, 2, 1, 2, 3, { mean, std });
    const norm = (v: number, ch: number) => Math.fround((v / 255 - mean[ch]!) / std[ch]!);
    // image 0, channel 0 = [0, 10]; channel 1 = [51, 20]; channel 2 = [255, 30]
    expect(Array.from(out.subarray(0, 6))).toEqual([norm(0, 0), norm(10, 0), norm(51, 1), norm(20, 1), norm(255, 2), norm(30, 2)]);
    expect(out[6]).toBe(norm(100, 0));
    const nhwc = batchToNHWC(bytes, 2, 1, 2, 3, { mean, std });
    expect(nhwc[1]).toBe(norm(51, 1));
    expect(nhwc[11]).toBe(norm(220, 2));
  });

  it('rejects mismatched sizes and bad mean/std', () => {
    expect(() => batchToNCHW(new Uint8Array(5), 1, 2, 2, 1, { mean: [0], std: [1] })).toThrow(/5 bytes, expected 1×2×2×1/);
    expect(() => batchToNCHW(new Uint8Array(4), 1, 2, 2, 1, { mean: [0, 0], std: [1] })).toThrow(/need 1 entries, got 2 and 1/);
    expect(() => batchToNHWC(new Uint8Array(4), 1, 2, 2, 1, { mean: [0], std: [0] })).toThrow(/std\[0\] must be positive/);
  });
});

describe('preprocess', () => {
  const spec = (channels: 1 | 3, h: number, w: number, mean: number[], std: number[]): InputSpec => ({
    name: 'input', layout: 'NCHW', height: h, width: w, channels, mean, std,
  });

  it('converts, resizes and normalizes into one NCHW tensor', () => {
    const rgba: RawImage = { width: 40, height: 30, channels: 4, data: new Uint8Array(40 * 30 * 4) };
    for (let i = 0; i < 40 * 30; i++) rgba.data.set([255, 0, 0, 255], i * 4); // opaque red
    const x = preprocess(rgba, spec(3, 8, 8, [0, 0, 0], [1, 1, 1]));
    expect(x).toHaveLength(3 * 64);
    expect(Array.from(new Set(x.subarray(0, 64)))).toEqual([1]);
    expect(Array.from(new Set(x.subarray(64)))).toEqual([0]);
    const gray = preprocess(rgba, spec(1, 28, 28, [0.286], [0.353]));
    expect(gray).toHaveLength(784);
    expect(gray[0]).toBe(Math.fround((76 / 255 - 0.286) / 0.353)); // PIL luma of pure red is 76
  });

  it('equals the step-by-step pipeline on a reference image', () => {
    const c = reference.resize.find((r) => r.image.name === 'rgb10x12_up')!;
    const x = preprocess(toRaw(c.image), spec(3, 32, 32, [0.1, 0.2, 0.3], [0.5, 0.6, 0.7]));
    const want = batchToNCHW(Uint8Array.from(c.expected), 1, 32, 32, 3, { mean: [0.1, 0.2, 0.3], std: [0.5, 0.6, 0.7] });
    expect(x).toEqual(want);
  });
});
