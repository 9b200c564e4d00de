/**
 * Training augmentation on uint8 NHWC batches. Random choices are drawn first (as plain
 * arrays) and applied separately, so one draw can be applied to a clean and a degraded
 * copy of the same images: FusionDistill's teacher sees the clean image under exactly
 * the flip and crop its student sees.
 */
import type { Rng } from '../../shared/rng.ts';

export interface AugmentConfig {
  /** Horizontal flip with probability ½ (on for Fashion-MNIST and CIFAR, off for digits). */
  flip: boolean;
  /** Zero-pad by this many pixels, then crop back to the original size at a random offset (0 = off). */
  pad: number;
  /** Side of the square Cutout hole in pixels, applied after normalization (0 = off). */
  cutout: number;
}

export const NO_AUGMENT: AugmentConfig = { flip: false, pad: 0, cutout: 0 };

/** Per-image flip and crop decisions for a batch. */
export interface FlipCrop {
  flip: Uint8Array;
  /** Crop offset relative to the unpadded image, in [-pad, pad]: output(y, x) = input(y + dy, x + dx). */
  dy: Int16Array;
  dx: Int16Array;
}

export interface BatchDims {
  n: number;
  height: number;
  width: number;
  channels: number;
}

export function sampleFlipCrop(n: number, config: AugmentConfig, rng: Rng): FlipCrop {
  const draw: FlipCrop = { flip: new Uint8Array(n), dy: new Int16Array(n), dx: new Int16Array(n) };
  for (let i = 0; i < n; i++) {
    draw.flip[i] = config.flip && rng.float() < 0.5 ? 1 : 0;
    // A pad-k random crop picks the top-left corner uniformly in [0, 2k] of the padded image.
    draw.dy[i] = config.pad > 0 ? rng.int(0, 2 * config.pad) - config.pad : 0;
    draw.dx[i] = config.pad > 0 ? rng.int(0, 2 * config.pad) - config.pad : 0;
  }
  return draw;
}

/** Mirrors the images whose `flip` is set; returns a new array. */
export function applyFlip(images: Uint8Array, dims: BatchDims, flip: Uint8Array): Uint8Array {
  const { n, height: h, width: w, channels: c } = dims;
  checkBatch(images, dims);
  const out = new Uint8Array(images);
  const row = w * c;
  for (let i = 0; i < n; i++) {
    if (!flip[i]) continue;
    for (let y = 0; y < h; y++) {
      const base = (i * h + y) * row;
      for (let x = 0; x < w; x++) {
        const src = base + (w - 1 - x) * c;
        const dst = base + x * c;
        for (let k = 0; k < c; k++) out[dst + k] = images[src + k]!;
      }
    }
  }
  return out;
}

/** Shifts each image by its (dy, dx), filling uncovered pixels with 0 (= pad, then crop); returns a new array. */
export function applyCrop(images: Uint8Array, dims: BatchDims, dy: Int16Array, dx: Int16Array): Uint8Array {
  const { n, height: h, width: w, channels: c } = dims;
  checkBatch(images, dims);
  const out = new Uint8Array(images.length);
  const row = w * c;
  for (let i = 0; i < n; i++) {
    const oy = dy[i]!;
    const ox = dx[i]!;
    const x0 = Math.max(0, -ox);
    const x1 = Math.min(w, w - ox);
    if (x1 <= x0) continue;
    for (let y = 0; y < h; y++) {
      const sy = y + oy;
      if (sy < 0 || sy >= h) continue;
      const dst = (i * h + y) * row + x0 * c;
      const src = (i * h + sy) * row + (x0 + ox) * c;
      out.set(images.subarray(src, src + (x1 - x0) * c), dst);
    }
  }
  return out;
}

/** Cutout hole centres, uniform over the image (DeVries & Taylor): the hole may be clipped by the border. */
export function sampleCutout(n: number, dims: { height: number; width: number }, rng: Rng): { cy: Int16Array; cx: Int16Array } {
  const cy = new Int16Array(n);
  const cx = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    cy[i] = rng.int(0, dims.height - 1);
    cx[i] = rng.int(0, dims.width - 1);
  }
  return { cy, cx };
}

/** Zeroes a size×size square (all channels) around each centre, in place, on a normalized float NHWC batch. */
export function applyCutout(x: Float32Array, dims: BatchDims, size: number, cy: Int16Array, cx: Int16Array): void {
  const { n, height: h, width: w, channels: c } = dims;
  if (x.length !== n * h * w * c) throw new Error(`cutout: batch has ${x.length} values, expected ${n}×${h}×${w}×${c}`);
  const half = Math.floor(size / 2);
  for (let i = 0; i < n; i++) {
    const y0 = Math.max(0, cy[i]! - half);
    const y1 = Math.min(h, cy[i]! - half + size);
    const x0 = Math.max(0, cx[i]! - half);
    const x1 = Math.min(w, cx[i]! - half + size);
    for (let y = y0; y < y1; y++) x.fill(0, ((i * h + y) * w + x0) * c, ((i * h + y) * w + x1) * c);
  }
}

/** (pixel/255 − mean[c]) / std[c], NHWC uint8 → float32: the same normalization the exported model's input spec names. */
export function normalizeBatch(images: Uint8Array, channels: number, mean: readonly number[], std: readonly number[]): Float32Array {
  if (mean.length !== channels || std.length !== channels) {
    throw new Error(`normalize: need ${channels} mean/std values, got ${mean.length}/${std.length}`);
  }
  const lut = new Float32Array(256 * channels);
  for (let k = 0; k < channels; k++) for (let v = 0; v < 256; v++) lut[k * 256 + v] = (v / 255 - mean[k]!) / std[k]!;
  const out = new Float32Array(images.length);
  for (let i = 0; i < images.length; i++) out[i] = lut[(i % channels) * 256 + images[i]!]!;
  return out;
}

function checkBatch(images: Uint8Array, { n, height, width, channels }: BatchDims): void {
  if (images.length !== n * height * width * channels) {
    throw new Error(`augment: batch has ${images.length} bytes, expected ${n}×${height}×${width}×${channels}`);
  }
}
