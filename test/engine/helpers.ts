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
import { initParams } from '../../compiler/graph/builders.ts';
import type { Graph, HostTensor, Layer, ParamStore, Shape3 } from '../../compiler/graph/ir.ts';
import { type ActShape, inferLayerShapes, inferShapes, inputLayer } from '../../compiler/graph/shapes.ts';
import { forward, toVariables, trainableVariables } from '../../compiler/nn/forward.ts';
import type { Objective } from '../../compiler/train/objective.ts';
import { TestRng } from '../nn/test-rng.ts';

export { TestRng };

export const pick = <T>(rng: TestRng, xs: readonly T[]): T => xs[Math.floor(rng.float() * xs.length)]!;
const randInt = (rng: TestRng, lo: number, hi: number): number => lo + Math.floor(rng.float() * (hi - lo + 1));

/**
 * A random valid graph (after test/onnx/random-graphs.test.ts): a chain of feature-map
 * layers (conv with or without BN, BN, ReLU, pools with and without padding, option-A
 * shortcuts, adds between branches) on an odd, often non-square input of 1 or 3 channels,
 * then a head: global average pool or flatten (NHWC and NCHW orders differ unless the map
 * is 1×1 or has one channel), optionally ReLU and a BN on the vector, a dense layer, and
 * sometimes a BN after the dense layer. `feature` is left unset.
 *
 * Average pools are unpadded: tfjs, the reference these graphs are checked against,
 * computes a padded average pool's gradient wrongly (gradients.test.ts tests that case
 * against an exact reference instead).
 */
export function randomGraph(seed: number): Graph {
  const rng = new TestRng(seed);
  const input: Shape3 = [randInt(rng, 3, 11), randInt(rng, 3, 11), pick(rng, [1, 3])];
  const layers: Layer[] = [{ kind: 'input', name: 'input', shape: input }];
  const shapes = new Map<string, ActShape>([['input', input]]);
  let last = 'input';
  let n = 0;
  const push = (layer: Layer): void => {
    const s = inferLayerShapes({ arch: 'trial', layers: [...layers, layer], output: layer.name });
    layers.push(layer);
    shapes.set(layer.name, s.get(layer.name)!);
    last = layer.name;
  };
  // Something trainable first, so every later layer has a gradient path to a parameter.
  const first = Math.min(randInt(rng, 1, 3), input[0], input[1]);
  push({ kind: 'conv', name: `l${n++}`, input: 'input', filters: randInt(rng, 1, 5), kernel: first, stride: randInt(rng, 1, 2), pad: randInt(rng, 0, first - 1), bias: rng.float() < 0.5 });
  const steps = randInt(rng, 2, 7);
  for (let i = 0; i < steps; i++) {
    const [h, w, c] = shapes.get(last) as Shape3;
    const name = `l${n++}`;
    const op = pick(rng, ['conv', 'conv', 'convbn', 'bn', 'relu', 'pool', 'padshortcut', 'add'] as const);
    if (op === 'conv' || op === 'convbn') {
      const kernel = Math.min(randInt(rng, 1, 3), h, w);
      push({ kind: 'conv', name, input: last, filters: randInt(rng, 1, 5), kernel, stride: randInt(rng, 1, 2), pad: randInt(rng, 0, kernel - 1), bias: rng.float() < 0.5 });
      if (op === 'convbn') push({ kind: 'bn', name: `${name}.bn`, input: name, eps: pick(rng, [1e-5, 1e-3]), momentum: 0.9 });
    } else if (op === 'bn') {
      push({ kind: 'bn', name, input: last, eps: 1e-5, momentum: 0.9 });
    } else if (op === 'relu') {
      push({ kind: 'relu', name, input: last });
    } else if (op === 'pool') {
      const kernel = Math.min(randInt(rng, 1, 3), h, w);
      const kind = pick(rng, ['maxpool', 'avgpool'] as const);
      const pad = randInt(rng, 0, kernel >> 1);
      push({ kind, name, input: last, kernel, stride: randInt(rng, 1, 2), pad });
    } else if (op === 'padshortcut') {
      push({ kind: 'padshortcut', name, input: last, stride: randInt(rng, 1, 2), filters: c + randInt(rng, 0, 3) });
    } else {
      // Add the current tensor to an earlier one of the same shape, or else to its own ReLU.
      const same = [...shapes].filter(([k, s]) => k !== last && k !== 'input' && s.join() === [h, w, c].join()).map(([k]) => k);
      const a = last;
      let b: string;
      if (same.length > 0) b = pick(rng, same);
      else push({ kind: 'relu', name: (b = `${name}.r`), input: last });
      push({ kind: 'add', name, inputs: [a, b] });
    }
  }
  const [h, w] = shapes.get(last) as Shape3;
  if (rng.float() < 0.5 || h * w === 1) push({ kind: 'globalavgpool', name: 'head', input: last });
  else push({ kind: 'flatten', name: 'head', input: last });
  if (rng.float() < 0.3) push({ kind: 'relu', name: 'head.relu', input: last });
  if (rng.float() < 0.3) push({ kind: 'bn', name: 'head.bn', input: last, eps: 1e-3, momentum: 0.9 });
  push({ kind: 'dense', name: 'fc', input: last, units: randInt(rng, 2, 5) });
  if (rng.float() < 0.3) push({ kind: 'bn', name: 'fc.bn', input: 'fc', eps: 1e-5, momentum: 0.9 });
  const graph: Graph = { arch: `random-${seed}`, layers, output: last };
  inferShapes(graph);
  return graph;
}

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

/** Initial parameters with BN γ, β and the running statistics moved away from 1 and 0. */
export function randomParams(graph: Graph, seed: number): ParamStore {
  const rng = new TestRng(seed);
  const p = initParams(graph, rng);
  for (const [key, t] of p) {
    const n = t.data.length;
    if (key.endsWith('/gamma')) t.data.set(rng.uniform(n, 0.5, 1.5));
    if (key.endsWith('/beta') || key.endsWith('/mean') || key.endsWith('/bias')) t.data.set(rng.uniform(n, -0.5, 0.5));
    if (key.endsWith('/variance')) t.data.set(rng.uniform(n, 0.5, 2));
  }
  return p;
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
