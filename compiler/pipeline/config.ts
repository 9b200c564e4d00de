/**
 * The compile configuration: every number of the FusionDistill recipe, in one JSON file.
 * Strict: an unknown key is an error (a typo must not silently fall back to a default),
 * and every error names the file and the key path.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { DEGRADATION_LEVELS } from '../../shared/degrade.ts';
import { DEGRADATION_KINDS, type DegradationKind } from '../../shared/manifest.ts';

/**
 * The published level ranges (docs/fusiondistill.md). A config may narrow a range but not
 * leave it: outside these the degradations are undefined (JPEG quality 0, negative σ).
 */
export const LEVEL_LIMITS: Record<DegradationKind, { min: number; max: number }> = DEGRADATION_LEVELS;

const positiveInt = z.number().int().positive();
const nonNegInt = z.number().int().nonnegative();
const rate = z.number().finite().positive();
const weightDecay = z.number().finite().nonnegative();
const fraction01 = z.number().gt(0).lt(1);

export const SgdConfig = z
  .object({
    type: z.literal('sgd'),
    lr: rate,
    momentum: z.number().min(0).lt(1).default(0),
    nesterov: z.boolean().default(false),
    weightDecay: weightDecay.default(0),
  })
  .strict()
  .refine((o) => !o.nesterov || o.momentum > 0, { message: 'nesterov needs momentum > 0', path: ['nesterov'] });

export const RadamConfig = z
  .object({
    type: z.literal('radam'),
    lr: rate,
    betas: z.tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)]).default([0.9, 0.999]),
    eps: z.number().positive().default(1e-8),
    weightDecay: weightDecay.default(0),
  })
  .strict();

export const OptimizerConfig = z.discriminatedUnion('type', [SgdConfig, RadamConfig]);
export type OptimizerConfig = z.infer<typeof OptimizerConfig>;

export const StepSchedule = z
  .object({
    type: z.literal('step'),
    /** `epoch`: milestones are epoch numbers; `fraction`: fractions of all steps, in (0, 1). */
    unit: z.enum(['epoch', 'fraction']),
    milestones: z.array(z.number().positive()).min(1),
    gamma: z.number().positive().max(1),
  })
  .strict()
  .superRefine((s, ctx) => {
    s.milestones.forEach((m, i) => {
      if (s.unit === 'fraction' && !(m > 0 && m < 1)) ctx.addIssue({ code: 'custom', path: ['milestones', i], message: `a fraction milestone must be in (0, 1), got ${m}` });
      if (s.unit === 'epoch' && !Number.isInteger(m)) ctx.addIssue({ code: 'custom', path: ['milestones', i], message: `an epoch milestone must be an integer, got ${m}` });
      if (i > 0 && m <= s.milestones[i - 1]!) ctx.addIssue({ code: 'custom', path: ['milestones', i], message: 'milestones must increase' });
    });
  });

/** Cosine annealing from the optimizer's LR to `min` over all steps of the stage, per step. */
export const CosineSchedule = z
  .object({
    type: z.literal('cosine'),
    min: z.number().nonnegative().default(0),
  })
  .strict();

export const OneCycleSchedule = z
  .object({
    type: z.literal('onecycle'),
    /** The peak LR; the optimizer's `lr` must equal it (one number, one meaning). */
    peak: rate,
    /** Fraction of all steps spent rising to the peak. */
    pctStart: fraction01,
    /** Start LR = peak / divFactor; end LR = start / finalDivFactor (PyTorch's OneCycleLR defaults). */
    divFactor: z.number().gt(1).default(25),
    finalDivFactor: z.number().gt(1).default(1e4),
  })
  .strict();

export const ConstantSchedule = z.object({ type: z.literal('constant') }).strict();

export const ScheduleConfig = z.discriminatedUnion('type', [StepSchedule, CosineSchedule, OneCycleSchedule, ConstantSchedule]);
export type ScheduleConfig = z.infer<typeof ScheduleConfig>;

export const LossWeights = z
  .object({
    ce: z.number().finite().nonnegative(),
    /** Weight of each (1 − cos) feature term. */
    feature: z.number().finite().nonnegative().default(0),
    /** Weight of each logit-distillation term T²·KL(teacher ‖ student) at `temperature` (not in the published method). */
    logit: z.number().finite().nonnegative().default(0),
    temperature: z.number().positive().default(4),
  })
  .strict()
  .refine((w) => w.ce > 0 || w.feature > 0 || w.logit > 0, { message: 'at least one loss weight must be > 0' });
