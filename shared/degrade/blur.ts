/**
 * Gaussian blur as scipy.ndimage.gaussian_filter(img.astype(float64), sigma=(σ, σ, 0),
 * mode='nearest', truncate=3.0) computes it: the same normalized kernel (numpy's pairwise
 * sum), rows (axis 0) then columns (axis 1), the same summation order as scipy's symmetric
 * correlate1d, so the float results agree to the last bit or two. Channels are independent.
 */

export interface BlurKernel {
  radius: number;
  /** weights[j] for offset ±j, j = 0..radius. */
  weights: Float64Array;
}

/** numpy's pairwise summation for n ≤ 128 (8 strided partial sums), so the kernel normalizes identically. */
function numpySum(a: number[]): number {
  const n = a.length;
  if (n < 8) {
    let s = 0;
    for (const v of a) s += v;
    return s;
  }
  const r = a.slice(0, 8);
  let i = 8;
  for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j]! += a[i + j]!;
  let s = r[0]! + r[1]! + (r[2]! + r[3]!) + (r[4]! + r[5]! + (r[6]! + r[7]!));
  for (; i < n; i++) s += a[i]!;
  return s;
}

export function gaussianKernel(sigma: number, truncate = 3.0): BlurKernel {
  const radius = Math.trunc(truncate * sigma + 0.5);
  if (radius === 0) return { radius, weights: Float64Array.of(1) };
  const s2 = sigma * sigma;
  const phi: number[] = [];
  for (let x = -radius; x <= radius; x++) phi.push(Math.exp((-0.5 / s2) * x * x));
  const sum = numpySum(phi);
  const weights = new Float64Array(radius + 1);
  for (let j = 0; j <= radius; j++) weights[j] = phi[radius + j]! / sum;
  return { radius, weights };
}

/** One 'nearest'-border symmetric correlation of `n` samples read/written with strides. */
function correlateLine(
  src: Float64Array, srcOff: number, srcStep: number,
  dst: Float64Array, dstOff: number, dstStep: number,
  n: number, k: BlurKernel, line: Float64Array,
): void {
  const r = k.radius, w = k.weights;
  // line holds the input padded by r replicated samples on each side.
  for (let i = 0; i < n; i++) line[r + i] = src[srcOff + i * srcStep]!;
  const first = line[r]!, last = line[r + n - 1]!;
  for (let j = 0; j < r; j++) {
    line[j] = first;
    line[r + n + j] = last;
  }
  for (let i = 0; i < n; i++) {
    const c = r + i;
    let acc = line[c]! * w[0]!;
    for (let j = r; j >= 1; j--) acc += (line[c - j]! + line[c + j]!) * w[j]!;
    dst[dstOff + i * dstStep] = acc;
  }
}

/**
 * Blur the `channels` planes of interleaved float samples (h × w × step, first `channels`
 * of every `step` samples) in place. `scratch` must hold h·w·step values.
 */
export function gaussianBlurFloat(
  data: Float64Array, w: number, h: number, step: number, channels: number, k: BlurKernel, scratch: Float64Array,
): void {
  if (k.radius === 0) return;
  const line = new Float64Array(Math.max(w, h) + 2 * k.radius);
  for (let c = 0; c < channels; c++) {
    for (let x = 0; x < w; x++) correlateLine(data, x * step + c, w * step, scratch, x * step + c, w * step, h, k, line);
    for (let y = 0; y < h; y++) correlateLine(scratch, y * w * step + c, step, data, y * w * step + c, step, w, k, line);
  }
}

/** Round half to even, as numpy's rint; blur outputs are convex combinations, so no clamp is needed. */
export function rintToUint8(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  const r = d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
  return r < 0 ? 0 : r > 255 ? 255 : r;
}
