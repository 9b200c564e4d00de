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
import { floatTensor, type OrtSessionConfig, sessionOptions } from './session.ts';

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
