/**
 * The four degradations of FusionDistill (see docs: fusiondistill.md) on uint8 images with
 * 1, 3 or 4 channels. A 4th channel is alpha and is never degraded (copied as is).
 * Levels are integers: jpeg quality 1..101 (101 = untouched), blur 0..50 (σ = level/10),
 * awgn 0..50 (σ on 0–255), saltpepper 0..25 (p = level/100). Level 0 of blur/awgn/
 * saltpepper and jpeg 101 return an unchanged copy without drawing random numbers.
 */
import type { DegradationKind } from '../manifest.ts';
import { DEGRADATION_KINDS } from '../manifest.ts';
import type { RawImage } from '../image.ts';
import type { Rng } from '../rng.ts';
import { gaussianBlurFloat, gaussianKernel, rintToUint8, type BlurKernel } from './blur.ts';
import { jpegRoundTrip } from './jpeg.ts';

/** Frozen: validation reads these, so a caller must not be able to widen them by accident. */
export const DEGRADATION_LEVELS: Record<DegradationKind, { min: number; max: number }> = Object.freeze({
  jpeg: Object.freeze({ min: 1, max: 101 }),
  blur: Object.freeze({ min: 0, max: 50 }),
  awgn: Object.freeze({ min: 0, max: 50 }),
  saltpepper: Object.freeze({ min: 0, max: 25 }),
});

export interface DegradeOptions {
  /**
   * Value written for "salt" pixels. 255 is salt-and-pepper as defined; 1 reproduces the
   * published FusionDistill code, whose noise is effectively pepper-only.
   */
  saltValue?: 255 | 1;
}

/** The level at which a degradation leaves images unchanged. */
export function identityLevel(kind: DegradationKind): number {
  return kind === 'jpeg' ? 101 : 0;
}

function checkKind(kind: string): asserts kind is DegradationKind {
  if (!(DEGRADATION_KINDS as readonly string[]).includes(kind)) {
    throw new RangeError(`unknown degradation "${kind}": expected one of ${DEGRADATION_KINDS.join(', ')}`);
  }
}

function checkLevel(kind: DegradationKind, level: number, where = ''): void {
  const { min, max } = DEGRADATION_LEVELS[kind];
  if (!Number.isInteger(level) || level < min || level > max) {
    throw new RangeError(`${kind} level${where} must be an integer in ${min}..${max}, got ${level}`);
  }
}

function checkShape(what: string, length: number, n: number, h: number, w: number, c: number): void {
  for (const [name, v] of [['count', n], ['height', h], ['width', w]] as const) {
    if (!Number.isInteger(v) || v < (name === 'count' ? 0 : 1)) throw new RangeError(`${what}: ${name} must be a positive integer, got ${v}`);
  }
  if (c !== 1 && c !== 3 && c !== 4) throw new RangeError(`${what}: channels must be 1, 3 or 4, got ${c}`);
  if (length !== n * h * w * c) {
    throw new RangeError(`${what}: data has ${length} bytes, expected ${n}×${h}×${w}×${c} = ${n * h * w * c}`);
  }
}

const blurKernels = new Map<number, BlurKernel>();
function blurKernel(level: number): BlurKernel {
  let k = blurKernels.get(level);
  if (!k) blurKernels.set(level, (k = gaussianKernel(level / 10, 3.0)));
  return k;
}

/** Scratch buffers reused across calls (a batch is degraded image by image). */
let floatBuf = new Float64Array(0);
let floatScratch = new Float64Array(0);

function blurInto(src: Uint8Array, dst: Uint8Array, w: number, h: number, c: number, level: number): void {
  const size = w * h * c;
  if (floatBuf.length < size) {
    floatBuf = new Float64Array(size);
    floatScratch = new Float64Array(size);
  }
  const f = floatBuf;
  for (let i = 0; i < size; i++) f[i] = src[i]!;
  gaussianBlurFloat(f, w, h, c, c === 4 ? 3 : c, blurKernel(level), floatScratch);
  for (let i = 0; i < size; i++) dst[i] = rintToUint8(f[i]!);
  if (c === 4) for (let i = 3; i < size; i += 4) dst[i] = src[i]!;
}

let noiseBuf = new Float64Array(0);

