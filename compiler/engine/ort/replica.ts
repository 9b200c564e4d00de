/**
 * One replica of a training run on onnxruntime: the generated training session and the
 * frozen teachers' inference sessions, for a fixed number of rows. The single-replica
 * trainer runs one in-process (the whole step, update included, in one graph); data-
 * parallel training runs one per worker thread (compiler/engine/ort/replica-worker.ts),
 * each on its slice of the batch, up to the gradients.
 */
import * as ort from 'onnxruntime-node';
import { tapOutputName } from '../../onnx/export.ts';
import type { Objective } from '../../train/objective.ts';
import type { HostBatch } from '../types.ts';
import { floatTensor, type OrtSessionConfig, requireIo, sessionOptions } from './session.ts';
import { Packing } from './state.ts';
import { batchStatName, gradName, STEP_OUTPUT } from './training-graph.ts';

export interface ReplicaSpec {
  /** The training graph (compiler/engine/ort/training-graph.ts) for `rows` images. */
  trainModel: Uint8Array;
  rows: number;
  /** [height, width, channels] of an image. */
  image: [number, number, number];
  classes: number;
  objective: Objective;
  /** Teachers as runner models (NHWC input; logits and the feature tap as outputs). */
  teachers?: { models: Uint8Array[]; input: 'clean' | 'degraded'; feature?: string };
  /** Feature-target dims per sample (NHWC), when the objective has a feature term. */
  featureDims?: number[];
  session: OrtSessionConfig;
  /** Session options only the training session gets (e.g. outputs kept on the GPU). */
  trainSessionExtra?: ort.InferenceSession.SessionOptions;
}

export class OrtReplica {
  private constructor(
    readonly spec: ReplicaSpec,
    readonly session: ort.InferenceSession,
    private readonly teachers: ort.InferenceSession[],
  ) {}

  static async create(spec: ReplicaSpec): Promise<OrtReplica> {
    const session = await ort.InferenceSession.create(spec.trainModel, sessionOptions(spec.session, spec.trainSessionExtra));
    const teachers: ort.InferenceSession[] = [];
    try {
      for (const bytes of spec.teachers?.models ?? []) teachers.push(await ort.InferenceSession.create(bytes, sessionOptions(spec.session)));
    } catch (err) {
      await session.release();
      throw err;
    }
    return new OrtReplica(spec, session, teachers);
  }

  /** The per-batch inputs of the training graph: the images, one-hot labels and the teachers' targets. */
  async batchFeeds(batch: HostBatch): Promise<Record<string, ort.Tensor>> {
    const { rows, image, classes, objective } = this.spec;
    if (batch.n !== rows) throw new Error(`replica: a batch of ${batch.n} images, the training graph takes ${rows}`);
    const onehot = new Float32Array(rows * classes);
    for (let i = 0; i < rows; i++) {
      const label = batch.labels[i]!;
      if (!(label >= 0 && label < classes)) throw new Error(`replica: label ${label} is outside 0..${classes - 1}`);
      onehot[i * classes + label] = 1;
    }
    const feeds: Record<string, ort.Tensor> = { input: floatTensor(batch.x, [rows, ...image]), onehot: floatTensor(onehot, [rows, classes]) };
    const wantLogits = (objective.distill?.weight ?? 0) > 0;
    const wantFeature = (objective.feature?.weight ?? 0) > 0;
    if (!wantLogits && !wantFeature) return feeds;
    const spec = this.spec.teachers!;
    const source = spec.input === 'clean' ? batch.clean : batch.x;
    if (!source) throw new Error('replica: the teachers look at the clean images, but the batch has none (keepClean)');
    const featureSize = wantFeature ? this.spec.featureDims!.reduce((p, q) => p * q, 1) : 0;
    const logits = wantLogits ? new Float32Array(rows * classes) : undefined;
    const feature = wantFeature ? new Float32Array(rows * featureSize) : undefined;
    const fetch = [...(wantLogits ? ['logits'] : []), ...(wantFeature ? [tapOutputName(spec.feature!, 'nhwc')] : [])];
    // Teacher g answers for the g-th of G equal groups of rows (one teacher: all of them).
    const groups = this.teachers.length;
    const per = rows / groups;
    const pixels = image[0] * image[1] * image[2];
    for (let g = 0; g < groups; g++) {
      const x = source.subarray(g * per * pixels, (g + 1) * per * pixels);
      const out = await this.teachers[g]!.run({ input: floatTensor(x, [per, ...image]) }, fetch);
      if (logits) logits.set(out.logits!.data as Float32Array, g * per * classes);
      if (feature) feature.set(out[fetch.at(-1)!]!.data as Float32Array, g * per * featureSize);
    }
    if (logits) feeds['target.logits'] = floatTensor(logits, [rows, classes]);
    if (feature) feeds['target.feature'] = floatTensor(feature, [rows, ...this.spec.featureDims!]);
    return feeds;
  }

