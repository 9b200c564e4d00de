/**
 * Shared pieces of the engine tests: seeded random graphs and data, one loss-and-gradients
 * evaluation per engine (tfjs under its tape, the ort training graph in `gradients` mode),
 * and tolerance checks that name what differs.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { expect } from 'vitest';
import { objectiveLoss } from '../../compiler/engine/tfjs/losses.ts';
import { fromOrtLayout, toOrtLayout } from '../../compiler/engine/ort/layout.ts';
import { sessionOptions } from '../../compiler/engine/ort/session.ts';
import { batchStatName, buildTrainingGraph, type GraphFormulation, gradName, STEP_OUTPUT, type TrainingGraph } from '../../compiler/engine/ort/training-graph.ts';
import type { BnStatistics, HostBatch } from '../../compiler/engine/types.ts';
import type { Graph, HostTensor, ParamStore } from '../../compiler/graph/ir.ts';
import { inferShapes, inputLayer } from '../../compiler/graph/shapes.ts';
import { forward, toVariables, trainableVariables } from '../../compiler/nn/forward.ts';
import type { Objective } from '../../compiler/train/objective.ts';
import { TestRng } from '../nn/test-rng.ts';

export { TestRng };

export { pick, randomGraph, randomParams } from '../helpers/random-graphs.ts';

/** A readable one-line description of a graph, for assertion messages. */
export function describeGraph(graph: Graph): string {
  const shapes = inferShapes(graph);
  return `${graph.arch}: ${graph.layers
    .map((l) => {
      const extra = l.kind === 'conv' ? ` k${l.kernel}s${l.stride}p${l.pad}${l.bias ? 'b' : ''}` : l.kind === 'maxpool' || l.kind === 'avgpool' ? ` k${l.kernel}s${l.stride}p${l.pad}` : l.kind === 'padshortcut' ? ` s${l.stride}` : '';
      return `${l.name}:${l.kind}${extra}[${shapes.get(l.name)!.join('×')}]`;
    })
    .join(' ')}${graph.feature ? ` feature=${graph.feature}` : ''}`;
}

const classesOf = (graph: Graph): number => (inferShapes(graph).get(graph.output) as [number])[0];
export const pixelsOf = (graph: Graph): number => inputLayer(graph).shape.reduce((p, q) => p * q, 1);

/** `n` random images (uniform in [−2, 2)) and labels for `graph`, as the batch pipeline hands them over. */
export function randomBatch(graph: Graph, n: number, seed: number): HostBatch {
  const rng = new TestRng(seed);
  const classes = classesOf(graph);
  const x = rng.uniform(n * pixelsOf(graph), -2, 2);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = Math.floor(rng.float() * classes);
  return { n, x, labels };
}

/** Teacher targets as the engines take them: logits [n, classes] and the feature NHWC per sample. */
export interface Targets {
  logits?: Float32Array;
  feature?: Float32Array;
}

/**
 * Random teacher targets for `objective`, drawn from a different distribution in each of
 * `groups` equal sub-batches (group g's logits scaled by g + 1, its features shifted by g),
 * so a mix-up of groups would show.
 */
export function randomTargets(graph: Graph, objective: Objective, n: number, groups: number, seed: number): Targets {
  const rng = new TestRng(seed);
  const classes = classesOf(graph);
  const per = n / groups;
  const out: Targets = {};
  if ((objective.distill?.weight ?? 0) > 0) {
    out.logits = new Float32Array(n * classes);
    for (let i = 0; i < n; i++) for (let k = 0; k < classes; k++) out.logits[i * classes + k] = (Math.floor(i / per) + 1) * (rng.float() * 4 - 2);
  }
  if ((objective.feature?.weight ?? 0) > 0) {
    const d = featureSize(graph);
    out.feature = new Float32Array(n * d);
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) out.feature[i * d + j] = Math.floor(i / per) + rng.float() * 2 - 1;
  }
  return out;
}