function awgnInto(src: Uint8Array, dst: Uint8Array, w: number, h: number, c: number, sigma: number, rng: Rng): void {
  const size = w * h * c;
  const colour = c === 4 ? 3 : c;
  const draws = w * h * colour;
  if (noiseBuf.length < draws) noiseBuf = new Float64Array(draws);
  const noise = noiseBuf.subarray(0, draws);
  rng.fillGaussian(noise); // one normal per colour sample, in memory order
  if (c !== 4) {
    for (let i = 0; i < size; i++) {
      const v = Math.round(src[i]! + sigma * noise[i]!);
      dst[i] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
    return;
  }
  for (let p = 0, k = 0; p < size; p += 4) {
    for (let ch = 0; ch < 3; ch++, k++) {
      const v = Math.round(src[p + ch]! + sigma * noise[k]!);
      dst[p + ch] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
    dst[p + 3] = src[p + 3]!;
  }
}

function saltPepperInto(src: Uint8Array, dst: Uint8Array, w: number, h: number, c: number, level: number, rng: Rng, salt: number): void {
  // One uniform u32 per pixel: below pepperBelow → 0, below saltBelow → salt (p/2 each).
  const pepperBelow = Math.round((level / 200) * 4294967296);
  const saltBelow = 2 * pepperBelow;
  const colour = c === 4 ? 3 : c;
  dst.set(src.subarray(0, w * h * c));
  for (let p = 0, i = 0; p < w * h; p++, i += c) {
    const u = rng.nextU32();
    if (u >= saltBelow) continue;
    const v = u < pepperBelow ? 0 : salt;
    for (let k = 0; k < colour; k++) dst[i + k] = v;
  }
}

function degradeOne(
  src: Uint8Array, dst: Uint8Array, w: number, h: number, c: number,
  kind: DegradationKind, level: number, rng: Rng, opts: DegradeOptions,
): void {
  if (level === identityLevel(kind)) {
    dst.set(src);
    return;
  }
  switch (kind) {
    case 'jpeg':
      return jpegRoundTrip(src, dst, w, h, c, level);
    case 'blur':
      return blurInto(src, dst, w, h, c, level);
    case 'awgn':
      return awgnInto(src, dst, w, h, c, level, rng);
    case 'saltpepper':
      return saltPepperInto(src, dst, w, h, c, level, rng, opts.saltValue ?? 255);
  }
}

function checkOptions(opts: DegradeOptions): void {
  if (opts.saltValue !== undefined && opts.saltValue !== 255 && opts.saltValue !== 1) {
    throw new RangeError(`saltValue must be 255 or 1, got ${opts.saltValue}`);
  }
}

/** Degrade one image; returns a new image, the input is not modified. */
export function degrade(img: RawImage, kind: DegradationKind, level: number, rng: Rng, opts: DegradeOptions = {}): RawImage {
  checkKind(kind);
  checkLevel(kind, level);
  checkOptions(opts);
  checkShape('degrade image', img.data.length, 1, img.height, img.width, img.channels);
  const out = new Uint8Array(img.data.length);
  degradeOne(img.data, out, img.width, img.height, img.channels, kind, level, rng, opts);
  return { width: img.width, height: img.height, channels: img.channels, data: out };
}

/**
 * Degrade a batch of n images, NHWC uint8, image i at levels[i]; returns a new array.
 * Draws random numbers image by image, so it equals calling `degrade` on each in order.
 */
export function degradeBatch(
  images: Uint8Array, n: number, h: number, w: number, c: number,
  kind: DegradationKind, levels: ArrayLike<number>, rng: Rng, opts: DegradeOptions = {},
): Uint8Array {
  checkKind(kind);
  checkOptions(opts);
  checkShape('degradeBatch', images.length, n, h, w, c);
  if (levels.length !== n) throw new RangeError(`degradeBatch: ${levels.length} levels for ${n} images`);
  for (let i = 0; i < n; i++) checkLevel(kind, levels[i]!, ` of image ${i}`);
  const out = new Uint8Array(images.length);
  const size = h * w * c;
  for (let i = 0; i < n; i++) {
    const o = i * size;
    degradeOne(images.subarray(o, o + size), out.subarray(o, o + size), w, h, c, kind, levels[i]!, rng, opts);
  }
  return out;
}
