/**
 * Training on onnxruntime. Two ways to run a step, chosen by how many replicas the
 * engine asks for:
 *
 * - one replica: the fused step graph (forward, backward, loss, update) in one session,
 *   state in two flat banks that the session reads and writes in turn;
 * - R replicas (data parallel): onnxruntime-node computes on the calling JavaScript
 *   thread, so replica 0 runs on the main thread and replicas 1…R−1 in worker threads, each
 *   with its own one-thread session, forward and backward on its slice of the batch; the
 *   main thread then averages the R gradient sets and applies the update in a small update
 *   graph. Each replica's BN
 *   normalises with its own slice's statistics (as PyTorch's DistributedDataParallel does
 *   without SyncBatchNorm); the running statistics are combined into exactly those of the
 *   whole batch.
 */
import * as ort from 'onnxruntime-node';
import type { Graph, ParamStore } from '../../graph/ir.ts';
import { inferShapes, inputLayer } from '../../graph/shapes.ts';
import { validateObjective } from '../../train/objective.ts';
import type { OptimizerState } from '../../train/optimizers.ts';
import type { HostBatch, StepResult, Trainer, TrainerSpec } from '../types.ts';
import { GradientReplica, OrtReplica, type ReplicaLayout, type ReplicaSpec, type ReplicaStepResult } from './replica.ts';
import { ReplicaWorker } from './replica-pool.ts';
import { floatTensor, type OrtSessionConfig, requireIo, runnerModel, sessionOptions } from './session.ts';
import { optimizerStateOf, packState, Packing, StateBanks, unpackState } from './state.ts';
import { batchStatName, buildTrainingGraph, buildUpdateGraph, type GraphFormulation, gradName, nextName, optimizerScalarValues, optimizerSlots, STEP_OUTPUT, type TrainingGraph } from './training-graph.ts';

/** Below this many images per replica, BN's batch statistics get too noisy to split further. */
export const MIN_REPLICA_ROWS = 16;

export interface OrtTrainerConfig {
  session: OrtSessionConfig;
  /** Replicas wanted (worker threads, each with a one-thread session); fewer if the batch does not split. */
  replicas: number;
  formulation: GraphFormulation;
}

/** Sub-batches that share one teacher each (1 without teachers). */
function groupsOf(spec: TrainerSpec): number {
  return spec.teachers && spec.teachers.models.length > 1 ? spec.teachers.models.length : 1;
}

/** The most replicas ≤ `wanted` that split every group evenly with at least {@link MIN_REPLICA_ROWS} rows each. */
export function replicaCount(wanted: number, batch: number, groups: number): number {
  for (let r = Math.max(1, wanted); r > 1; r--) {
    if ((batch / groups) % r === 0 && batch / r >= MIN_REPLICA_ROWS) return r;
  }
  return 1;
}

/** Rows of replica r of R: its share of each of the G groups, in group order. */
export function sliceBatch(batch: HostBatch, replicas: number, groups: number, pixels: number): HostBatch[] {
  const per = batch.n / groups;
  const m = per / replicas;
  return Array.from({ length: replicas }, (_, r) => {
    const rows = m * groups;
    const x = new Float32Array(rows * pixels);
    const clean = batch.clean ? new Float32Array(rows * pixels) : undefined;
    const labels = new Int32Array(rows);
    for (let g = 0; g < groups; g++) {
      const from = g * per + r * m;
      x.set(batch.x.subarray(from * pixels, (from + m) * pixels), g * m * pixels);
      clean?.set(batch.clean!.subarray(from * pixels, (from + m) * pixels), g * m * pixels);
      labels.set(batch.labels.subarray(from, from + m), g * m);
    }
    return { n: rows, x, clean, labels };
  });
}

function countCorrect(predicted: BigInt64Array, labels: Int32Array): number {
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (Number(predicted[i]) === labels[i]) correct++;
  return correct;
}

const scalarFeeds = (values: Record<string, number>): Record<string, ort.Tensor> =>
  Object.fromEntries(Object.entries(values).map(([k, v]) => [k, floatTensor(new Float32Array([v]), [])]));

