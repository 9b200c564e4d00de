/**
 * The training loop: any graph, any objective, on any engine (compiler/engine), resumable
 * bit-exactly on the same engine.
 *
 * Determinism: the trainer's Rng draws one seed per epoch; the epoch's shuffle and every
 * batch's augmentation derive from that seed and the batch index only (batches.ts). A
 * checkpoint stores parameters, optimizer slots, the Rng state, the epoch seed and the
 * position, so a resumed run replays exactly the steps the uninterrupted run would take.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../../shared/rng.ts';
import type { LabelledImages } from '../data/types.ts';
import type { Engine, Runner, Trainer } from '../engine/types.ts';
import type { Graph, HostTensor, ParamStore } from '../graph/ir.ts';
import { checkParams } from '../graph/shapes.ts';
import { type AugmentConfig, NO_AUGMENT, normalizeBatch } from './augment.ts';
import { type BatchRecipe, epochOrder } from './batches.ts';
import { type Checkpoint, readCheckpoint, writeCheckpoint } from './checkpoint.ts';
import type { Objective, TeacherSpec } from './objective.ts';
import { type OptimizerConfig, type OptimizerState, validateOptimizer } from './optimizers.ts';
import { BatchPipeline, type PrefetchMode } from './pipeline.ts';
import { type EpochRecord, type ProgressReporter, SILENT, type StepInfo } from './progress.ts';
import { type ScheduleConfig, learningRate, validateSchedule } from './schedules.ts';

/** Plain cross-entropy: the objective when none is given. */
export const CROSS_ENTROPY: Objective = { ce: 1 };

export interface TrainOptions {
  graph: Graph;
  /** Starting parameters (ignored when resuming from a checkpoint). */
  params: ParamStore;
  train: LabelledImages;
  /** Held-out validation split: evaluated every epoch, selects the best checkpoint. Never test data. */
  val?: LabelledImages;
  epochs: number;
  batchSize: number;
  optimizer: OptimizerConfig;
  schedule: ScheduleConfig;
  augment?: AugmentConfig;
  degrade?: BatchRecipe['degrade'];
  normalize: { mean: number[]; std: number[] };
  /** What to minimise (default: cross-entropy). */
  objective?: Objective;
  /** Frozen models the objective distils from; they see the clean image or the student's. */
  teachers?: TeacherSpec;
  /** What runs the steps and the validation passes. */
  engine: Engine;
  seed: number;
  /** Directory for `last.ckpt` (every epoch) and `best.ckpt` (best validation accuracy). */
  outDir?: string;
  /** Continue from `outDir/last.ckpt` when it exists. */
  resume?: boolean;
  /** Also checkpoint every this many steps inside an epoch. */
  checkpointEverySteps?: number;
  /** Where batches are prepared; default: a worker when degrading (CPU-heavy), else inline. */
  prefetch?: PrefetchMode;
  evalBatchSize?: number;
  /** Anything else that must match for a resume to be valid (e.g. teacher identities). */
  fingerprintExtra?: unknown;
  /**
   * Stops the run gracefully: after the step in progress, the state is checkpointed and
   * train() rejects with a TrainingInterruptedError (e.g. wired to SIGINT by the CLI).
   */
  signal?: AbortSignal;
  /** Called after every step (and its checkpoint, if any); throwing stops the run. */
  onStep?: (info: StepInfo) => void;
  progress?: ProgressReporter;
}

export interface TrainStats {
  steps: number;
  images: number;
  /** Training wall time of the steps this call ran (evaluation excluded). */
  seconds: number;
  imagesPerSecond: number;
  /** Share of step wall time the main thread spent on data (waiting or preparing). */
  dataShare: number;
  /** Mean milliseconds to prepare one batch, wherever it ran. */
  prepMsPerBatch: number;
  prefetch: PrefetchMode;
  /** What ran the steps (Engine.description). */
  engine: string;
}

export interface TrainResult {
  params: ParamStore;
  best: { epoch: number; valAccuracy: number; params: ParamStore } | null;
  history: EpochRecord[];
  stats: TrainStats;
  resumedFrom: { epoch: number; batch: number } | null;
}

