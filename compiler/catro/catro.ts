/**
 * The whole CATRO pipeline (docs/catro.md §4) and its class-agnostic baselines.
 *
 * Framework-free: the model runs through a {@link TapRunner} (any engine's runner,
 * compiler/engine/index.ts's engineTapRunner), and masks are applied by silencing parameters
 * ({@link maskChannels}), so the runner needs no mask support.
 */
import type { LabelledImages } from '../data/types.ts';
import { countGraph } from '../graph/count.ts';
import type { Graph, HostTensor, ParamStore } from '../graph/ir.ts';
import { layerInputs, paramKey } from '../graph/ir.ts';
import { inferShapes, isMap } from '../graph/shapes.ts';
import { type CountMacs, type Widths, greedyBudget, ratioBudget, widthsForRatios } from './budget.ts';
import { maskChannels, pruneChannels, restrictClasses, withWidths } from './prune.ts';
import { type BetweenClass, type Scatter, ScatterAccumulator, type ScatterPooling, sumScatters } from './scatter.ts';
import { type LayerSelection, selectLayer } from './select.ts';
import { type ChannelSpace, type PruneMode, prunableSpaces } from './spaces.ts';

/** Eval-mode forward on one set of parameters; returns NHWC host tensors per tap. */
export interface TapSession {
  run(x: Float32Array, n: number, taps: string[]): Promise<Map<string, HostTensor>>;
  dispose(): void;
}
export type TapRunner = (graph: Graph, params: ParamStore) => TapSession;

/** Calibration samples: model input (NHWC float, preprocessed) and a class slot each. */
export interface CalibrationSet {
  x: Float32Array;
  /** Index into the subtask's class list, per sample. */
  slots: ArrayLike<number>;
}

/** Budget: keep ratios (one, or per space id), or a fraction of the full model's MACs. */
export type Budget =
  | { ratio: number | ReadonlyMap<string, number> }
  | { flops: number; method?: 'ratio' | 'greedy'; relative?: ReadonlyMap<string, number>; floorRatio?: number };

/** Channel selectors compared in reports: CATRO and the class-agnostic baselines. */
export type Selector = 'catro' | 'l1' | 'random';

export interface CatroOptions {
  /** Dataset class indices of the subtask, in output order; calibration slots index this list. */
  classes: readonly number[];
  budget: Budget;
  mode?: PruneMode;
  pooling?: ScatterPooling;
  /** Between-class scatter around the grand mean (default, the spec's) or pairwise weighted (scatter.ts). */
  between?: BetweenClass;
  batchSize?: number;
  countMacs?: CountMacs;
  /** Stage II regulariser: w' = w + ε·mean(w) (default 1e-8, the spec's). */
  wEpsilon?: number;
}

export interface SpaceReport {
  id: string;
  channels: number;
  kept: number[];
  /** CATRO only: λ trace of Stage II and the selected set's trace ratio. */
  selection?: LayerSelection;
}

export interface PruneResult {
  graph: Graph;
  params: ParamStore;
  keep: Map<string, number[]>;
  widths: Widths;
  spaces: SpaceReport[];
  macs: { full: number; pruned: number };
  paramCount: { full: number; pruned: number };
}

const defaultCount: CountMacs = (g) => countGraph(g).macs;

function checkCalibration(graph: Graph, calib: CalibrationSet, classes: number): number {
  const input = inferShapes(graph).get(graph.layers.find((l) => l.kind === 'input')!.name)!;
  const per = input.reduce((a, b) => a * b, 1);
  const n = calib.slots.length;
  if (n === 0) throw new Error('catro: the calibration set is empty');
  if (calib.x.length !== n * per) {
    throw new Error(`catro: calibration x has ${calib.x.length} values, expected ${n} samples × ${per} (${input.join('×')})`);
  }
  const counts = new Array<number>(classes).fill(0);
  for (let i = 0; i < n; i++) {
    const s = calib.slots[i]!;
    if (!Number.isInteger(s) || s < 0 || s >= classes) throw new Error(`catro: calibration slot ${i} is ${s}, outside [0, ${classes})`);
    counts[s]!++;
  }
  const short = counts.findIndex((c) => c < 2);
  if (short >= 0) throw new Error(`catro: class slot ${short} has ${counts[short]} calibration samples; at least 2 per class are needed`);
  return n;
}