  async release(): Promise<void> {
    await this.session.release();
    for (const t of this.teachers) await t.release();
  }
}

/** Keys and shapes of the flat arrays a gradients-mode replica reads and writes. */
export interface ReplicaLayout {
  /** Trainable parameters, in the order of the flat parameter array. */
  paramKeys: [string, number[]][];
  /** The parameters that get gradients, in the order of the flat gradient array. */
  gradKeys: [string, number[]][];
  /** Running statistics, in the order of the flat batch-statistics array. */
  statKeys: [string, number[]][];
}

export interface ReplicaStepResult {
  grads: Float32Array;
  stats: Float32Array;
  loss: number;
  /** Rows whose argmax logit was the label. */
  correct: number;
}

/**
 * A data-parallel replica: forward and backward of its slice, gradients and BN batch
 * statistics into flat arrays. Runs on the main thread (replica 0) or in a worker.
 */
export class GradientReplica {
  private readonly params: Packing;
  private readonly grads: Packing;
  private readonly stats: Packing;

  private constructor(private readonly replica: OrtReplica, layout: ReplicaLayout) {
    this.params = new Packing(layout.paramKeys);
    this.grads = new Packing(layout.gradKeys);
    this.stats = new Packing(layout.statKeys);
    requireIo(replica.session, this.params.slots.map((s) => s.key), [...this.grads.slots.map((s) => gradName(s.key)), ...this.stats.slots.map((s) => batchStatName(s.key))], 'replica training graph');
  }

  static async create(spec: ReplicaSpec, layout: ReplicaLayout): Promise<GradientReplica> {
    const replica = await OrtReplica.create(spec);
    try {
      return new GradientReplica(replica, layout);
    } catch (err) {
      await replica.release();
      throw err;
    }
  }

  /** `out` (when given, sized for this layout) is written in place; else fresh arrays are returned. */
  async step(params: Float32Array, batch: HostBatch, out?: { grads: Float32Array; stats: Float32Array }): Promise<ReplicaStepResult> {
    const feeds = await this.replica.batchFeeds(batch);
    for (const s of this.params.slots) feeds[s.key] = this.params.tensor(params, s.key);
    const grads = out?.grads ?? new Float32Array(this.grads.size);
    const stats = out?.stats ?? new Float32Array(this.stats.size);
    const fetches: Record<string, ort.Tensor | null> = { [STEP_OUTPUT.loss]: null, [STEP_OUTPUT.predicted]: null };
    for (const s of this.grads.slots) fetches[gradName(s.key)] = this.grads.tensor(grads, s.key);
    for (const s of this.stats.slots) fetches[batchStatName(s.key)] = this.stats.tensor(stats, s.key);
    const result = await this.replica.session.run(feeds, fetches);
    const predicted = result[STEP_OUTPUT.predicted]!.data as BigInt64Array;
    let correct = 0;
    for (let i = 0; i < batch.n; i++) if (Number(predicted[i]) === batch.labels[i]) correct++;
    return { grads, stats, loss: (result[STEP_OUTPUT.loss]!.data as Float32Array)[0]!, correct };
  }

  release(): Promise<void> {
    return this.replica.release();
  }
}
