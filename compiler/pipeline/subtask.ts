/**
 * One subtask of a compile: CATRO-prune the FusionDistill model for a class subset, then
 * fine-tune the small model under the training degradations with distillation from the
 * unpruned model's logits restricted to the subset (docs/catro.md §6).
 *
 * The class-agnostic baselines (L1-norm, random channels) go through the same code at the
 * widths CATRO chose, so "same MACs, same fine-tuning" holds by construction.
 */
import { degradeBatch } from '../../shared/degrade.ts';
import { DEGRADATION_KINDS, type DegradationKind } from '../../shared/manifest.ts';
import { batchToNHWC } from '../../shared/preprocess.ts';
import { Rng } from '../../shared/rng.ts';
import { baselinePrune, calibrationSet, catroPrune, type PruneResult, type Selector } from '../catro/catro.ts';
import { recalibrateBatchNorm } from '../catro/recalibrate.ts';
import type { BetweenClass, ScatterPooling } from '../catro/scatter.ts';
import type { PruneMode } from '../catro/spaces.ts';
import { restrictClasses } from '../catro/prune.ts';
import { subsetClasses } from '../data/split.ts';
import type { LabelledImages } from '../data/types.ts';
import type { Graph, ParamStore } from '../graph/ir.ts';
import { engineTapRunner } from '../engine/index.ts';
import type { Engine } from '../engine/types.ts';
import { train, type TrainResult } from '../train/loop.ts';
import type { ProgressReporter } from '../train/progress.ts';
import type { PrefetchMode } from '../train/pipeline.ts';
import type { DegradationRanges, SubtaskBudget } from './config.ts';
import { degradedCopy } from './training-data.ts';

/** How a subtask is pruned and fine-tuned. Defaults: docs/catro.md §§1, 3, 6. */
export interface SubtaskTuning {
  /** Calibration images per class (n ≥ 2). */
  calibrationPerClass: number;
  /** The calibration images as the training degradations leave them (docs/catro.md §1's default), or clean (its option). */
  calibration: 'degraded' | 'clean';
  /** Stage I: uniform keep ratio tuned to the MACs target, or the global greedy. */
  method: 'ratio' | 'greedy';
  /** Stage II ridge term on S_w (1e-8 as specified; larger values are ridge-regularised LDA, docs/catro.md). */
  wEpsilon: number;
  /** Per-channel features for the scatter: flattened over space (docs/catro.md §1) or global-average pooled. */
  pooling: ScatterPooling;
  /** Between-class scatter: around the grand mean (docs/catro.md §1) or pairwise weighted (scatter.ts; measured, not adopted: docs/catro.md). */
  between: BetweenClass;
  /** Which channels may go: each block's inner channels (unset: `inner`), or the residual streams as well. */
  pruneMode?: PruneMode;
  /** Images for BN re-estimation right after pruning (all selectors alike). */
  recalibrationImages: number;
  epochs: number;
  /** Images per step; split into one sub-batch per degradation. */
  batchSize: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  /** Weight of T²·KL(teacher ‖ student) against the unpruned model restricted to the subset. */
  distillWeight: number;
  temperature: number;
  /** Fine-tuning augmentation; unset: the compile's. */
  augmentation?: { flip: boolean; pad: number; cutout: number };
  /** `compile`: the images stages 1–4 trained on; `all`: every training image outside the validation split. */
  trainImages: 'compile' | 'all';
}

export const DEFAULT_SUBTASK_TUNING: SubtaskTuning = {
  calibrationPerClass: 50,
  calibration: 'degraded',
  method: 'ratio',
  wEpsilon: 1e-8,
  pooling: 'flatten',
  between: 'centroid',
  recalibrationImages: 512,
  epochs: 2,
  batchSize: 128,
  lr: 0.01,
  momentum: 0.9,
  weightDecay: 5e-4,
  distillWeight: 1,
  temperature: 4,
  trainImages: 'compile',
};

