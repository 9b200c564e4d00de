/**
 * The stage graph of a compile: which stages run, what each one reads, and the slice of
 * the config that decides its output (its cache key). Pure data, so what a config change
 * invalidates can be read off here and tested without training anything.
 *
 *   base ─┬─ degrade-{jpeg,blur,awgn,saltpepper} ── fusion ─┬─ distill
 *         │                                       (soups)   └─ fusing   (--baselines)
 *         └─ vanilla (--baselines)
 *   each model ── eval-<model> (export to ONNX, evaluate in onnxruntime-node)
 */
import { DEGRADATION_KINDS, type DegradationKind } from '../../shared/manifest.ts';
import type { CompileConfig } from './config.ts';

export type StageKind = 'base' | 'degrade' | 'fusion' | 'distill' | 'vanilla' | 'fusing' | 'eval';

/** A model artifact: the stage that writes it and its file name there. */
export interface ModelRef {
  stage: string;
  file: string;
}

export interface StageSpec {
  id: string;
  kind: StageKind;
  /** The config slice that decides the output; hashed into the cache key. */
  config: Record<string, unknown>;
  /** Stages whose artifacts this one reads (their checksums join the key). */
  deps: string[];
  /** Data splits it reads (their checksums join the key). */
  data: ('train' | 'test')[];
}

/** The parameter file every model-producing stage writes. */
export const PARAMS_FILE = 'params.ckpt';
/** Fusion writes the fused model with the configured BN handling and both ModelSoups variants. */
export const FUSION_FILES = { fused: 'fused.ckpt', soupCopy: 'soup-copy.ckpt', soupRecal: 'soup-recal.ckpt' } as const;

/** Evaluated models and the report row each becomes. */
export interface EvalTarget {
  row: string;
  label: string;
  model: ModelRef;
  /** Degradations to evaluate, and whether to evaluate clean images. */
  kinds: DegradationKind[];
  clean: boolean;
}

export type BaselineStage = 'vanilla' | 'fusing';

export interface PlanOptions {
  /** Vanilla and Fusing (`true`, as `--baselines`), or only the ones listed. */
  baselines: boolean | readonly BaselineStage[];
  quick: boolean;
}

export interface Plan {
  stages: StageSpec[];
  evals: EvalTarget[];
  /** The model that ships (FusionDistill). */
  shipped: ModelRef;
}

export function planCompile(config: CompileConfig, opts: PlanOptions): Plan {
  const { dataset, model, seed, augmentation, degradations, stages } = config;
  // `dir` only says where the files are; their checksums key the stages instead.
  const data = { name: dataset.name, validation: dataset.validation, trainLimit: dataset.trainLimit ?? null, mean: dataset.mean, std: dataset.std };
  const training = { data, model, seed, augmentation };
  // The baselines get stage 4's budget and seed, but neither its losses nor its teachers.
  const { loss: _distillLoss, teacherInput: _teacherInput, ...budget } = stages.distill;
  const fineTune = { ...budget, loss: stages.baselines.loss };
  const specs: StageSpec[] = [{ id: 'base', kind: 'base', config: { ...training, stage: stages.base }, deps: [], data: ['train'] }];
  for (const kind of DEGRADATION_KINDS) {
    specs.push({ id: `degrade-${kind}`, kind: 'degrade', config: { ...training, stage: stages.degradation, degradation: kind, levels: degradations[kind] }, deps: ['base'], data: ['train'] });
  }
  const degradeIds = DEGRADATION_KINDS.map((k) => `degrade-${k}`);
  specs.push({ id: 'fusion', kind: 'fusion', config: { data, model, seed, degradations, fusion: stages.fusion }, deps: degradeIds, data: ['train'] });
  specs.push({ id: 'distill', kind: 'distill', config: { ...training, stage: stages.distill, degradations }, deps: ['fusion', ...degradeIds], data: ['train'] });
  const baseline = (b: BaselineStage) => opts.baselines === true || (Array.isArray(opts.baselines) && opts.baselines.includes(b));
  if (baseline('vanilla')) specs.push({ id: 'vanilla', kind: 'vanilla', config: { ...training, stage: fineTune, degradations }, deps: ['base'], data: ['train'] });
  if (baseline('fusing')) specs.push({ id: 'fusing', kind: 'fusing', config: { ...training, stage: fineTune, degradations }, deps: ['fusion'], data: ['train'] });

  const all = [...DEGRADATION_KINDS];
  const evals: EvalTarget[] = [
    { row: 'base', label: 'Base', model: { stage: 'base', file: PARAMS_FILE }, kinds: all, clean: true },
    ...DEGRADATION_KINDS.map((k): EvalTarget => ({ row: `oracle-${k}`, label: `Oracle (${k})`, model: { stage: `degrade-${k}`, file: PARAMS_FILE }, kinds: [k], clean: false })),
    ...(baseline('vanilla') ? [{ row: 'vanilla', label: 'Vanilla fine-tune', model: { stage: 'vanilla', file: PARAMS_FILE }, kinds: all, clean: true }] : []),
    { row: 'soup-copy', label: 'ModelSoups, BN copied', model: { stage: 'fusion', file: FUSION_FILES.soupCopy }, kinds: all, clean: true },
    { row: 'soup-recal', label: 'ModelSoups, BN recalibrated', model: { stage: 'fusion', file: FUSION_FILES.soupRecal }, kinds: all, clean: true },
    ...(baseline('fusing') ? [{ row: 'fusing', label: 'Fusing', model: { stage: 'fusing', file: PARAMS_FILE }, kinds: all, clean: true }] : []),
    { row: 'fusiondistill', label: 'FusionDistill', model: { stage: 'distill', file: PARAMS_FILE }, kinds: all, clean: true },
  ];
  // The batch size does not change what is measured, so it stays out of the key.
  const { batchSize: _batchSize, ...grid } = config.evaluation;
  const evaluation = { ...grid, quick: opts.quick ? config.evaluation.quick : null };
  for (const e of evals) {
    specs.push({
      id: `eval-${e.row}`,
      kind: 'eval',
      config: { model: e.model, kinds: e.kinds, clean: e.clean, evaluation, levels: Object.fromEntries(e.kinds.map((k) => [k, degradations[k]])), data, arch: model },
      deps: [e.model.stage],
      data: ['test'],
    });
  }
  return { stages: specs, evals, shipped: { stage: 'distill', file: PARAMS_FILE } };
}

/** Stage ids downstream of `id` (itself excluded), in plan order. */
export function dependents(plan: Plan, id: string): string[] {
  const hit = new Set([id]);
  for (const s of plan.stages) if (s.deps.some((d) => hit.has(d))) hit.add(s.id);
  hit.delete(id);
  return plan.stages.map((s) => s.id).filter((s) => hit.has(s));
}
