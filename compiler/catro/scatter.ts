/**
 * Streaming per-channel class scatter of one activation tensor (docs/catro.md §1).
 *
 * Channel j of sample i is the vector x_i^(j) of that channel over all spatial positions
 * (or its global average, with `pooling: 'gap'`). Per channel:
 *   b_j = Σ_c n_c ‖μ_c^(j) − μ^(j)‖²          (between-class scatter)
 *   w_j = Σ_c Σ_{i∈c} ‖x_i^(j) − μ_c^(j)‖²    (within-class scatter)
 * Accumulated from per-class per-position sums and sums of squares. Float64 throughout:
 * w comes from Σx² − (Σx)²/n, which cancels badly in float32.
 *
 * b_j equals (1/N) Σ_{c<d} n_c n_d ‖μ_c^(j) − μ_d^(j)‖², a sum over class pairs in which the
 * pairs far apart weigh most. `between: 'pairwise'` (not in docs/catro.md's spec) weighs each
 * pair by ω(Δ_cd) = erf(Δ_cd / 2√2) / (2Δ_cd²), with Δ_cd the distance of the two class means
 * over the whole layer in units of its pooled within-class deviation: the approximate
 * pairwise accuracy criterion (Loog, Duin and Haeb-Umbach, 2001). Pairs already well
 * apart stop outweighing the confusable ones, so channels that part the near classes can
 * win against one that parts an outlying class from the rest. An option, not the default: on
 * the shipped model it did not lift the weak tops start it was tried for (docs/catro.md,
 * "Five seeds on the shipped model").
 */

export type ScatterPooling = 'flatten' | 'gap';
/** How class means enter the between-class scatter: around the grand mean (the spec), or pairwise weighted. */
export type BetweenClass = 'centroid' | 'pairwise';

export interface ScatterShape {
  /** Number of class slots; labels passed to `add` lie in [0, classes). */
  classes: number;
  height: number;
  width: number;
  channels: number;
  pooling?: ScatterPooling;
}

export interface Scatter {
  b: Float64Array;
  w: Float64Array;
}

export class ScatterAccumulator {
  readonly classes: number;
  readonly channels: number;
  readonly pooling: ScatterPooling;
  /** Spatial positions of the input tensor. */
  readonly positions: number;
  /** Positions kept per sample after pooling (1 for gap). */
  private readonly kept: number;
  private readonly sums: Float64Array;
  private readonly sumSquares: Float64Array;
  private readonly counts: Float64Array;

  constructor(shape: ScatterShape) {
    const { classes, height, width, channels } = shape;
    for (const [field, v] of Object.entries({ classes, height, width, channels })) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`ScatterAccumulator: ${field} must be a positive integer, got ${v}`);
    }
    this.classes = classes;
    this.channels = channels;
    this.pooling = shape.pooling ?? 'flatten';
    this.positions = height * width;
    this.kept = this.pooling === 'gap' ? 1 : this.positions;
    const size = classes * this.kept * channels;
    this.sums = new Float64Array(size);
    this.sumSquares = new Float64Array(size);
    this.counts = new Float64Array(classes);
  }

  /** Adds a batch of NHWC activations, one class slot per sample. */
  add(activations: ArrayLike<number>, labels: ArrayLike<number>): void {
    const n = labels.length;
    const perSample = this.positions * this.channels;
    if (activations.length !== n * perSample) {
      throw new Error(
        `ScatterAccumulator.add: ${n} labels need ${n * perSample} activations ` +
          `(${this.positions} positions × ${this.channels} channels each), got ${activations.length}`,
      );
    }
    const C = this.channels;
    const gapRow = new Float64Array(C);
    for (let i = 0; i < n; i++) {
      const c = labels[i];
      if (!Number.isInteger(c) || c < 0 || c >= this.classes) {
        throw new Error(`ScatterAccumulator.add: label ${i} is ${c}, outside [0, ${this.classes})`);
      }
      this.counts[c]++;
      const src = i * perSample;
      if (this.pooling === 'gap') {
        gapRow.fill(0);
        for (let p = 0; p < this.positions; p++) {
          for (let j = 0; j < C; j++) gapRow[j] += activations[src + p * C + j];
        }
        const dst = c * C;
        for (let j = 0; j < C; j++) {
          const v = gapRow[j] / this.positions;
          this.sums[dst + j] += v;
          this.sumSquares[dst + j] += v * v;
        }
      } else {
        const dst = c * perSample;
        for (let q = 0; q < perSample; q++) {
          const v = activations[src + q];
          this.sums[dst + q] += v;
          this.sumSquares[dst + q] += v * v;
        }
      }
    }
  }

  /** Samples seen per class slot. */
  classCounts(): number[] {
    return Array.from(this.counts);
  }

  scatter(between: BetweenClass = 'centroid'): Scatter {
    const C = this.channels;
    const P = this.kept;
    const total = this.counts.reduce((s, v) => s + v, 0);
    const b = new Float64Array(C);
    const w = new Float64Array(C);
    if (total === 0) throw new Error('ScatterAccumulator.scatter: no samples were added');
    const grand = new Float64Array(P * C);
    for (let c = 0; c < this.classes; c++) {
      for (let q = 0; q < P * C; q++) grand[q] += this.sums[c * P * C + q];
    }
    for (let q = 0; q < P * C; q++) grand[q] /= total;
    for (let c = 0; c < this.classes; c++) {
      const nc = this.counts[c];
      if (nc === 0) continue;
      const base = c * P * C;
      for (let q = 0; q < P * C; q++) {
        const sum = this.sums[base + q];
        const mean = sum / nc;
        const j = q % C;
        const d = mean - grand[q];
        b[j] += nc * d * d;
        // Σ(x − μ_c)² = Σx² − n_c μ_c²; clamp the float64 rounding residue.
        w[j] += Math.max(0, this.sumSquares[base + q] - sum * mean);
      }
    }
    if (between === 'centroid') return { b, w };
    // Pooled within-class variance per dimension, over every dimension of the layer.
    const variance = w.reduce((s, v) => s + v, 0) / (total * P * C);
    return { b: pairwiseBetween(this.sums, this.counts, P, C, (delta2) => apacWeight(variance > 0 ? delta2 / variance : Infinity)), w };
  }
}