export interface SubtaskInput {
  /** The full (FusionDistill) model. */
  graph: Graph;
  params: ParamStore;
  /** Training images of the whole data set (the subtask's classes are taken from it). */
  train: LabelledImages;
  /** Held-out validation images of the whole data set (selection only, never test data). */
  val?: LabelledImages;
  /** Dataset class indices of the subtask, in output order. */
  classes: number[];
  /** A MACs target (fraction of the full model's) or per-layer keep ratios. */
  budget: SubtaskBudget;
  degradations: DegradationRanges;
  normalize: { mean: number[]; std: number[] };
  augment?: { flip: boolean; pad: number; cutout: number };
  tuning: SubtaskTuning;
  seed: number;
  /** What runs CATRO's taps, BN re-estimation and the fine-tuning. */
  engine: Engine;
}

/**
 * Model input for `count` NHWC uint8 images: image i degraded by the (i mod 4)-th
 * degradation at a uniformly drawn level, then normalized (NHWC float).
 */
export function degradedInput(images: Uint8Array, count: number, data: Pick<LabelledImages, 'height' | 'width' | 'channels'>, ranges: DegradationRanges, norm: { mean: number[]; std: number[] }, rng: Rng): Float32Array {
  const { height: h, width: w, channels: c } = data;
  const per = h * w * c;
  const out = new Uint8Array(images.subarray(0, count * per));
  DEGRADATION_KINDS.forEach((kind, k) => {
    const idx: number[] = [];
    for (let i = k; i < count; i += DEGRADATION_KINDS.length) idx.push(i);
    if (idx.length === 0) return;
    const batch = new Uint8Array(idx.length * per);
    idx.forEach((i, j) => batch.set(out.subarray(i * per, (i + 1) * per), j * per));
    const levels = idx.map(() => rng.int(ranges[kind].min, ranges[kind].max));
    const degraded = degradeBatch(batch, idx.length, h, w, c, kind, levels, rng);
    idx.forEach((i, j) => out.set(degraded.subarray(j * per, (j + 1) * per), i * per));
  });
  return batchToNHWC(out, count, h, w, c, norm);
}

/** Re-estimates BN statistics of a pruned model on degraded images of the subtask's classes. */
async function recalibrate(input: SubtaskInput, pruned: PruneResult, rng: Rng): Promise<PruneResult> {
  const sub = subsetClasses(input.train, input.classes);
  const n = Math.min(input.tuning.recalibrationImages, sub.count);
  const x = degradedInput(sub.images, n, sub, input.degradations, input.normalize, rng);
  const params = await recalibrateBatchNorm(pruned.graph, pruned.params, x, n, engineTapRunner(input.engine));
  return { ...pruned, params };
}

/**
 * Prunes the full model for the subtask. `catro` picks widths from the MACs budget and
 * channels by trace ratio; `l1` and `random` reuse the widths given in `widths` (CATRO's),
 * so every selector lands on the same MACs.
 */
export async function pruneSubtask(input: SubtaskInput, selector: Selector, widths?: ReadonlyMap<string, number>): Promise<PruneResult> {
  const rng = new Rng(input.seed).fork(0xca7 + ['catro', 'l1', 'random'].indexOf(selector));
  let result: PruneResult;
  if (selector === 'catro') {
    const { height: h, width: w, channels: c } = input.train;
    const calib = calibrationSet(input.train, input.classes, input.tuning.calibrationPerClass, rng, (images, count) =>
      input.tuning.calibration === 'clean' ? batchToNHWC(images, count, h, w, c, input.normalize) : degradedInput(images, count, input.train, input.degradations, input.normalize, rng),
    );
    result = await catroPrune(input.graph, input.params, calib, engineTapRunner(input.engine), {
      classes: input.classes,
      budget: 'flops' in input.budget
        ? { flops: input.budget.flops, method: input.tuning.method }
        : { ratio: typeof input.budget.keep === 'number' ? input.budget.keep : new Map(Object.entries(input.budget.keep)) },
      wEpsilon: input.tuning.wEpsilon,
      pooling: input.tuning.pooling,
      between: input.tuning.between,
      mode: input.tuning.pruneMode,
    });
  } else {
    if (!widths) throw new Error(`pruneSubtask: the ${selector} baseline needs the widths CATRO chose`);
    const base = baselinePrune(input.graph, input.params, widths, { classes: input.classes, selector, rng, mode: input.tuning.pruneMode });
    result = { ...base, widths: { widths: new Map(widths), macs: base.macs.pruned, fullMacs: base.macs.full } };
  }
  return recalibrate(input, result, rng);
}