/** Only the layers the taps depend on, so a scatter pass stops at the deepest tap. */
export function truncateToTaps(graph: Graph, taps: readonly string[]): Graph {
  const need = new Set(taps);
  for (let i = graph.layers.length - 1; i >= 0; i--) {
    const l = graph.layers[i]!;
    if (need.has(l.name)) for (const input of layerInputs(l)) need.add(input);
  }
  const layers = graph.layers.filter((l) => need.has(l.name));
  const deepest = [...layers].reverse().find((l) => taps.includes(l.name));
  if (!deepest) throw new Error(`catro: none of the taps ${JSON.stringify(taps)} is a layer of graph ${graph.arch}`);
  // Graphs must end in a vector (inferShapes); a global pool of the deepest tap is the cheapest one.
  const output = '__catro_scatter_end';
  return { arch: graph.arch, layers: [...layers, { kind: 'globalavgpool', name: output, input: deepest.name }], output };
}

/** Per-space scatter (summed over each space's taps) of the model under `params`. */
export async function measureScatter(
  graph: Graph,
  params: ParamStore,
  spaces: readonly ChannelSpace[],
  calib: CalibrationSet,
  classes: number,
  run: TapRunner,
  opts: { pooling?: ScatterPooling; between?: BetweenClass; batchSize?: number } = {},
): Promise<Map<string, Scatter>> {
  const n = checkCalibration(graph, calib, classes);
  const shapes = inferShapes(graph);
  const per = calib.x.length / n;
  const batch = opts.batchSize ?? 64;
  const accs = new Map<string, ScatterAccumulator>();
  for (const s of spaces) {
    for (const tap of s.taps) {
      const shape = shapes.get(tap)!;
      if (!isMap(shape)) throw new Error(`catro: tap "${tap}" of "${s.id}" is not a feature map`);
      accs.set(tap, new ScatterAccumulator({ classes, height: shape[0], width: shape[1], channels: shape[2], pooling: opts.pooling }));
    }
  }
  const taps = [...accs.keys()];
  const session = run(truncateToTaps(graph, taps), params);
  try {
    for (let lo = 0; lo < n; lo += batch) {
      const hi = Math.min(n, lo + batch);
      const out = await session.run(calib.x.subarray(lo * per, hi * per), hi - lo, taps);
      const slots = Array.from({ length: hi - lo }, (_, i) => calib.slots[lo + i]!);
      for (const tap of taps) {
        const t = out.get(tap);
        if (!t) throw new Error(`catro: the tap runner returned no tensor for "${tap}"`);
        accs.get(tap)!.add(t.data, slots);
      }
    }
  } finally {
    session.dispose();
  }
  return new Map(spaces.map((s) => [s.id, sumScatters(s.taps.map((t) => accs.get(t)!.scatter(opts.between)))]));
}

/** Stage I: channels per space from the budget (the greedy needs every space's scatter). */
async function budgetWidths(
  graph: Graph,
  spaces: ChannelSpace[],
  budget: Budget,
  scatters: () => Promise<Map<string, Scatter>>,
  count: CountMacs,
): Promise<Widths> {
  if ('ratio' in budget) {
    const widths = widthsForRatios(spaces, budget.ratio);
    return { widths, macs: count(withWidths(graph, spaces, widths)), fullMacs: count(graph) };
  }
  if (!(budget.flops > 0 && budget.flops <= 1)) throw new Error(`catro: budget flops must be a fraction in (0, 1], got ${budget.flops}`);
  const target = budget.flops * count(graph);
  const method = budget.method ?? 'ratio';
  if (method === 'ratio') return ratioBudget(graph, spaces, target, { relative: budget.relative, countMacs: count });
  if (method === 'greedy') return greedyBudget(graph, spaces, await scatters(), target, { floorRatio: budget.floorRatio, countMacs: count });
  throw new Error(`catro: budget method must be "ratio" or "greedy", got "${method}"`);
}