export class TrainingInterruptedError extends Error {
  override name = 'TrainingInterruptedError';
}

export const TRAIN_STATE_FORMAT = 'facet.train-state/1';
export const PARAMS_FORMAT = 'facet.params/1';

interface TrainStateMeta {
  format: typeof TRAIN_STATE_FORMAT;
  fingerprint: string;
  arch: string;
  /** Epoch in progress (0-based); equals `epochs` when training is complete. */
  epoch: number;
  /** Next batch of that epoch. */
  batch: number;
  globalStep: number;
  /** Seed of the epoch in progress, or null when it has not started. */
  epochSeed: number | null;
  rngState: number[];
  optimizer: { kind: OptimizerState['kind']; step: number };
  epochSums: EpochSums;
  history: EpochRecord[];
  best: { epoch: number; valAccuracy: number } | null;
}

export interface ParamsMeta {
  format: typeof PARAMS_FORMAT;
  arch: string;
  epoch: number;
  valAccuracy: number | null;
}

interface EpochSums {
  loss: number;
  correct: number;
  images: number;
  seconds: number;
  dataMs: number;
}
const emptySums = (): EpochSums => ({ loss: 0, correct: 0, images: 0, seconds: 0, dataMs: 0 });

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const { graph, epochs, batchSize, engine } = opts;
  checkOptions(opts);
  const stepsPerEpoch = Math.floor(opts.train.count / batchSize);
  const totalSteps = stepsPerEpoch * epochs;
  const clock = { totalSteps, stepsPerEpoch };
  const objective = opts.objective ?? CROSS_ENTROPY;
  const progress = opts.progress ?? SILENT;
  const fingerprint = trainFingerprint(opts);
  const lastPath = opts.outDir ? join(opts.outDir, 'last.ckpt') : undefined;
  const bestPath = opts.outDir ? join(opts.outDir, 'best.ckpt') : undefined;
  if (opts.outDir) mkdirSync(opts.outDir, { recursive: true });

  checkParams(graph, opts.params);
  const rng = new Rng(opts.seed).fork(0x7a1);
  const trainer: Trainer = await engine.trainer({ graph, params: opts.params, optimizer: opts.optimizer, objective, teachers: opts.teachers, batchSize });
  let state: TrainStateMeta = {
    format: TRAIN_STATE_FORMAT,
    fingerprint,
    arch: graph.arch,
    epoch: 0,
    batch: 0,
    globalStep: 0,
    epochSeed: null,
    rngState: rng.getState(),
    optimizer: { kind: opts.optimizer.kind, step: 0 },
    epochSums: emptySums(),
    history: [],
    best: null,
  };
  let resumedFrom: TrainResult['resumedFrom'] = null;
  let pipeline: BatchPipeline | undefined;
  const totals = { steps: 0, images: 0, seconds: 0, dataMs: 0 };
  const mode = opts.prefetch ?? (opts.degrade ? 'worker' : 'inline');
  let bestInMemory: ParamStore | undefined;
  try {
    if (opts.resume && lastPath && existsSync(lastPath)) {
      const ckpt = readCheckpoint<TrainStateMeta>(lastPath);
      const meta = ckpt.meta;
      if (meta?.format !== TRAIN_STATE_FORMAT) throw new Error(`${lastPath}: not a training-state checkpoint (format ${JSON.stringify(meta?.format)})`);
      if (meta.fingerprint !== fingerprint) {
        throw new Error(`${lastPath}: written by a run with a different configuration (model, data, optimizer, schedule, augmentation, seed or engine); refusing to resume. Use a new --out or delete the checkpoint.`);
      }
      const saved = pick(ckpt.tensors, 'param/');
      checkParams(graph, saved);
      await trainer.load(saved, { kind: meta.optimizer.kind, step: meta.optimizer.step, slots: pick(ckpt.tensors, 'opt/') });
      rng.setState(meta.rngState);
      state = meta;
      resumedFrom = { epoch: meta.epoch, batch: meta.batch };
    }

    const saveState = async () => {
      if (!lastPath) return;
      state.rngState = rng.getState();
      const opt: OptimizerState = await trainer.optimizerState();
      state.optimizer = { kind: opt.kind, step: opt.step };
      const tensors = new Map<string, HostTensor>();
      for (const [k, t] of await trainer.params()) tensors.set(`param/${k}`, t);
      for (const [k, t] of opt.slots) tensors.set(`opt/${k}`, t);
      writeCheckpoint(lastPath, { meta: state, tensors });
    };

    const recipe: BatchRecipe = {
      augment: opts.augment ?? NO_AUGMENT,
      degrade: opts.degrade,
      keepClean: opts.teachers?.input === 'clean',
      mean: opts.normalize.mean,
      std: opts.normalize.std,
    };
    pipeline = state.epoch < epochs ? await BatchPipeline.create(opts.train, recipe, { mode }) : undefined;
    while (state.epoch < epochs) {
      if (state.epochSeed === null) {
        state.epochSeed = rng.nextU32();
        state.batch = 0;
        state.epochSums = emptySums();
      }
      const epoch = state.epoch;
      pipeline!.startEpoch(epochOrder(opts.train.count, state.epochSeed), state.epochSeed, batchSize, state.batch);
      let lr = learningRate(opts.schedule, state.globalStep, clock);
      while (state.batch < stepsPerEpoch) {
        const stepStart = performance.now();
        const before = dataMs(pipeline!);
        const batch = await pipeline!.next();
        lr = learningRate(opts.schedule, state.globalStep, clock);
        const { loss: lossValue, correct } = await trainer.step(batch, lr);
        // On the cpu and wasm backends a step never waits on I/O, so without this the event
        // loop would not turn until the run ends: no signal handlers, no timers. Inline
        // prefetch of the next batch runs here, inside the step's measured time.
        await new Promise((resolve) => setImmediate(resolve));
        const stepMs = performance.now() - stepStart;
        const stepDataMs = dataMs(pipeline!) - before;
        if (!Number.isFinite(lossValue)) throw new Error(`training diverged: loss is ${lossValue} at epoch ${epoch + 1}, step ${state.batch + 1}`);
        const sums = state.epochSums;
        sums.loss += lossValue * batch.n;
        sums.correct += correct;
        sums.images += batch.n;
        sums.seconds += stepMs / 1000;
        sums.dataMs += stepDataMs;
        totals.steps++;
        totals.images += batch.n;
        totals.seconds += stepMs / 1000;
        totals.dataMs += stepDataMs;
        state.batch++;
        state.globalStep++;
        const every = opts.checkpointEverySteps ?? 0;
        if (every > 0 && state.batch % every === 0 && state.batch < stepsPerEpoch) await saveState();
        const ips = sums.images / sums.seconds;
        const info: StepInfo = {
          epoch,
          epochs,
          step: state.batch,
          stepsPerEpoch,
          globalStep: state.globalStep,
          totalSteps,
          loss: lossValue,
          lr,
          imagesPerSecond: ips,
          dataShare: sums.dataMs / 1000 / sums.seconds,
          etaSeconds: ((totalSteps - state.globalStep) * batchSize) / ips,
        };
        progress.step(info);
        opts.onStep?.(info);
        if (opts.signal?.aborted && state.batch < stepsPerEpoch) {
          await saveState();
          throw interrupted(`epoch ${epoch + 1}, step ${state.batch}/${stepsPerEpoch}`);
        }
      }
      const val = opts.val ? await evaluateWith(engine, graph, await trainer.params(), opts.val, opts.normalize, opts.evalBatchSize ?? 256) : null;
      const sums = state.epochSums;
      const record: EpochRecord = {
        epoch,
        trainLoss: sums.loss / sums.images,
        trainAccuracy: sums.correct / sums.images,
        valLoss: val?.loss ?? null,
        valAccuracy: val?.accuracy ?? null,
        lr,
        seconds: sums.seconds,
        imagesPerSecond: sums.images / sums.seconds,
        dataShare: sums.dataMs / 1000 / sums.seconds,
      };
      state.history.push(record);
      progress.epoch(record, epochs);
      // Without a validation split the latest epoch counts as best.
      const score = val?.accuracy ?? -1;
      if (!state.best || score > state.best.valAccuracy || !val) {
        state.best = { epoch, valAccuracy: score };
        // Without an output folder the best epoch's parameters are kept in memory; a run that
        // returned the last epoch's as "best" would not be selecting on validation at all.
        bestInMemory = await trainer.params();
        if (bestPath) writeParams(bestPath, graph.arch, bestInMemory, epoch, val?.accuracy ?? null);
      }
      state.epoch++;
      state.batch = 0;
      state.epochSeed = null;
      state.epochSums = emptySums();
      await saveState();
      if (opts.signal?.aborted && state.epoch < epochs) throw interrupted(`the end of epoch ${epoch + 1}`);
    }
    const params = await trainer.params();
    let best: TrainResult['best'] = null;
    if (state.best) {
      // A resumed run may have found its best epoch before the restart: then only best.ckpt has it.
      const bestParams = bestInMemory ?? (bestPath && existsSync(bestPath) ? readCheckpoint(bestPath).tensors : params);
      best = { epoch: state.best.epoch, valAccuracy: state.best.valAccuracy, params: bestParams };
    }
    return {
      params,
      best,
      history: state.history,
      stats: {
        steps: totals.steps,
        images: totals.images,
        seconds: totals.seconds,
        imagesPerSecond: totals.seconds > 0 ? totals.images / totals.seconds : 0,
        dataShare: totals.seconds > 0 ? totals.dataMs / 1000 / totals.seconds : 0,
        prepMsPerBatch: pipeline && pipeline.stats.batches > 0 ? pipeline.stats.prepMs / pipeline.stats.batches : 0,
        prefetch: mode,
        engine: engine.description,
      },
      resumedFrom,
    };
  } finally {
    progress.close();
    await pipeline?.close();
    await trainer.dispose();
  }

  function interrupted(where: string): TrainingInterruptedError {
    return new TrainingInterruptedError(
      `training interrupted at ${where}` + (lastPath ? `; state saved to ${lastPath}, resume to continue` : ' (no output directory: nothing saved)'),
    );
  }
}