export type LossWeights = z.infer<typeof LossWeights>;

const Augmentation = z
  .object({
    flip: z.boolean(),
    /** Zero padding before the random crop back to the input size; 0 = no crop. */
    pad: nonNegInt,
    /** Side of the Cutout hole on the student's image; 0 = none. */
    cutout: nonNegInt,
  })
  .strict();

const trainingStageShape = {
  epochs: positiveInt,
  /** Images per step (stage 4 and its baselines: per degradation sub-batch). */
  batchSize: positiveInt,
  optimizer: OptimizerConfig,
  schedule: ScheduleConfig,
  loss: LossWeights,
  /** What the teachers see: the clean image (published) or the student's degraded one. */
  teacherInput: z.enum(['clean', 'degraded']).default('clean'),
  /**
   * Seeds this stage's shuffling, augmentation and degradations instead of the top-level
   * `seed`. The stages above keep their cache keys, so a seed study of one stage reruns that
   * stage only. The validation split and its degraded copy stay fixed by the top-level seed.
   */
  seed: nonNegInt.optional(),
};

function checkStage(stage: { epochs: number; optimizer: OptimizerConfig; schedule: ScheduleConfig }, ctx: z.RefinementCtx): void {
  const s = stage.schedule;
  if (s.type === 'onecycle' && s.peak !== stage.optimizer.lr) {
    ctx.addIssue({ code: 'custom', path: ['schedule', 'peak'], message: `must equal optimizer.lr (${stage.optimizer.lr}) for a one-cycle schedule, got ${s.peak}` });
  }
  if (s.type === 'step' && s.unit === 'epoch') {
    s.milestones.forEach((m, i) => {
      if (m >= stage.epochs) ctx.addIssue({ code: 'custom', path: ['schedule', 'milestones', i], message: `epoch milestone ${m} is not below the stage's ${stage.epochs} epochs` });
    });
  }
}

export const TrainingStage = z.object(trainingStageShape).strict().superRefine(checkStage);
export type TrainingStage = z.infer<typeof TrainingStage>;

export const BN_MODES = ['copy', 'average', 'recalibrate'] as const;
export type BnMode = (typeof BN_MODES)[number];

export const FusionStage = z
  .object({
    /** BatchNorm running statistics of the fused model: copied from model 0 (as published), averaged, or re-estimated. */
    bn: z.enum(BN_MODES).default('recalibrate'),
    /** Batches of degraded training images for `recalibrate` (and for the ModelSoups-recalibrated row). */
    recalibrationBatches: positiveInt.default(200),
    recalibrationBatchSize: positiveInt.default(128),
  })
  .strict();
export type FusionStage = z.infer<typeof FusionStage>;

const LevelRange = z
  .object({ min: nonNegInt, max: nonNegInt })
  .strict()
  .refine((r) => r.min <= r.max, { message: 'min must not exceed max' });

export const DegradationRanges = z
  .object(Object.fromEntries(DEGRADATION_KINDS.map((k) => [k, LevelRange])) as Record<DegradationKind, typeof LevelRange>)
  .strict()
  .superRefine((ranges, ctx) => {
    for (const kind of DEGRADATION_KINDS) {
      const r = ranges[kind];
      const lim = LEVEL_LIMITS[kind];
      if (r.min < lim.min || r.max > lim.max) {
        ctx.addIssue({ code: 'custom', path: [kind], message: `range ${r.min}..${r.max} leaves the defined levels ${lim.min}..${lim.max}` });
      }
    }
  });
export type DegradationRanges = z.infer<typeof DegradationRanges>;

export const EvaluationConfig = z
  .object({
    /** Level grid: every `step`-th level from each range's min up to its max (1 = every level, the published protocol; 5 = the reference grid). */
    step: positiveInt.default(1),
    /** One fixed seed per level derives from this. */
    seed: nonNegInt.default(0),
    /** `--quick`: this many evenly spaced levels per degradation (both ends included) on the first `samples` test images. */
    quick: z
      .object({ levels: z.number().int().min(2).default(3), samples: positiveInt.default(1000) })
      .strict()
      .prefault({}),
    /** Evaluate on at most this many test images (whole test set when absent). */
    samples: positiveInt.optional(),
    batchSize: positiveInt.default(250),
  })
  .strict();
export type EvaluationConfig = z.infer<typeof EvaluationConfig>;

