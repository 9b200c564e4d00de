/**
 * The real stage implementations behind `facet compile`: training through the trainer
 * (compiler/train/loop.ts) with FusionDistill's losses, fusion, and evaluation of the
 * exported ONNX model. compile.ts decides when each runs; this file decides what it does.
 */
import { join } from 'node:path';
import { DEGRADATION_KINDS, type DegradationKind } from '../../shared/manifest.ts';
import { Rng } from '../../shared/rng.ts';
import type { CompileData, LabelledImages } from '../data/types.ts';
import { initParams, resnet } from '../graph/builders.ts';
import type { Graph, ParamStore } from '../graph/ir.ts';
import type { Engine } from '../engine/types.ts';
import { exportOnnx } from '../onnx/export.ts';
import { readParams, train, writeParams, type TrainResult } from '../train/loop.ts';
import type { Objective, TeacherSpec } from '../train/objective.ts';
import type { OptimizerConfig as TrainerOptimizer } from '../train/optimizers.ts';
import type { PrefetchMode } from '../train/pipeline.ts';
import { SILENT, type ProgressReporter, type StepInfo } from '../train/progress.ts';
import type { ScheduleConfig as TrainerSchedule } from '../train/schedules.ts';
import { formatPoints } from './accuracy.ts';
import { writeFileAtomic } from './cache.ts';
import { codeVersion } from './code.ts';
import { dataChecksum, EVAL_FILE, ONNX_FILE, type StageEnv, type StageImpls } from './compile.ts';
import type { CompileConfig, DegradationRanges, EvaluationConfig, LossWeights, OptimizerConfig, ScheduleConfig, TrainingStage } from './config.ts';
import { evaluate, onnxClassifier } from './evaluate.ts';
import { fuseParams, recalibrateBn } from './fusion.ts';
import { publishFull } from './publish.ts';
import { FUSION_FILES, PARAMS_FILE, type ModelRef } from './plan.ts';
import { degradedCopy, recalibrationBatches, repeatSet, trainingSplits } from './training-data.ts';

export function buildGraph(config: CompileConfig, data: LabelledImages): Graph {
  const { depth, width, shortcut, head } = config.model;
  return resnet({ depth, width, input: [data.height, data.width, data.channels], classes: data.classNames.length, shortcut, head });
}

export function trainerOptimizer(o: OptimizerConfig): TrainerOptimizer {
  return o.type === 'sgd'
    ? { kind: 'sgd', momentum: o.momentum, nesterov: o.nesterov, weightDecay: o.weightDecay }
    : { kind: 'radam', beta1: o.betas[0], beta2: o.betas[1], eps: o.eps, weightDecay: o.weightDecay };
}

export function trainerSchedule(s: ScheduleConfig, lr: number): TrainerSchedule {
  switch (s.type) {
    case 'constant':
      return { kind: 'constant', lr };
    case 'step':
      return { kind: 'step', lr, gamma: s.gamma, milestones: s.milestones, unit: s.unit };
    case 'cosine':
      return { kind: 'cosine', lr, floor: s.min };
    case 'onecycle':
      return { kind: 'onecycle', peak: s.peak, pctStart: s.pctStart, divFactor: s.divFactor, finalDivFactor: s.finalDivFactor };
  }
}

function loadParams(env: StageEnv, ref: ModelRef): ParamStore {
  const dep = env.deps.get(ref.stage);
  if (!dep) throw new Error(`stage ${env.spec.id}: dependency ${ref.stage} is missing`);
  return readParams(join(dep.dir, ref.file)).params;
}

export interface StageRuntime {
  /** What trains, evaluates on validation data and recalibrates (compiler/engine). */
  engine: Engine;
  prefetch: PrefetchMode;
  /** Progress display for training stages (default: none). */
  progress?: () => ProgressReporter;
  /** Also checkpoint every this many steps (default: every epoch only). */
  checkpointEverySteps?: number;
  /** Called after every training step; throwing stops the stage (its checkpoints stay for the rerun). */
  onStep?: (stage: string, info: StepInfo) => void;
}

interface FineTune {
  graph: Graph;
  params: ParamStore;
  stage: TrainingStage;
  /** Images per step (stage 4: K sub-batches). */
  batchSize: number;
  kinds?: DegradationKind[];
  objective: Objective;
  teachers?: TeacherSpec;
  val?: LabelledImages;
}