function dataMs(p: BatchPipeline): number {
  return p.mode === 'worker' ? p.stats.waitMs : p.stats.mainPrepMs;
}

/** Accuracy and mean cross-entropy of evaluation-mode predictions on a labelled set. */
export async function evaluate(
  runner: Runner,
  graph: Graph,
  data: LabelledImages,
  normalize: { mean: number[]; std: number[] },
  batchSize = 256,
): Promise<{ accuracy: number; loss: number }> {
  const pixels = data.height * data.width * data.channels;
  let correct = 0;
  let lossSum = 0;
  for (let start = 0; start < data.count; start += batchSize) {
    const n = Math.min(batchSize, data.count - start);
    const x = normalizeBatch(data.images.subarray(start * pixels, (start + n) * pixels), data.channels, normalize.mean, normalize.std);
    const logits = (await runner.run(x, n, [graph.output])).get(graph.output)!;
    const k = logits.shape[1]!;
    for (let i = 0; i < n; i++) {
      const row = logits.data.subarray(i * k, (i + 1) * k);
      let arg = 0;
      let max = -Infinity;
      for (let j = 0; j < k; j++) if (row[j]! > max) [max, arg] = [row[j]!, j];
      let sum = 0;
      for (let j = 0; j < k; j++) sum += Math.exp(row[j]! - max);
      const label = data.labels[start + i]!;
      lossSum += Math.log(sum) + max - row[label]!;
      if (arg === label) correct++;
    }
  }
  return { accuracy: correct / data.count, loss: lossSum / data.count };
}