export const SubtaskConfig = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'lowercase letters, digits, "_" or "-"'),
    /** Class names (as in the data set's label list) or indices. */
    classes: z.array(z.union([z.string().min(1), nonNegInt])).min(2),
    /** Target MACs of the pruned model as a fraction of the full model's (default 0.25 when no keepRatios). */
    flopsFraction: z.number().gt(0).max(1).optional(),
    /**
     * Instead of a MACs target: the share of channels each prunable layer keeps, one ratio for
     * all, or per layer by the name of the conv that produces its channels (`facet info` lists
     * them; a layer not named keeps all its channels).
     */
    keepRatios: z.union([z.number().gt(0).max(1), z.record(z.string().min(1), z.number().gt(0).max(1))]).optional(),
  })
  .strict()
  .refine((s) => s.flopsFraction === undefined || s.keepRatios === undefined, { message: 'give flopsFraction or keepRatios, not both', path: ['keepRatios'] });
export type SubtaskConfig = z.infer<typeof SubtaskConfig>;

/** The default subtask budget, the issue's and the shipped models': a quarter of the full model's MACs. */
export const DEFAULT_FLOPS_FRACTION = 0.25;

/** How small a subtask model is made: a MACs target, or keep ratios that fix each layer's width. */
export type SubtaskBudget = { flops: number } | { keep: number | Readonly<Record<string, number>> };

export function subtaskBudget(subtask: SubtaskConfig): SubtaskBudget {
  return subtask.keepRatios !== undefined ? { keep: subtask.keepRatios } : { flops: subtask.flopsFraction ?? DEFAULT_FLOPS_FRACTION };
}

/** The budget in words, for logs and reports ("25% of the MACs", "keep 0.5 of each layer's channels"). */
export function describeBudget(budget: SubtaskBudget): string {
  if ('flops' in budget) return `${+(100 * budget.flops).toFixed(2)}% of the full model's MACs`;
  if (typeof budget.keep === 'number') return `keep ${budget.keep} of each layer's channels`;
  return `keep ${Object.entries(budget.keep).map(([layer, r]) => `${layer} ${r}`).join(', ')} of the channels (other layers whole)`;
}

export const DATASETS = ['fashion-mnist', 'mnist', 'cifar10', 'cifar100'] as const;

