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

/**
 * Blur the `channels` planes of interleaved float samples (h × w × step, first `channels`
 * of every `step` samples) in place. `scratch` must hold h·w·step values.
 * Every output is center·w0 + Σ_{j=r..1} (left_j + right_j)·w_j in that order, as scipy's
 * correlate1d sums; the vertical pass runs along whole rows so the inner loop is contiguous.
 */
export function gaussianBlurFloat(
  data: Float64Array, w: number, h: number, step: number, channels: number, k: BlurKernel, scratch: Float64Array,
): void {
  const r = k.radius, wt = k.weights;
  if (r === 0) return;
  const rowLen = w * step;
  // Axis 0 (vertical), data → scratch; rows outside 0..h−1 are the edge rows ('nearest').
  const w0 = wt[0]!;
  const up = new Int32Array(r + 1), down = new Int32Array(r + 1);
  for (let y = 0; y < h; y++) {
    const o = y * rowLen;
    for (let j = 1; j <= r; j++) {
      up[j] = Math.max(y - j, 0) * rowLen;
      down[j] = Math.min(y + j, h - 1) * rowLen;
    }
    for (let x = 0; x < rowLen; x++) {
      let acc = data[o + x]! * w0;
      for (let j = r; j >= 1; j--) acc += (data[up[j]! + x]! + data[down[j]! + x]!) * wt[j]!;
      scratch[o + x] = acc;
    }
  }
  // Axis 1 (horizontal), scratch → data, one padded line per row and channel.
  const line = new Float64Array(w + 2 * r);
  for (let y = 0; y < h; y++) {
    const o = y * rowLen;
    for (let c = 0; c < channels; c++) {
      for (let x = 0; x < w; x++) line[r + x] = scratch[o + x * step + c]!;
      line.fill(line[r]!, 0, r);
      line.fill(line[r + w - 1]!, r + w);
      for (let x = 0; x < w; x++) {
        const m = r + x;
        let acc = line[m]! * w0;
        for (let j = r; j >= 1; j--) acc += (line[m - j]! + line[m + j]!) * wt[j]!;
        data[o + x * step + c] = acc;
      }
    }
  }
}

/** Round half to even, as numpy's rint; blur outputs are convex combinations, so no clamp is needed. */
export function rintToUint8(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  const r = d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
  return r < 0 ? 0 : r > 255 ? 255 : r;
}