export async function createOrtTrainer(spec: TrainerSpec, cfg: OrtTrainerConfig): Promise<Trainer> {
  const { graph, objective, batchSize } = spec;
  validateObjective(objective, spec.teachers, `trainer ${graph.arch}`);
  const groups = groupsOf(spec);
  if (batchSize % groups !== 0) throw new Error(`trainer ${graph.arch}: a batch of ${batchSize} does not split into ${groups} equal sub-batches (one per teacher)`);
  const replicas = replicaCount(cfg.replicas, batchSize, groups);
  const rows = batchSize / replicas;
  const image = inputLayer(graph).shape;
  const classes = (inferShapes(graph).get(graph.output) as [number])[0];
  const mode = replicas === 1 ? 'step' : 'gradients';
  const tg = buildTrainingGraph(graph, { batch: rows, objective, mode, optimizer: spec.optimizer, ...cfg.formulation });
  const teachers = spec.teachers && {
    models: spec.teachers.models.map((t) => runnerModel(t.graph, t.params, (objective.feature?.weight ?? 0) > 0 ? [t.graph.feature!] : [])),
    input: spec.teachers.input,
    feature: spec.teachers.models[0]!.graph.feature,
  };
  const replicaSpec: ReplicaSpec = {
    trainModel: tg.bytes,
    rows,
    image,
    classes,
    objective,
    teachers,
    featureDims: tg.featureDims,
    session: replicas === 1 ? cfg.session : { ...cfg.session, threads: Math.max(1, Math.floor(cfg.session.threads / replicas)) },
  };
  // Trainable parameters first: they are the prefix the replicas need every step.
  const optimizerKeys = mode === 'step' ? tg.slots : tg.updated.flatMap((k) => optimizerSlots(spec.optimizer).map((slot) => `${k}#${slot}`));
  const packing = new Packing([...tg.trainable, ...tg.runningStats, ...optimizerKeys].map((k) => [k, tg.shapes.get(k) ?? tg.shapes.get(k.split('#')[0]!)!]));
  const banks = new StateBanks(packing);
  packState(graph, packing, banks.now, spec.params);
  if (replicas === 1) {
    const replica = await OrtReplica.create(replicaSpec);
    const keys = packing.slots.map((s) => s.key);
    requireIo(replica.session, [...keys, ...tg.scalars], [...keys.map(nextName), STEP_OUTPUT.loss, STEP_OUTPUT.predicted], `training graph ${graph.arch}`);
    return new FusedTrainer(graph, spec, tg, replica, packing, banks);
  }
  return DataParallelTrainer.create(graph, spec, tg, replicaSpec, replicas, groups, packing, banks, cfg.session);
}

/** Shared bookkeeping of both trainers: state banks, the update counter, checkpoints. */
abstract class OrtTrainerBase implements Trainer {
  protected updates = 0;
  constructor(
    protected readonly graph: Graph,
    protected readonly spec: TrainerSpec,
    protected readonly tg: TrainingGraph,
    protected readonly packing: Packing,
    protected readonly banks: StateBanks,
  ) {}

  abstract step(batch: HostBatch, lr: number): Promise<StepResult>;
  abstract dispose(): Promise<void>;

  async params(): Promise<ParamStore> {
    return unpackState(this.graph, this.packing, this.banks.now, (k) => !k.includes('#'));
  }

  async optimizerState(): Promise<OptimizerState> {
    return optimizerStateOf(this.graph, this.packing, this.banks.now, this.spec.optimizer.kind, this.updates);
  }

  async load(params: ParamStore, state: OptimizerState): Promise<void> {
    if (state.kind !== this.spec.optimizer.kind) throw new Error(`optimizer state is for "${state.kind}", this run uses "${this.spec.optimizer.kind}"`);
    packState(this.graph, this.packing, this.banks.now, params, state.slots);
    this.updates = state.step;
  }

  /** Fetches that write every `.next` output straight into the next bank. */
  protected nextFetches(keys: Iterable<string>): Record<string, ort.Tensor | null> {
    const fetches: Record<string, ort.Tensor | null> = {};
    for (const key of keys) fetches[nextName(key)] = this.packing.tensor(this.banks.next, key);
    return fetches;
  }

  protected stateFeeds(keys: Iterable<string>): Record<string, ort.Tensor> {
    const feeds: Record<string, ort.Tensor> = {};
    for (const key of keys) feeds[key] = this.packing.tensor(this.banks.now, key);
    return feeds;
  }
}

class FusedTrainer extends OrtTrainerBase {
  constructor(graph: Graph, spec: TrainerSpec, tg: TrainingGraph, private readonly replica: OrtReplica, packing: Packing, banks: StateBanks) {
    super(graph, spec, tg, packing, banks);
  }

  async step(batch: HostBatch, lr: number): Promise<StepResult> {
    const keys = this.packing.slots.map((s) => s.key);
    const feeds = { ...(await this.replica.batchFeeds(batch)), ...this.stateFeeds(keys), ...scalarFeeds(optimizerScalarValues(this.spec.optimizer, this.updates, lr)) };
    const fetches = { [STEP_OUTPUT.loss]: null, [STEP_OUTPUT.predicted]: null, ...this.nextFetches(keys) };
    const out = await this.replica.session.run(feeds, fetches);
    this.banks.swap();
    this.updates++;
    return { loss: (out[STEP_OUTPUT.loss]!.data as Float32Array)[0]!, correct: countCorrect(out[STEP_OUTPUT.predicted]!.data as BigInt64Array, batch.labels) };
  }