export const CompileConfig = z
  .object({
    /** Free text for people (e.g. which numbers are placeholders); ignored by the compiler. */
    notes: z.array(z.string()).optional(),
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'lowercase letters, digits, ".", "_" or "-"'),
    dataset: z
      .object({
        name: z.enum(DATASETS),
        /** Directory with the data set's files (default: the loader's search path). */
        dir: z.string().min(1).optional(),
        /** Held-out validation share of the training set, stratified; 0 = none (select the last epoch). */
        validation: z.number().min(0).lt(1),
        /** Use only this many training images (tiny and quick runs). */
        trainLimit: positiveInt.optional(),
        /** Normalization of pixel/255, one entry per channel. */
        mean: z.array(z.number().finite()).min(1),
        std: z.array(z.number().positive()).min(1),
      })
      .strict()
      .refine((d) => d.mean.length === d.std.length && (d.mean.length === 1 || d.mean.length === 3), { message: 'mean and std need 1 or 3 entries, one per channel', path: ['std'] }),
    model: z
      .object({
        /** CIFAR-style ResNet (compiler/graph/builders.ts), the architecture of the published recipe. */
        arch: z.literal('resnet'),
        depth: positiveInt,
        width: z.number().positive().default(1),
        shortcut: z.enum(['projection', 'A']).default('projection'),
        head: z.enum(['gap', 'pool2x2']).default('pool2x2'),
      })
      .strict()
      .refine((m) => (m.depth - 2) % 6 === 0 && m.depth >= 8, { message: 'a CIFAR ResNet depth is 6n+2 (8, 14, 20, 32, 44, 56, …)', path: ['depth'] }),
    seed: nonNegInt,
    degradations: DegradationRanges,
    augmentation: Augmentation,
    stages: z
      .object({
        base: TrainingStage.refine((b) => b.loss.feature === 0 && b.loss.logit === 0, { message: 'the base model has no teacher: feature and logit weights must be 0', path: ['loss'] }),
        degradation: TrainingStage,
        fusion: FusionStage.prefault({}),
        distill: TrainingStage,
        /** Loss of the Fusing and Vanilla baselines; their budget is stage 4's. */
        baselines: z
          .object({ loss: LossWeights.prefault({ ce: 1 }) })
          .strict()
          .refine((b) => b.loss.feature === 0 && b.loss.logit === 0, { message: 'the Vanilla and Fusing baselines have no teachers: feature and logit weights must be 0', path: ['loss'] })
          .prefault({}),
      })
      .strict(),
    evaluation: EvaluationConfig.prefault({}),
    subtasks: z.array(SubtaskConfig).default([]),
    /** How subtask models are pruned and fine-tuned (defaults: compiler/pipeline/subtask.ts, docs/catro.md §6). */
    subtaskTuning: z
      .object({
        calibrationPerClass: z.number().int().min(2),
        /** CATRO's calibration images: under the training degradations (the default) or clean. */
        calibration: z.enum(['degraded', 'clean']),
        method: z.enum(['ratio', 'greedy']),
        wEpsilon: z.number().positive(),
        /** CATRO features: each channel flattened over space (the spec's default) or global-average pooled. */
        pooling: z.enum(['flatten', 'gap']),
        /** CATRO's between-class scatter: around the grand mean (the spec's default) or pairwise weighted (compiler/catro/scatter.ts). */
        between: z.enum(['centroid', 'pairwise']),
        /** Channels that may be pruned: `inner` (each block's first conv; the default) or `residual` (the residual streams too). */
        pruneMode: z.enum(['inner', 'residual']),
        recalibrationImages: z.number().int().positive(),
        epochs: z.number().int().positive(),
        batchSize: z.number().int().min(4),
        lr: z.number().positive(),
        momentum: z.number().min(0).lt(1),
        weightDecay: z.number().nonnegative(),
        distillWeight: z.number().nonnegative(),
        temperature: z.number().positive(),
        /** Fine-tuning augmentation; default: the config's `augmentation`. */
        augmentation: Augmentation,
        /** `compile`: the training images stages 1–4 used; `all`: every training image outside the validation split. */
        trainImages: z.enum(['compile', 'all']),
      })
      .partial()
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const names = new Set<string>();
    c.subtasks.forEach((s, i) => {
      if (names.has(s.name)) ctx.addIssue({ code: 'custom', path: ['subtasks', i, 'name'], message: `duplicate subtask "${s.name}"` });
      names.add(s.name);
    });
  });
export type CompileConfig = z.infer<typeof CompileConfig>;

function describe(issues: z.core.$ZodIssue[]): string {
  return issues.map((i) => `  ${i.path.map(String).join('.') || '(root)'}: ${i.message}`).join('\n');
}

/** Validate parsed JSON; throws an Error naming `source` and every bad key path. */
export function parseCompileConfig(json: unknown, source = 'config'): CompileConfig {
  const result = CompileConfig.safeParse(json);
  if (result.success) return result.data;
  throw new Error(`${source} is not a valid compile config:\n${describe(result.error.issues)}`);
}

export async function loadCompileConfig(file: string): Promise<CompileConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read compile config ${file}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  return parseCompileConfig(json, file);
}

/**
 * Subtask classes as data-set indices. Names are looked up in `labels`; an unknown name or
 * an out-of-range index is an error naming `subtasks.<i>.classes.<j>`.
 */
export function resolveSubtaskClasses(subtask: SubtaskConfig, index: number, labels: readonly string[], source = 'config'): number[] {
  return subtask.classes.map((c, j) => {
    const at = `${source}: subtasks.${index}.classes.${j}`;
    if (typeof c === 'number') {
      if (c >= labels.length) throw new Error(`${at}: class index ${c} is out of range (the data set has ${labels.length} classes)`);
      return c;
    }
    const i = labels.indexOf(c);
    if (i < 0) throw new Error(`${at}: no class named "${c}" (known: ${labels.join(', ')})`);
    return i;
  });
}

/** The levels evaluated for one degradation: every `step`-th from min, or `quick` evenly spaced ones. */
export function evaluationLevels(range: { min: number; max: number }, evaluation: EvaluationConfig, quick: boolean): number[] {
  if (quick) {
    const n = Math.min(evaluation.quick.levels, range.max - range.min + 1);
    if (n === 1) return [range.min];
    const levels = Array.from({ length: n }, (_, i) => Math.round(range.min + (i * (range.max - range.min)) / (n - 1)));
    return [...new Set(levels)];
  }
  const levels: number[] = [];
  for (let l = range.min; l <= range.max; l += evaluation.step) levels.push(l);
  return levels;
}