/** Physically prunes to `keep`, keeps the subtask's classifier rows, and counts both models. */
export function applyPruning(
  graph: Graph,
  params: ParamStore,
  keep: Map<string, number[]>,
  classes: readonly number[],
): { graph: Graph; params: ParamStore; macs: { full: number; pruned: number }; paramCount: { full: number; pruned: number } } {
  const pruned = pruneChannels(graph, params, keep);
  const sub = restrictClasses(pruned.graph, pruned.params, classes);
  const full = countGraph(graph);
  const small = countGraph(sub.graph);
  return { ...sub, macs: { full: full.macs, pruned: small.macs }, paramCount: { full: full.params, pruned: small.params } };
}

/**
 * CATRO-PRUNE: widths from the budget, then shallow → deep, each space's scatter is
 * measured with the channels dropped so far silenced (BN in eval mode) and Stage II
 * picks its channels; finally the dropped channels are removed and the classifier is
 * restricted to the subtask's classes. Fine-tuning is the caller's.
 */
export async function catroPrune(graph: Graph, params: ParamStore, calib: CalibrationSet, run: TapRunner, opts: CatroOptions): Promise<PruneResult> {
  const spaces = prunableSpaces(graph, opts.mode ?? 'inner');
  if (spaces.length === 0) throw new Error(`catro: graph ${graph.arch} has no prunable layers (mode ${opts.mode ?? 'inner'})`);
  const classes = opts.classes.length;
  checkCalibration(graph, calib, classes);
  const measure = (p: ParamStore, which: ChannelSpace[]) =>
    measureScatter(graph, p, which, calib, classes, run, { pooling: opts.pooling, between: opts.between, batchSize: opts.batchSize });
  const count = opts.countMacs ?? defaultCount;
  const widths = await budgetWidths(graph, spaces, opts.budget, () => measure(params, spaces), count);

  const keep = new Map<string, number[]>();
  const reports: SpaceReport[] = [];
  for (const s of spaces) {
    const k = widths.widths.get(s.id)!;
    if (k === s.channels) {
      reports.push({ id: s.id, channels: s.channels, kept: Array.from({ length: k }, (_, j) => j) });
      continue;
    }
    const masked = keep.size > 0 ? maskChannels(graph, params, keep) : params;
    const { b, w } = (await measure(masked, [s])).get(s.id)!;
    const selection = selectLayer(b, w, k, { wEpsilon: opts.wEpsilon });
    keep.set(s.id, selection.selected);
    reports.push({ id: s.id, channels: s.channels, kept: selection.selected, selection });
  }
  return { ...applyPruning(graph, params, keep, opts.classes), keep, widths, spaces: reports };
}

/** L1 norm of each output filter, summed over the space's producing convs. */
export function filterL1Norms(graph: Graph, params: ParamStore, space: ChannelSpace): Float64Array {
  const norms = new Float64Array(space.channels);
  for (const p of space.producers) {
    const t = params.get(paramKey(p, 'kernel'));
    if (!t) throw new Error(`l1: parameter "${paramKey(p, 'kernel')}" is missing`);
    const out = t.shape[t.shape.length - 1]!;
    for (let i = 0; i < t.data.length; i++) norms[i % out]! += Math.abs(t.data[i]!);
  }
  return norms;
}

/** The k largest-norm channels (ties: lower index), ascending. */
function topByNorm(norms: Float64Array, k: number): number[] {
  return Array.from(norms.keys())
    .sort((a, b) => norms[b]! - norms[a]! || a - b)
    .slice(0, k)
    .sort((a, b) => a - b);
}