const featureDims = (graph: Graph): number[] => [...inferShapes(graph).get(graph.feature!)!];
const featureSize = (graph: Graph): number => featureDims(graph).reduce((p, q) => p * q, 1);

/** What one loss-and-gradients evaluation reports; gradients in the IR layout (conv kernels HWIO). */
export interface GradientResult {
  loss: number;
  grads: Map<string, HostTensor>;
  stats: BnStatistics;
}

/**
 * Loss and gradients on tfjs: `forward` in training mode under `tf.variableGrads`, the loss
 * by `objectiveLoss`. Parameters the loss does not reach get no gradient (tfjs leaves them out).
 */
export async function tfjsGradients(graph: Graph, params: ParamStore, batch: HostBatch, objective: Objective, targets: Targets): Promise<GradientResult> {
  const input = inputLayer(graph).shape;
  const classes = classesOf(graph);
  const vars = toVariables(params);
  const train = trainableVariables(vars);
  const keyOf = new Map([...train].map(([k, v]) => [v.name, k]));
  const x = tf.tensor4d(batch.x, [batch.n, ...input]);
  const labels = tf.tensor1d(batch.labels, 'int32');
  const t = {
    logits: targets.logits ? tf.tensor2d(targets.logits, [batch.n, classes]) : undefined,
    feature: targets.feature ? tf.tensor(targets.feature, [batch.n, ...featureDims(graph)]) : undefined,
  };
  const feature = (objective.feature?.weight ?? 0) > 0 ? graph.feature : undefined;
  const kept: tf.Tensor[] = [];
  const stats = new Map<string, { mean: tf.Tensor; variance: tf.Tensor }>();
  try {
    const { value, grads } = tf.variableGrads(() => {
      const out = forward(graph, vars, x, { training: true, taps: feature ? [feature] : [] });
      for (const [name, s] of out.bnBatchStats) {
        stats.set(name, { mean: tf.keep(s.mean), variance: tf.keep(s.variance) });
        kept.push(s.mean, s.variance);
      }
      return objectiveLoss(objective, { logits: out.logits, feature: feature ? out.taps.get(feature) : undefined }, labels, t);
    }, [...train.values()]);
    const result: GradientResult = { loss: (await value.data())[0]!, grads: new Map(), stats: new Map() };
    for (const [name, g] of Object.entries(grads)) result.grads.set(keyOf.get(name)!, { shape: [...g.shape], data: Float32Array.from(await g.data()) });
    for (const [name, s] of stats) result.stats.set(name, { mean: Float32Array.from(await s.mean.data()), variance: Float32Array.from(await s.variance.data()) });
    tf.dispose([value, ...Object.values(grads)]);
    return result;
  } finally {
    tf.dispose([x, labels, ...kept, ...(t.logits ? [t.logits] : []), ...(t.feature ? [t.feature] : []), ...vars.values()]);
  }
}

/**
 * The ort training graph in `gradients` mode (written as `formulation` says, the engine's
 * default otherwise) on one CPU thread, with the graph description it was built from.
 */