async function runTraining(env: StageEnv, runtime: StageRuntime, job: FineTune): Promise<unknown> {
  const { config } = env;
  const splits = trainingSplits(config, env.data.train);
  const t0 = performance.now();
  const result: TrainResult = await train({
    graph: job.graph,
    params: job.params,
    train: repeatSet(splits.train, job.kinds?.length ?? 1),
    val: job.val,
    epochs: job.stage.epochs,
    batchSize: job.batchSize,
    optimizer: trainerOptimizer(job.stage.optimizer),
    schedule: trainerSchedule(job.stage.schedule, job.stage.optimizer.lr),
    augment: config.augmentation,
    degrade: job.kinds ? { kinds: job.kinds, levels: config.degradations } : undefined,
    normalize: { mean: config.dataset.mean, std: config.dataset.std },
    objective: job.objective,
    teachers: job.teachers,
    engine: runtime.engine,
    seed: job.stage.seed ?? config.seed,
    outDir: env.workDir,
    resume: true,
    prefetch: runtime.prefetch,
    checkpointEverySteps: runtime.checkpointEverySteps,
    onStep: runtime.onStep && ((info) => runtime.onStep!(env.spec.id, info)),
    progress: runtime.progress?.() ?? SILENT,
  });
  const chosen = result.best?.params ?? result.params;
  writeParams(join(env.outDir, PARAMS_FILE), job.graph.arch, chosen, result.best?.epoch ?? job.stage.epochs - 1, result.best && result.best.valAccuracy >= 0 ? result.best.valAccuracy : null);
  if (result.resumedFrom) env.log(`resumed from epoch ${result.resumedFrom.epoch + 1}, step ${result.resumedFrom.batch}`);
  env.log(`${result.stats.images} images at ${result.stats.imagesPerSecond.toFixed(1)} img/s, data prep ${(100 * result.stats.dataShare).toFixed(1)}% of step time`);
  return {
    seconds: (performance.now() - t0) / 1000,
    bestEpoch: result.best?.epoch ?? null,
    valAccuracy: result.best && result.best.valAccuracy >= 0 ? result.best.valAccuracy : null,
    history: result.history,
    stats: result.stats,
    dataShare: result.stats.dataShare,
    resumedFrom: result.resumedFrom,
  };
}

/**
 * A stage's loss weights as an objective: CE, and with teachers the feature and logit
 * distillation terms, each summed over `groups` sub-batches (one per teacher).
 */
export function stageObjective(w: LossWeights, groups: number, withTeachers: boolean): Objective {
  return {
    ce: w.ce,
    feature: withTeachers && w.feature > 0 ? { weight: w.feature, groups } : undefined,
    distill: withTeachers && w.logit > 0 ? { weight: w.logit, temperature: w.temperature, groups } : undefined,
  };
}