/** {@link evaluate} with a runner the engine makes for `params` (released afterwards). */
export async function evaluateWith(engine: Engine, graph: Graph, params: ParamStore, data: LabelledImages, normalize: { mean: number[]; std: number[] }, batchSize = 256): Promise<{ accuracy: number; loss: number }> {
  const runner = await engine.runner(graph, params);
  try {
    return await evaluate(runner, graph, data, normalize, batchSize);
  } finally {
    await runner.dispose();
  }
}

/** Writes model parameters alone (what export and later stages read). */
export function writeParams(path: string, arch: string, params: ParamStore, epoch: number, valAccuracy: number | null): void {
  const meta: ParamsMeta = { format: PARAMS_FORMAT, arch, epoch, valAccuracy };
  writeCheckpoint(path, { meta, tensors: params });
}

/** Reads parameters from a `best.ckpt`-style file or from the `param/` part of a training state. */
export function readParams(path: string): { params: ParamStore; meta: ParamsMeta | TrainStateMeta } {
  const ckpt: Checkpoint<ParamsMeta | TrainStateMeta> = readCheckpoint(path);
  const format = (ckpt.meta as { format?: string } | null)?.format;
  if (format === PARAMS_FORMAT) return { params: ckpt.tensors, meta: ckpt.meta };
  if (format === TRAIN_STATE_FORMAT) return { params: pick(ckpt.tensors, 'param/'), meta: ckpt.meta };
  throw new Error(`${path}: checkpoint holds neither parameters nor a training state (format ${JSON.stringify(format)})`);
}