/** The unpruned model with its classifier restricted to the subtask's classes (the reference row). */
export function restrictedFull(input: SubtaskInput): { graph: Graph; params: ParamStore } {
  return restrictClasses(input.graph, input.params, input.classes);
}

export interface FineTuneRuntime {
  outDir?: string;
  prefetch?: PrefetchMode;
  progress?: ProgressReporter;
  checkpointEverySteps?: number;
}

/**
 * The validation images the best epoch is chosen on: every image clean and under each
 * degradation (at a seeded level), so the choice is made on the figure the report and the
 * goal use, the mean of clean and the four degradations ("mean5"). One degradation per image
 * and no clean copy, as before, scored a fifth as many images on a different mix: on the
 * ~480 tops validation images its epoch-to-epoch differences were within its noise.
 */
export async function selectionSet(val: LabelledImages, kinds: readonly DegradationKind[], ranges: DegradationRanges, seed: number): Promise<LabelledImages> {
  const parts = [val, ...kinds.map((kind) => degradedCopy(val, [kind], ranges, seed))];
  const images = new Uint8Array(parts.reduce((n, p) => n + p.images.length, 0));
  const labels = new Uint16Array(parts.reduce((n, p) => n + p.count, 0));
  let offset = 0;
  let count = 0;
  for (const p of parts) {
    images.set(p.images, offset);
    labels.set(p.labels, count);
    offset += p.images.length;
    count += p.count;
  }
  return { ...val, count, images, labels };
}

/**
 * Fine-tunes a pruned subtask model: SGD + cosine, every step one sub-batch per
 * degradation, CE plus logit distillation from the restricted unpruned model seeing the
 * same (degraded) images. The best epoch on {@link selectionSet} is kept.
 */
export async function fineTuneSubtask(input: SubtaskInput, pruned: { graph: Graph; params: ParamStore }, runtime: FineTuneRuntime = {}): Promise<TrainResult> {
  const { tuning } = input;
  const teacher = restrictedFull(input);
  const sub = subsetClasses(input.train, input.classes);
  const val = input.val && subsetClasses(input.val, input.classes);
  const kinds = [...DEGRADATION_KINDS];
  const batchSize = Math.max(kinds.length, Math.round(tuning.batchSize / kinds.length) * kinds.length);
  const distill = tuning.distillWeight > 0;
  return train({
    graph: pruned.graph,
    params: pruned.params,
    train: sub,
    val: val && (await selectionSet(val, kinds, input.degradations, input.seed)),
    epochs: tuning.epochs,
    batchSize,
    optimizer: { kind: 'sgd', momentum: tuning.momentum, nesterov: false, weightDecay: tuning.weightDecay },
    schedule: { kind: 'cosine', lr: tuning.lr, floor: 0 },
    augment: input.augment,
    degrade: { kinds, levels: input.degradations },
    normalize: input.normalize,
    // The restricted unpruned model sees the same (degraded) images as the student.
    objective: { ce: 1, distill: distill ? { weight: tuning.distillWeight, temperature: tuning.temperature, groups: 1 } : undefined },
    teachers: distill ? { models: [teacher], input: 'degraded' } : undefined,
    engine: input.engine,
    seed: input.seed,
    outDir: runtime.outDir,
    resume: runtime.outDir !== undefined,
    prefetch: runtime.prefetch ?? 'inline',
    checkpointEverySteps: runtime.checkpointEverySteps,
    fingerprintExtra: { teacher: teacher.graph.arch, classes: input.classes, tuning },
    progress: runtime.progress,
  });
}
