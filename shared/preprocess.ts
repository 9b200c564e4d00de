/**
 * Image → model input: channel conversion, resize, normalization. The same code runs at
 * compile time (evaluation, image-folder data sets) and at the edge, so a served model
 * sees exactly the pixels it was evaluated on.
 *
 * - Alpha is composited onto a background, black by default (Fashion-MNIST and MNIST draw
 *   objects on black; `background: 255` gives white). PIL's convert() drops alpha instead.
 * - RGB → gray is ITU-R 601-2 luma with PIL's fixed point (mode 'L'): bit-identical to PIL.
 * - Resizing is PIL's Image.resize(size, BILINEAR): a triangle filter whose support grows
 *   with the reduction factor, so downscaling averages over the whole source footprint
 *   (antialiased, like area/box averaging) instead of sampling 4 pixels; upscaling is
 *   ordinary bilinear with pixel centres at +0.5. Bit-identical to PIL (8-bit fixed point,
 *   horizontal pass first, rounded uint8 between passes).
 */
import type { RawImage } from './image.ts';
import type { InputSpec } from './manifest.ts';

export interface ChannelOptions {
  /** Background grey level that transparent pixels are composited onto: 0 (default) or 255. */
  background?: 0 | 255;
}

function checkImage(img: RawImage, what: string): void {
  const { width: w, height: h, channels: c, data } = img;
  if (!Number.isInteger(w) || w < 1 || !Number.isInteger(h) || h < 1) throw new RangeError(`${what}: bad size ${w}×${h}`);
  if (c !== 1 && c !== 3 && c !== 4) throw new RangeError(`${what}: channels must be 1, 3 or 4, got ${c}`);
  // By tag, not instanceof, so arrays from another realm (worker, iframe, vm) pass; canvas
  // and decoder output (Uint8ClampedArray) reads the same.
  const tag = Object.prototype.toString.call(data);
  if ((tag !== '[object Uint8Array]' && tag !== '[object Uint8ClampedArray]') || data.length !== w * h * c) {
    throw new RangeError(`${what}: data must be a Uint8Array of ${w}×${h}×${c} = ${w * h * c} bytes, got ${tag.slice(8, -1)} of ${data?.length}`);
  }
}

/** PIL's L24: (19595 R + 38470 G + 7471 B + 2^15) >> 16. */
const luma = (r: number, g: number, b: number) => (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;

/** Convert to 1 (gray) or 3 (RGB) channels; returns the input itself when nothing changes. */
export function toChannels(img: RawImage, c: 1 | 3, opts: ChannelOptions = {}): RawImage {
  checkImage(img, 'toChannels');
  if (c !== 1 && c !== 3) throw new RangeError(`toChannels: target channels must be 1 or 3, got ${c}`);
  const bg = opts.background ?? 0;
  if (bg !== 0 && bg !== 255) throw new RangeError(`toChannels: background must be 0 or 255, got ${bg}`);
  if (img.channels === c) return img;
  const n = img.width * img.height;
  const src = img.data;
  const out = new Uint8Array(n * c);
  if (img.channels === 1) {
    for (let i = 0; i < n; i++) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = src[i]!;
  } else {
    const step = img.channels;
    for (let i = 0; i < n; i++) {
      const s = i * step;
      let r = src[s]!, g = src[s + 1]!, b = src[s + 2]!;
      const a = step === 4 ? src[s + 3]! : 255;
      if (a !== 255) {
        // Rounded (v·a + bg·(255 − a)) / 255; opaque pixels (the common case) skip it.
        const ia = 255 - a;
        r = Math.floor((r * a + bg * ia + 127) / 255);
        g = Math.floor((g * a + bg * ia + 127) / 255);
        b = Math.floor((b * a + bg * ia + 127) / 255);
      }
      if (c === 1) out[i] = luma(r, g, b);
      else {
        out[3 * i] = r;
        out[3 * i + 1] = g;
        out[3 * i + 2] = b;
      }
    }
  }
  return { width: img.width, height: img.height, channels: c, data: out };
}

const PRECISION_BITS = 32 - 8 - 2;

interface Coeffs {
  /** First source index and tap count per output sample. */
  start: Int32Array;
  count: Int32Array;
  ksize: number;
  /** Fixed-point weights, ksize per output sample. */
  k: Int32Array;
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc for the bilinear (triangle) filter. */
function bilinearCoeffs(inSize: number, outSize: number): Coeffs {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 1.0 * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize), count = new Int32Array(outSize), k = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1.0 / filterScale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const t = Math.abs((x + xmin - center + 0.5) * ss);
      w[x] = t < 1 ? 1 - t : 0;
      ww += w[x]!;
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? w[x]! / ww : w[x]!;
      k[xx * ksize + x] = Math.trunc(v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
    }
    start[xx] = xmin;
    count[xx] = xmax;
  }
  return { start, count, ksize, k };
}

const clip8 = (ss: number) => {
  const v = ss >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
};