function pick(tensors: Map<string, HostTensor>, prefix: string): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [k, t] of tensors) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), t);
  return out;
}

/** Everything that decides the trajectory of a run; a checkpoint is only resumed by an identical one. */
function trainFingerprint(opts: TrainOptions): string {
  const describe = (d: LabelledImages | undefined) =>
    d && { name: d.name, split: d.split, count: d.count, shape: [d.height, d.width, d.channels], sample: sampleHash(d) };
  const json = JSON.stringify({
    graph: opts.graph,
    epochs: opts.epochs,
    batchSize: opts.batchSize,
    optimizer: opts.optimizer,
    schedule: opts.schedule,
    augment: opts.augment ?? NO_AUGMENT,
    degrade: opts.degrade ?? null,
    normalize: opts.normalize,
    objective: opts.objective ?? CROSS_ENTROPY,
    teachers: opts.teachers ? { input: opts.teachers.input, models: opts.teachers.models.map((m) => m.graph.arch) } : null,
    engine: opts.engine.identity,
    seed: opts.seed,
    train: describe(opts.train),
    val: describe(opts.val) ?? null,
    extra: opts.fingerprintExtra ?? null,
  });
  return createHash('sha256').update(json).digest('hex');
}

/** Hash of the labels and a strided sample of pixels: catches a different split without hashing 47 MB. */
function sampleHash(d: LabelledImages): string {
  const h = createHash('sha256');
  h.update(new Uint8Array(d.labels.buffer, d.labels.byteOffset, d.labels.byteLength));
  const stride = Math.max(1, Math.floor(d.images.length / 65536));
  const sample = new Uint8Array(Math.ceil(d.images.length / stride));
  for (let i = 0, j = 0; i < d.images.length; i += stride) sample[j++] = d.images[i]!;
  h.update(sample);
  return h.digest('hex').slice(0, 16);
}

function checkOptions(opts: TrainOptions): void {
  const { train, val, graph } = opts;
  const positiveInt = (name: string, v: number) => {
    if (!Number.isInteger(v) || v < 1) throw new Error(`train: ${name} must be a positive integer, got ${v}`);
  };
  positiveInt('epochs', opts.epochs);
  positiveInt('batchSize', opts.batchSize);
  if (!Number.isSafeInteger(opts.seed)) throw new Error(`train: seed must be an integer, got ${opts.seed}`);
  if (train.count < opts.batchSize) throw new Error(`train: ${train.name}/${train.split} has ${train.count} images, fewer than one batch of ${opts.batchSize}`);
  const input = graph.layers.find((l) => l.kind === 'input');
  if (!input || input.kind !== 'input') throw new Error(`train: graph ${graph.arch} has no input layer`);
  const [h, w, c] = input.shape;
  for (const d of [train, val]) {
    if (d && (d.height !== h || d.width !== w || d.channels !== c)) {
      throw new Error(`train: ${d.name}/${d.split} images are ${d.height}×${d.width}×${d.channels}, graph ${graph.arch} expects ${h}×${w}×${c}`);
    }
  }
  if (opts.checkpointEverySteps !== undefined && opts.checkpointEverySteps !== 0) positiveInt('checkpointEverySteps', opts.checkpointEverySteps);
  validateSchedule(opts.schedule, 'train.schedule');
  validateOptimizer(opts.optimizer, 'train.optimizer');
}