/** k distinct channels of [0, C) drawn uniformly, ascending. */
function randomChannels(C: number, k: number, rng: { int(lo: number, hi: number): number }): number[] {
  const all = Array.from({ length: C }, (_, j) => j);
  for (let i = 0; i < k; i++) {
    const j = rng.int(i, C - 1);
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  return all.slice(0, k).sort((a, b) => a - b);
}

/**
 * Class-agnostic baselines at given widths (e.g. the ones CATRO chose): L1-norm of filters,
 * or random channels from a seeded generator. Same removal and class restriction as CATRO.
 */
export function baselinePrune(
  graph: Graph,
  params: ParamStore,
  widths: ReadonlyMap<string, number>,
  opts: { classes: readonly number[]; selector: 'l1' | 'random'; rng?: { int(lo: number, hi: number): number }; mode?: PruneMode },
): Omit<PruneResult, 'widths'> {
  const spaces = prunableSpaces(graph, opts.mode ?? 'inner');
  const keep = new Map<string, number[]>();
  const reports: SpaceReport[] = [];
  for (const s of spaces) {
    const k = widths.get(s.id) ?? s.channels;
    let kept: number[];
    if (k === s.channels) kept = Array.from({ length: k }, (_, j) => j);
    else if (opts.selector === 'l1') kept = topByNorm(filterL1Norms(graph, params, s), k);
    else {
      if (!opts.rng) throw new Error('baselinePrune: the random selector needs a seeded rng');
      kept = randomChannels(s.channels, k, opts.rng);
    }
    if (k !== s.channels) keep.set(s.id, kept);
    reports.push({ id: s.id, channels: s.channels, kept });
  }
  return { ...applyPruning(graph, params, keep, opts.classes), keep, spaces: reports };
}

/**
 * n calibration samples per subtask class, drawn without replacement by a seeded rng.
 * Returns dataset indices and each sample's slot in `classes`.
 */
export function sampleCalibration(
  labels: ArrayLike<number>,
  classes: readonly number[],
  n: number,
  rng: { int(lo: number, hi: number): number },
): { indices: number[]; slots: number[] } {
  if (!Number.isInteger(n) || n < 2) throw new Error(`catro: calibration needs n ≥ 2 samples per class, got ${n}`);
  const indices: number[] = [];
  const slots: number[] = [];
  classes.forEach((c, slot) => {
    const pool: number[] = [];
    for (let i = 0; i < labels.length; i++) if (labels[i] === c) pool.push(i);
    if (pool.length < n) throw new Error(`catro: class ${c} has ${pool.length} samples, fewer than the ${n} per class asked for calibration`);
    for (let i = 0; i < n; i++) {
      const j = rng.int(i, pool.length - 1);
      [pool[i], pool[j]] = [pool[j]!, pool[i]!];
      indices.push(pool[i]!);
      slots.push(slot);
    }
  });
  return { indices, slots };
}

/**
 * A calibration set from a labelled image set: n images of each subtask class (seeded),
 * turned into model input by `toInput` (NHWC uint8 batch → NHWC float: the caller applies
 * the training degradations, if any, and the normalisation).
 */
export function calibrationSet(
  data: LabelledImages,
  classes: readonly number[],
  n: number,
  rng: { int(lo: number, hi: number): number },
  toInput: (images: Uint8Array, count: number) => Float32Array,
): CalibrationSet {
  const { indices, slots } = sampleCalibration(data.labels, classes, n, rng);
  const per = data.height * data.width * data.channels;
  const images = new Uint8Array(indices.length * per);
  indices.forEach((i, k) => images.set(data.images.subarray(i * per, (i + 1) * per), k * per));
  const x = toInput(images, indices.length);
  if (x.length !== images.length) {
    throw new Error(`catro: toInput returned ${x.length} values for ${indices.length} images of ${per} values each`);
  }
  return { x, slots };
}