export async function ortGradients(graph: Graph, params: ParamStore, batch: HostBatch, objective: Objective, targets: Targets, formulation: Partial<GraphFormulation> = {}): Promise<GradientResult & { tg: TrainingGraph }> {
  const tg = buildTrainingGraph(graph, { batch: batch.n, objective, mode: 'gradients', ...formulation });
  const session = await ort.InferenceSession.create(tg.bytes, sessionOptions({ provider: 'cpu', threads: 1 }));
  try {
    const classes = classesOf(graph);
    const onehot = new Float32Array(batch.n * classes);
    for (let i = 0; i < batch.n; i++) onehot[i * classes + batch.labels[i]!] = 1;
    const feeds: Record<string, ort.Tensor> = {
      input: new ort.Tensor('float32', batch.x, [batch.n, ...inputLayer(graph).shape]),
      onehot: new ort.Tensor('float32', onehot, [batch.n, classes]),
    };
    if (targets.logits) feeds['target.logits'] = new ort.Tensor('float32', targets.logits, [batch.n, classes]);
    if (targets.feature) feeds['target.feature'] = new ort.Tensor('float32', targets.feature, [batch.n, ...tg.featureDims!]);
    for (const key of tg.trainable) {
      const t = toOrtLayout(graph, key, params.get(key)!);
      feeds[key] = new ort.Tensor('float32', t.data, t.shape);
    }
    const out = await session.run(feeds);
    const grads = new Map<string, HostTensor>();
    for (const key of tg.updated) {
      const g = out[gradName(key)]!;
      grads.set(key, fromOrtLayout(graph, key, { shape: [...g.dims], data: g.data as Float32Array }));
    }
    const stats: BnStatistics = new Map();
    for (const key of tg.runningStats) {
      if (!key.endsWith('/mean')) continue;
      const layer = key.slice(0, -'/mean'.length);
      stats.set(layer, { mean: out[batchStatName(key)]!.data as Float32Array, variance: out[batchStatName(`${layer}/variance`)]!.data as Float32Array });
    }
    return { loss: (out[STEP_OUTPUT.loss]!.data as Float32Array)[0]!, grads, stats, tg };
  } finally {
    await session.release();
  }
}

/** max |a − b| / max |b|, or the absolute difference where b is all zero. */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  // A NaN anywhere makes diff NaN (Math.max propagates it), which fails every bound.
  return diff / (scale || 1);
}

/** Bit-identical stores (the raw bytes, not values within a tolerance). */
export function expectStoresIdentical(actual: ParamStore, expected: ParamStore, what: string): void {
  expect([...actual.keys()].sort(), `${what}: keys`).toEqual([...expected.keys()].sort());
  for (const [k, t] of expected) {
    const u = actual.get(k)!;
    expect(u.shape, `${what} ${k}: shape`).toEqual(t.shape);
    const same = Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    const diff = Array.from(u.data).reduce((m, v, i) => Math.max(m, Math.abs(v - t.data[i]!)), 0);
    expect(same, `${what} ${k}: bit-identical (max |Δ| ${diff})`).toBe(true);
  }
}

/** Copies a ParamStore (tensors and all). */
export const cloneStore = (s: ParamStore): ParamStore => new Map([...s].map(([k, t]) => [k, { shape: [...t.shape], data: Float32Array.from(t.data) }]));

/** A copy of a batch (a data-parallel trainer transfers its slices' buffers, never the caller's; copies keep tests honest). */
export const cloneBatch = (b: HostBatch): HostBatch => ({ n: b.n, x: Float32Array.from(b.x), labels: Int32Array.from(b.labels), clean: b.clean ? Float32Array.from(b.clean) : undefined });

/** Batches joined row-wise, in order. */
export function concatBatches(parts: HostBatch[], pixels: number): HostBatch {
  const n = parts.reduce((s, p) => s + p.n, 0);
  const x = new Float32Array(n * pixels);
  const labels = new Int32Array(n);
  const clean = parts.every((p) => p.clean) ? new Float32Array(n * pixels) : undefined;
  let row = 0;
  for (const p of parts) {
    x.set(p.x, row * pixels);
    labels.set(p.labels, row);
    clean?.set(p.clean!, row * pixels);
    row += p.n;
  }
  return { n, x, labels, clean };
}

/** Per-channel mean and biased variance (float64) of NHWC or [n, C] activations. */
export function channelStats(t: HostTensor): { mean: Float64Array; variance: Float64Array } {
  const c = t.shape[t.shape.length - 1]!;
  const rows = t.data.length / c;
  const mean = new Float64Array(c);
  const variance = new Float64Array(c);
  for (let i = 0; i < t.data.length; i++) mean[i % c]! += t.data[i]!;
  for (let k = 0; k < c; k++) mean[k]! /= rows;
  for (let i = 0; i < t.data.length; i++) variance[i % c]! += (t.data[i]! - mean[i % c]!) ** 2;
  for (let k = 0; k < c; k++) variance[k]! /= rows;
  return { mean, variance };
}