  async dispose(): Promise<void> {
    await this.replica.release();
  }
}

class DataParallelTrainer extends OrtTrainerBase {
  private readonly gradPacking: Packing;
  private readonly statPacking: Packing;
  /** Values of the trainable parameters: the prefix of the state the replicas need. */
  private readonly paramValues: number;

  private constructor(
    graph: Graph,
    spec: TrainerSpec,
    tg: TrainingGraph,
    packing: Packing,
    banks: StateBanks,
    private readonly local: GradientReplica,
    private readonly workers: ReplicaWorker[],
    private readonly update: ort.InferenceSession,
    private readonly groups: number,
  ) {
    super(graph, spec, tg, packing, banks);
    this.gradPacking = new Packing(tg.updated.map((k) => [k, tg.shapes.get(k)!]));
    this.statPacking = new Packing(tg.runningStats.map((k) => [k, tg.shapes.get(k)!]));
    this.paramValues = tg.trainable.reduce((n, k) => n + packing.byKey.get(k)!.size, 0);
    this.localOut = { grads: new Float32Array(this.gradPacking.size), stats: new Float32Array(this.statPacking.size) };
  }

  /** Replica 0's outputs, written in place every step. */
  private readonly localOut: { grads: Float32Array; stats: Float32Array };

  static async create(graph: Graph, spec: TrainerSpec, tg: TrainingGraph, replicaSpec: ReplicaSpec, replicas: number, groups: number, packing: Packing, banks: StateBanks, session: OrtSessionConfig): Promise<DataParallelTrainer> {
    const updateModel = buildUpdateGraph(graph, tg, spec.optimizer, replicas);
    const update = await ort.InferenceSession.create(updateModel, sessionOptions({ ...session, threads: 1 }));
    const keys = packing.slots.map((s) => s.key);
    requireIo(update, keys, keys.map(nextName), `update graph ${graph.arch}`);
    const shaped = (keys: string[]) => keys.map((k) => [k, tg.shapes.get(k)!] as [string, number[]]);
    const layout: ReplicaLayout = { paramKeys: shaped(tg.trainable), gradKeys: shaped(tg.updated), statKeys: shaped(tg.runningStats) };
    const workers: ReplicaWorker[] = [];
    let local: GradientReplica | undefined;
    try {
      local = await GradientReplica.create(replicaSpec, layout);
      for (let r = 1; r < replicas; r++) workers.push(await ReplicaWorker.start({ replica: replicaSpec, layout }));
    } catch (err) {
      for (const w of workers) await w.stop();
      await local?.release();
      await update.release();
      throw err;
    }
    return new DataParallelTrainer(graph, spec, tg, packing, banks, local, workers, update, groups);
  }

  async step(batch: HostBatch, lr: number): Promise<StepResult> {
    const [h, w, c] = inputLayer(this.graph).shape;
    const pixels = h * w * c;
    const slices = sliceBatch(batch, this.workers.length + 1, this.groups, pixels);
    // The trainable parameters are the packing's prefix: a copy goes to each worker, and
    // replica 0 reads them where they are.
    const params = this.banks.now.subarray(0, this.paramValues);
    const remote = this.workers.map((w, r) => w.step(params.slice(), slices[r + 1]!));
    const first: ReplicaStepResult = await this.local.step(params, slices[0]!, this.localOut);
    const results = [first, ...(await Promise.all(remote))];
    const feeds: Record<string, ort.Tensor> = { ...this.stateFeeds(this.packing.slots.map((s) => s.key)), ...scalarFeeds(optimizerScalarValues(this.spec.optimizer, this.updates, lr)) };
    results.forEach((res, r) => {
      for (const s of this.gradPacking.slots) feeds[`r${r}:${gradName(s.key)}`] = this.gradPacking.tensor(res.grads, s.key);
      for (const s of this.statPacking.slots) feeds[`r${r}:${batchStatName(s.key)}`] = this.statPacking.tensor(res.stats, s.key);
    });
    await this.update.run(feeds, this.nextFetches(this.packing.slots.map((s) => s.key)));
    this.banks.swap();
    this.updates++;
    let loss = 0;
    let correct = 0;
    for (const res of results) {
      loss += res.loss / results.length;
      correct += res.correct;
    }
    return { loss, correct };
  }

  async dispose(): Promise<void> {
    for (const w of this.workers) await w.stop();
    await this.local.release();
    await this.update.release();
  }
}