/** Resample along one axis: `lines` lines of `inLen` samples (strided) → `outLen` samples. */
function resampleAxis(
  src: Uint8Array, dst: Uint8Array, co: Coeffs, lines: number, outLen: number, c: number,
  srcLineStride: number, srcSampleStride: number, dstLineStride: number, dstSampleStride: number,
): void {
  const half = 1 << (PRECISION_BITS - 1);
  for (let l = 0; l < lines; l++) {
    for (let o = 0; o < outLen; o++) {
      const base = l * srcLineStride + co.start[o]! * srcSampleStride;
      const kOff = o * co.ksize, n = co.count[o]!;
      for (let ch = 0; ch < c; ch++) {
        let ss = half;
        for (let t = 0; t < n; t++) ss += src[base + t * srcSampleStride + ch]! * co.k[kOff + t]!;
        dst[l * dstLineStride + o * dstSampleStride + ch] = clip8(ss);
      }
    }
  }
}

/** Resize like PIL's Image.resize((w, h), Image.BILINEAR); see the module comment. */
export function resizeBilinear(img: RawImage, w: number, h: number): RawImage {
  checkImage(img, 'resizeBilinear');
  if (!Number.isInteger(w) || w < 1 || !Number.isInteger(h) || h < 1) throw new RangeError(`resizeBilinear: bad target size ${w}×${h}`);
  const c = img.channels;
  const W = img.width, H = img.height;
  if (w === W && h === H) return { ...img, data: img.data.slice() };
  let cur = img.data;
  let curW = W;
  const vert = bilinearCoeffs(H, h);
  // Like Pillow, the horizontal pass only covers the source rows the vertical pass reads.
  let rowFirst = 0;
  let rows = H;
  if (w !== W) {
    rowFirst = vert.start[0]!;
    rows = vert.start[h - 1]! + vert.count[h - 1]! - rowFirst;
    const hor = bilinearCoeffs(W, w);
    const tmp = new Uint8Array(w * rows * c);
    resampleAxis(cur.subarray(rowFirst * W * c), tmp, hor, rows, w, c, W * c, c, w * c, c);
    cur = tmp;
    curW = w;
  }
  if (h === H) return { width: w, height: h, channels: c, data: cur };
  const out = new Uint8Array(w * h * c);
  const shifted: Coeffs = { ...vert, start: vert.start.map((s) => s - rowFirst) };
  // Vertical: one "line" per output column position, samples strided by a row.
  for (let x = 0; x < w; x++) {
    resampleAxis(cur.subarray(x * c), out.subarray(x * c), shifted, 1, h, c, 0, curW * c, 0, w * c);
  }
  return { width: w, height: h, channels: c, data: out };
}

function checkNorm(mean: ArrayLike<number>, std: ArrayLike<number>, c: number, what: string): void {
  if (mean.length !== c || std.length !== c) throw new RangeError(`${what}: mean and std need ${c} entries, got ${mean.length} and ${std.length}`);
  for (let i = 0; i < c; i++) {
    if (!Number.isFinite(mean[i]!)) throw new RangeError(`${what}: mean[${i}] must be finite, got ${mean[i]}`);
    if (!(std[i]! > 0) || !Number.isFinite(std[i]!)) throw new RangeError(`${what}: std[${i}] must be positive, got ${std[i]}`);
  }
}

/** Per-channel lookup tables byte → (byte/255 − mean)/std, rounded once to float32. */
function normTables(mean: ArrayLike<number>, std: ArrayLike<number>, c: number): Float32Array[] {
  return Array.from({ length: c }, (_, ch) => {
    const t = new Float32Array(256);
    for (let v = 0; v < 256; v++) t[v] = (v / 255 - mean[ch]!) / std[ch]!;
    return t;
  });
}

/** NHWC uint8 batch → normalized NCHW float32 (ONNX input layout). */
export function batchToNCHW(
  images: Uint8Array, n: number, h: number, w: number, c: number, norm: { mean: ArrayLike<number>; std: ArrayLike<number> },
): Float32Array {
  if (images.length !== n * h * w * c) throw new RangeError(`batchToNCHW: ${images.length} bytes, expected ${n}×${h}×${w}×${c}`);
  checkNorm(norm.mean, norm.std, c, 'batchToNCHW');
  const tables = normTables(norm.mean, norm.std, c);
  const out = new Float32Array(images.length);
  const plane = h * w;
  for (let i = 0; i < n; i++) {
    const base = i * plane * c;
    for (let ch = 0; ch < c; ch++) {
      const t = tables[ch]!, o = base + ch * plane;
      for (let p = 0; p < plane; p++) out[o + p] = t[images[base + p * c + ch]!]!;
    }
  }
  return out;
}

/** NHWC uint8 batch → normalized NHWC float32 (tfjs input layout). */
export function batchToNHWC(
  images: Uint8Array, n: number, h: number, w: number, c: number, norm: { mean: ArrayLike<number>; std: ArrayLike<number> },
): Float32Array {
  if (images.length !== n * h * w * c) throw new RangeError(`batchToNHWC: ${images.length} bytes, expected ${n}×${h}×${w}×${c}`);
  checkNorm(norm.mean, norm.std, c, 'batchToNHWC');
  const tables = normTables(norm.mean, norm.std, c);
  const out = new Float32Array(images.length);
  for (let i = 0; i < images.length; i++) out[i] = tables[i % c]![images[i]!]!;
  return out;
}

/**
 * Decoded image → the model's input tensor data: [1, C, H, W] float32, normalized.
 * `opts.background` picks the alpha background (see `toChannels`).
 */
export function preprocess(img: RawImage, input: InputSpec, opts: ChannelOptions = {}): Float32Array {
  const sized = resizeBilinear(toChannels(img, input.channels, opts), input.width, input.height);
  return batchToNCHW(sized.data, 1, input.height, input.width, input.channels, input);
}