/**
 * b_j = (1/N) Σ_{c<d} n_c n_d ω_cd ‖μ_c^(j) − μ_d^(j)‖², from per-class sums laid out
 * [class][position][channel]; `weight` maps a pair's squared mean distance over all
 * channels to ω_cd. With ω ≡ 1 this is the centroid b exactly.
 */
export function pairwiseBetween(sums: Float64Array, counts: Float64Array, positions: number, channels: number, weight: (distance2: number) => number): Float64Array {
  const K = counts.length;
  const D = positions * channels;
  const total = counts.reduce((s, v) => s + v, 0);
  const b = new Float64Array(channels);
  const perChannel = new Float64Array(channels);
  for (let c = 0; c < K; c++) {
    for (let e = c + 1; e < K; e++) {
      if (counts[c] === 0 || counts[e] === 0) continue;
      perChannel.fill(0);
      let distance2 = 0;
      for (let q = 0; q < D; q++) {
        const d = sums[c * D + q] / counts[c] - sums[e * D + q] / counts[e];
        perChannel[q % channels] += d * d;
        distance2 += d * d;
      }
      const scale = ((counts[c] * counts[e]) / total) * weight(distance2);
      for (let j = 0; j < channels; j++) b[j] += scale * perChannel[j];
    }
  }
  return b;
}

/**
 * ω(Δ) = erf(Δ / 2√2) / (2Δ²) for a squared distance Δ² (Loog et al.'s aPAC weight). 0 where
 * the pair adds nothing anyway (Δ = 0: equal means) and at infinite distance.
 */
export function apacWeight(delta2: number): number {
  if (!(delta2 > 0) || !Number.isFinite(delta2)) return 0;
  const delta = Math.sqrt(delta2);
  return erf(delta / (2 * Math.SQRT2)) / (2 * delta2);
}

/** erf by Abramowitz and Stegun 7.1.26 (|error| < 1.5e-7), enough for a weight. */
function erf(x: number): number {
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return x >= 0 ? y : -y;
}

/** Sums per-channel scatters of tensors that share one channel set (tied by additions). */
export function sumScatters(parts: Scatter[]): Scatter {
  if (parts.length === 0) throw new Error('sumScatters: nothing to sum');
  const C = parts[0].b.length;
  const b = new Float64Array(C);
  const w = new Float64Array(C);
  for (const p of parts) {
    if (p.b.length !== C) throw new Error(`sumScatters: channel counts differ (${C} vs ${p.b.length})`);
    for (let j = 0; j < C; j++) {
      b[j] += p.b[j];
      w[j] += p.w[j];
    }
  }
  return { b, w };
}
