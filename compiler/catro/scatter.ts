/**
 * Streaming per-channel class scatter of one activation tensor (docs/catro.md §1).
 *
 * Channel j of sample i is the vector x_i^(j) of that channel over all spatial positions
 * (or its global average, with `pooling: 'gap'`). Per channel:
 *   b_j = Σ_c n_c ‖μ_c^(j) − μ^(j)‖²          (between-class scatter)
 *   w_j = Σ_c Σ_{i∈c} ‖x_i^(j) − μ_c^(j)‖²    (within-class scatter)
 * Accumulated from per-class per-position sums and sums of squares. Float64 throughout:
 * w comes from Σx² − (Σx)²/n, which cancels badly in float32.
 */

export type ScatterPooling = 'flatten' | 'gap';

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

  scatter(): Scatter {
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
    return { b, w };
  }
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