export function stageImpls(runtime: StageRuntime): StageImpls {
  const run: StageImpls['run'] = {
    async base(env) {
      const graph = buildGraph(env.config, env.data.train);
      const params = initParams(graph, new Rng(env.config.seed).fork(0x1417));
      const { val } = trainingSplits(env.config, env.data.train);
      const stage = env.config.stages.base;
      return runTraining(env, runtime, { graph, params, stage, batchSize: stage.batchSize, objective: stageObjective(stage.loss, 1, false), val });
    },

    async degrade(env) {
      const { config } = env;
      const kind = (env.spec.config as { degradation: DegradationKind }).degradation;
      const graph = buildGraph(config, env.data.train);
      const base = loadParams(env, { stage: 'base', file: PARAMS_FILE });
      const { val } = trainingSplits(config, env.data.train);
      const stage = config.stages.degradation;
      // Student starts as the base; the frozen base (eval mode) sees the clean image.
      const teachers: TeacherSpec = { models: [{ graph, params: base }], input: stage.teacherInput };
      return runTraining(env, runtime, { graph, params: base, stage, batchSize: stage.batchSize, kinds: [kind], objective: stageObjective(stage.loss, 1, true), teachers, val: val && degradedCopy(val, [kind], config.degradations, config.seed) });
    },

    async fusion(env) {
      const { config } = env;
      const graph = buildGraph(config, env.data.train);
      const models = DEGRADATION_KINDS.map((k) => loadParams(env, { stage: `degrade-${k}`, file: PARAMS_FILE }));
      const copy = fuseParams(graph, models, 'copy');
      const { recalibrationBatches: count, recalibrationBatchSize: size, bn } = config.stages.fusion;
      const splits = trainingSplits(config, env.data.train);
      const norm = { mean: config.dataset.mean, std: config.dataset.std };
      const t0 = performance.now();
      const recal = await recalibrateBn(runtime.engine, graph, copy, recalibrationBatches(splits.train, count, size, config.degradations, norm, config.seed));
      const recalSeconds = (performance.now() - t0) / 1000;
      const fused = bn === 'copy' ? copy : bn === 'average' ? fuseParams(graph, models, 'average') : recal;
      writeParams(join(env.outDir, FUSION_FILES.soupCopy), graph.arch, copy, 0, null);
      writeParams(join(env.outDir, FUSION_FILES.soupRecal), graph.arch, recal, 0, null);
      writeParams(join(env.outDir, FUSION_FILES.fused), graph.arch, fused, 0, null);
      env.log(`fused 4 models; BN of the fused model: ${bn}; recalibration on ${count}×${size} images took ${recalSeconds.toFixed(1)} s`);
      return { bn, recalSeconds };
    },

    async distill(env) {
      const { config } = env;
      const graph = buildGraph(config, env.data.train);
      const fused = loadParams(env, { stage: 'fusion', file: FUSION_FILES.fused });
      const teachers = DEGRADATION_KINDS.map((k) => loadParams(env, { stage: `degrade-${k}`, file: PARAMS_FILE }));
      const { val } = trainingSplits(config, env.data.train);
      const stage = config.stages.distill;
      const kinds = [...DEGRADATION_KINDS];
      // Sub-batch k holds degradation k; teacher k (eval mode) sees the clean images of sub-batch k.
      const teacherSpec: TeacherSpec = { models: teachers.map((params) => ({ graph, params })), input: stage.teacherInput };
      return runTraining(env, runtime, { graph, params: fused, stage, batchSize: stage.batchSize * kinds.length, kinds, objective: stageObjective(stage.loss, kinds.length, true), teachers: teacherSpec, val: val && degradedCopy(val, kinds, config.degradations, config.seed) });
    },

    vanilla: (env) => baseline(env, { stage: 'base', file: PARAMS_FILE }),
    fusing: (env) => baseline(env, { stage: 'fusion', file: FUSION_FILES.fused }),

    async eval(env) {
      const { config } = env;
      const spec = env.spec.config as { model: ModelRef; kinds: DegradationKind[]; clean: boolean; evaluation: Omit<EvaluationConfig, 'quick' | 'batchSize'> & { quick: EvaluationConfig['quick'] | null }; levels: Partial<DegradationRanges> };
      const graph = buildGraph(config, env.data.test);
      const params = loadParams(env, spec.model);
      const onnx = exportOnnx(graph, params, { labels: env.data.test.classNames, mean: config.dataset.mean, std: config.dataset.std });
      await writeFileAtomic(join(env.outDir, ONNX_FILE), onnx);
      const model = await onnxClassifier(onnx);
      try {
        const quick = spec.evaluation.quick !== null;
        const evaluation: EvaluationConfig = { ...spec.evaluation, batchSize: config.evaluation.batchSize, quick: spec.evaluation.quick ?? config.evaluation.quick };
        const result = await evaluate(model.classify, env.data.test, { ranges: spec.levels, evaluation, quick, kinds: spec.kinds, clean: spec.clean, mean: config.dataset.mean, std: config.dataset.std });
        await writeFileAtomic(join(env.outDir, EVAL_FILE), JSON.stringify(result));
        const s = result.summary;
        env.log(['clean', ...DEGRADATION_KINDS, 'degradedMean'].filter((k) => s[k as keyof typeof s] !== null).map((k) => `${k} ${formatPoints(s[k as keyof typeof s] as number)}%`).join(', '));
        return { summary: s };
      } finally {
        await model.close();
      }
    },
  };

  async function baseline(env: StageEnv, from: ModelRef): Promise<unknown> {
    // Same budget and data as stage 4 (K degradation sub-batches per step), CE only, no teachers.
    const { config } = env;
    const graph = buildGraph(config, env.data.train);
    const { val } = trainingSplits(config, env.data.train);
    const stage = config.stages.distill;
    const kinds = [...DEGRADATION_KINDS];
    return runTraining(env, runtime, { graph, params: loadParams(env, from), stage, batchSize: stage.batchSize * kinds.length, kinds, objective: stageObjective(config.stages.baselines.loss, kinds.length, false), val: val && degradedCopy(val, kinds, config.degradations, config.seed) });
  }

  return {
    run,
    codeVersion: (kind) => codeVersion(kind, runtime.engine),
    // publish.ts, outside the code hashed above: how a model is published does not change what was trained.
    publish: (env) => publishFull(env, buildGraph(env.config, env.data.test)),
  };
}

/** Loads the configured data set's train and test splits with their checksums. */
export async function loadCompileData(config: CompileConfig): Promise<CompileData> {
  const { loadDataset } = await import('../data/registry.ts');
  const [train, test] = await Promise.all([
    loadDataset({ name: config.dataset.name, split: 'train', dir: config.dataset.dir }),
    loadDataset({ name: config.dataset.name, split: 'test', dir: config.dataset.dir }),
  ]);
  const channels = config.dataset.mean.length;
  if (channels !== train.channels) throw new Error(`config dataset.mean has ${channels} entries but ${config.dataset.name} images have ${train.channels} channels`);
  return { train, test, checksums: { train: dataChecksum(train), test: dataChecksum(test) } };
}

