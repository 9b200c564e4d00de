/**
 * CATRO Stage II: the best k-subset of one layer's channels under the trace-ratio
 * criterion (docs/catro.md §2). With per-channel between-class scatter b and
 * within-class scatter w, the block-trace identity makes the trace ratio of a channel
 * set S exactly Σ_S b / Σ_S w, so the problem is a ratio of modular functions and the
 * Dinkelbach / Nie iteration solves it exactly.
 */

/** Σ_S b / Σ_S w; 0 for an empty set or one with no scatter at all. */
export function traceRatio(S: ArrayLike<number>, b: ArrayLike<number>, w: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < S.length; i++) {
    num += b[S[i]];
    den += w[S[i]];
  }
  if (den > 0) return num / den;
  return num > 0 ? Infinity : 0;
}

export interface LayerSelection {
  /** Chosen channel indices, ascending. */
  selected: number[];
  /** λ after each iteration (λ₀ = ratio of all live channels first); non-decreasing. */
  lambdas: number[];
  /** Trace ratio of the selected set, with the regularised w. */
  ratio: number;
}

/**
 * Default relative regulariser on w (w' = w + ε·mean(w)), so channels with w = 0 but b > 0
 * get a finite ratio. A larger ε is ridge-regularised LDA (S_w + εI): it stops near-silent
 * channels (tiny b, tinier w) from winning on ratio alone.
 */
export const DEFAULT_W_EPSILON = 1e-8;
const MAX_ITERATIONS = 1000;

function checkScatter(b: ArrayLike<number>, w: ArrayLike<number>, k: number): void {
  if (b.length !== w.length) throw new Error(`selectLayer: b has ${b.length} channels but w has ${w.length}`);
  if (!Number.isInteger(k) || k < 1 || k > b.length) {
    throw new Error(`selectLayer: k must be an integer in [1, ${b.length}], got ${k}`);
  }
  for (let j = 0; j < b.length; j++) {
    if (!(b[j] >= 0) || !(w[j] >= 0) || !Number.isFinite(b[j]) || !Number.isFinite(w[j])) {
      throw new Error(`selectLayer: scatter of channel ${j} must be finite and ≥ 0, got b=${b[j]}, w=${w[j]}`);
    }
  }
}

/**
 * The k channels maximising Σ_S b / Σ_S w.
 * Dead channels (b = w = 0: constant over the calibration set, e.g. never-firing ReLUs)
 * rank below every live channel; ties rank the larger b_j first, then the lower index.
 */
export function selectLayer(b: ArrayLike<number>, w: ArrayLike<number>, k: number, opts: { wEpsilon?: number } = {}): LayerSelection {
  checkScatter(b, w, k);
  const eps = opts.wEpsilon ?? DEFAULT_W_EPSILON;
  if (!(eps >= 0 && Number.isFinite(eps))) throw new Error(`selectLayer: wEpsilon must be finite and ≥ 0, got ${eps}`);
  const C = b.length;
  let meanW = 0;
  for (let j = 0; j < C; j++) meanW += w[j];
  meanW /= C;
  const wr = new Float64Array(C);
  for (let j = 0; j < C; j++) wr[j] = w[j] + eps * meanW;
  const dead = (j: number) => b[j] === 0 && w[j] === 0;

  const live: number[] = [];
  for (let j = 0; j < C; j++) if (!dead(j)) live.push(j);
  let lambda = live.length > 0 ? traceRatio(live, b, wr) : 0;
  if (!Number.isFinite(lambda)) lambda = 0; // all live channels have w = 0 and mean w = 0

  const order = Array.from({ length: C }, (_, j) => j);
  const topK = (lam: number): number[] => {
    const score = (j: number) => b[j] - lam * wr[j];
    order.sort((p, q) => {
      const dp = dead(p);
      if (dp !== dead(q)) return dp ? 1 : -1;
      const d = score(q) - score(p);
      if (d !== 0) return d;
      if (b[q] !== b[p]) return b[q] - b[p];
      return p - q;
    });
    return order.slice(0, k).sort((p, q) => p - q);
  };

  const lambdas = [lambda];
  let S: number[] | undefined;
  for (let it = 0; it < MAX_ITERATIONS; it++) {
    const next = topK(lambda);
    const nextLambda = traceRatio(next, b, wr);
    if ((S && sameSet(S, next)) || !(nextLambda > lambda + 1e-12)) {
      return { selected: next, lambdas, ratio: nextLambda };
    }
    S = next;
    lambda = nextLambda;
    lambdas.push(lambda);
  }
  throw new Error(`selectLayer: no fixed point after ${MAX_ITERATIONS} iterations (C=${C}, k=${k})`);
}

function sameSet(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
