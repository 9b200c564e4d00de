/**
 * The graph interpreter on @tensorflow/tfjs-core (NHWC). Training and evaluation both run
 * through `forward`; it uses only ops with registered gradients so `tf.variableGrads`
 * works on any backend. Training-mode BN goes through compiler/tf/ops.ts so faster
 * kernels there speed up every model.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Graph, Layer, ParamStore } from '../graph/ir.ts';
import { layerInputs, paramKey } from '../graph/ir.ts';
import { checkParams, inferShapes, poolWindowCounts, windowOut } from '../graph/shapes.ts';
import { batchNormTrain } from '../tf/ops.ts';

/** Parameters by `<layer>/<param>` key, as tensors (variables while training). */
export type TensorParams = Map<string, tf.Tensor>;

export interface ForwardOptions {
  /** Training mode: BN normalises with batch statistics and returns them. */
  training: boolean;
  /** Layer names whose outputs to return (kept alive; the caller disposes them). */
  taps?: string[];
}

export interface BnBatchStats {
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
}

export interface ForwardResult {
  logits: tf.Tensor2D;
  taps: Map<string, tf.Tensor>;
  /** Per BN layer, the batch mean and biased variance (training mode only). */
  bnBatchStats: Map<string, BnBatchStats>;
}

/** Running statistics are variables too (so checkpoints see them) but not trainable. */
const isRunningStat = (key: string): boolean => key.endsWith('/mean') || key.endsWith('/variance');

export function toVariables(params: ParamStore): Map<string, tf.Variable> {
  const vars = new Map<string, tf.Variable>();
  for (const [key, t] of params) {
    const init = tf.tensor(t.data, t.shape, 'float32');
    vars.set(key, tf.variable(init, !isRunningStat(key), `${key}_${nextVarId++}`));
    // The variable holds its own reference to the data; without this, disposing the
    // variable would leave the initial tensor (and its memory) alive.
    init.dispose();
  }
  return vars;
}
// tfjs variable names must be unique per engine; several models may live side by side.
let nextVarId = 0;

/**
 * Copies tensors back to host memory (a fresh ParamStore; the tensors stay alive).
 * Asynchronous because webgpu in Node cannot read GPU buffers synchronously (tfjs-webgpu's
 * readSync needs an OffscreenCanvas).
 */
export async function fromVariables(vars: Map<string, tf.Tensor>): Promise<ParamStore> {
  const store: ParamStore = new Map();
  for (const [key, v] of vars) store.set(key, { shape: [...v.shape], data: Float32Array.from((await v.data()) as Float32Array) });
  return store;
}

/** Only the trainable variables, for `tf.variableGrads` / optimizers. */
export function trainableVariables(vars: Map<string, tf.Variable>): Map<string, tf.Variable> {
  return new Map([...vars].filter(([, v]) => v.trainable));
}

/**
 * Subsample rows and columns by `stride` (keeping index 0, s, 2s, ...) with reshape and
 * slice: tfjs has no gradient for strided slices.
 */
function subsample(x: tf.Tensor4D, stride: number): tf.Tensor4D {
  if (stride === 1) return x;
  const [n, h, w, c] = x.shape;
  const hp = Math.ceil(h / stride);
  const wp = Math.ceil(w / stride);
  let y: tf.Tensor4D = x;
  if (hp * stride !== h || wp * stride !== w) {
    y = tf.pad(y, [[0, 0], [0, hp * stride - h], [0, wp * stride - w], [0, 0]]);
  }
  // Rank-4 views only: the wasm backend has fast kernels for slices up to rank 4.
  const rows = tf.slice(tf.reshape(y, [n * hp, stride, wp * stride, c]), [0, 0, 0, 0], [n * hp, 1, wp * stride, c]);
  const cols = tf.slice(tf.reshape(rows, [n * hp, wp, stride, c]), [0, 0, 0, 0], [n * hp, wp, 1, c]);
  return tf.reshape(cols, [n, hp, wp, c]);
}

function param(vars: TensorParams, layer: string, name: string): tf.Tensor {
  const t = vars.get(paramKey(layer, name));
  if (!t) throw new Error(`forward: parameter "${paramKey(layer, name)}" is missing`);
  return t;
}

function runLayer(
  layer: Layer,
  ins: tf.Tensor[],
  vars: TensorParams,
  training: boolean,
  stats: Map<string, BnBatchStats>,
  x: tf.Tensor4D,
): tf.Tensor {
  const a = ins[0]!;
  switch (layer.kind) {
    case 'input':
      return x;
    case 'conv': {
      const y = tf.conv2d(a as tf.Tensor4D, param(vars, layer.name, 'kernel') as tf.Tensor4D, layer.stride, layer.pad === 0 ? 'valid' : layer.pad);
      return layer.bias ? tf.add(y, param(vars, layer.name, 'bias')) : y;
    }
    case 'bn': {
      const gamma = param(vars, layer.name, 'gamma') as tf.Tensor1D;
      const beta = param(vars, layer.name, 'beta') as tf.Tensor1D;
      if (!training) {
        return tf.batchNorm(a, param(vars, layer.name, 'mean'), param(vars, layer.name, 'variance'), beta, gamma, layer.eps);
      }
      const as4d = (a.rank === 4 ? a : tf.reshape(a, [a.shape[0]!, 1, 1, a.shape[1]!])) as tf.Tensor4D;
      const r = batchNormTrain(as4d, gamma, beta, layer.eps);
      stats.set(layer.name, { mean: r.mean, variance: r.variance });
      return a.rank === 4 ? r.y : tf.reshape(r.y, a.shape);
    }
    case 'relu':
      return tf.relu(a);
    case 'add':
      return tf.add(a, ins[1]!);
    case 'maxpool':
      return tf.maxPool(a as tf.Tensor4D, layer.kernel, layer.stride, layer.pad === 0 ? 'valid' : layer.pad);
    case 'avgpool': {
      if (layer.pad === 0) return tf.avgPool(a as tf.Tensor4D, layer.kernel, layer.stride, 'valid');
      // tfjs's padded AvgPool divides by the in-image count forward but by k² in its gradient;
      // zero padding, an unpadded pool and the count written out give both right.
      const [, h, w] = a.shape as [number, number, number, number];
      const { kernel: k, stride: s, pad: p } = layer;
      const padded = tf.pad(a as tf.Tensor4D, [[0, 0], [p, p], [p, p], [0, 0]]);
      const sums = tf.mul(tf.avgPool(padded, k, s, 'valid'), k * k);
      const counts = tf.tensor4d(poolWindowCounts(h, w, k, s, p), [1, windowOut(h, k, s, p), windowOut(w, k, s, p), 1]);
      return tf.div(sums, counts);
    }
    case 'globalavgpool':
      return tf.mean(a, [1, 2]);
    case 'flatten':
      return tf.reshape(a, [a.shape[0]!, -1]);
    case 'dense':
      return tf.add(tf.matMul(a as tf.Tensor2D, param(vars, layer.name, 'kernel') as tf.Tensor2D), param(vars, layer.name, 'bias'));
    case 'padshortcut': {
      const s = subsample(a as tf.Tensor4D, layer.stride);
      const extra = layer.filters - s.shape[3];
      if (extra === 0) return s;
      const before = Math.floor(extra / 2);
      return tf.pad(s, [[0, 0], [0, 0], [0, 0], [before, extra - before]]);
    }
    default:
      throw new Error(`forward: unknown layer kind "${(layer as { kind: string }).kind}"`);
  }
}

/**
 * Runs the graph on an NHWC float batch. Intermediates are ordinary tfjs tensors: call
 * this inside `tf.tidy` (or `tf.variableGrads`) and return what you keep.
 */
export function forward(graph: Graph, vars: TensorParams, x: tf.Tensor4D, opts: ForwardOptions): ForwardResult {
  // Not cached: the pruner may edit a graph in place, and inference is cheap.
  const shapes = inferShapes(graph);
  const input = graph.layers.find((l) => l.kind === 'input')!;
  const want = shapes.get(input.name)!;
  if (x.rank !== 4 || x.shape.slice(1).some((v, i) => v !== want[i])) {
    throw new Error(`forward ${graph.arch}: input must be [N, ${want.join(', ')}] (NHWC), got [${x.shape.join(', ')}]`);
  }
  const tapNames = opts.taps ?? [];
  for (const t of tapNames) if (!shapes.has(t)) throw new Error(`forward ${graph.arch}: tap "${t}" is not a layer`);
  const stats = new Map<string, BnBatchStats>();
  const values = new Map<string, tf.Tensor>();
  for (const layer of graph.layers) {
    const ins = layerInputs(layer).map((n) => values.get(n)!);
    values.set(layer.name, runLayer(layer, ins, vars, opts.training, stats, x));
  }
  const taps = new Map<string, tf.Tensor>();
  for (const t of tapNames) taps.set(t, values.get(t)!);
  return { logits: values.get(graph.output) as tf.Tensor2D, taps, bnBatchStats: stats };
}

/**
 * Keras-convention running-statistics update after a training step:
 * running = momentum·running + (1 − momentum)·batch. Disposes the batch statistics.
 */
export function updateRunningStats(graph: Graph, vars: Map<string, tf.Variable>, stats: Map<string, BnBatchStats>): void {
  for (const layer of graph.layers) {
    if (layer.kind !== 'bn') continue;
    const s = stats.get(layer.name);
    if (!s) continue;
    for (const [name, batch] of [['mean', s.mean], ['variance', s.variance]] as const) {
      const v = vars.get(paramKey(layer.name, name));
      if (!v) throw new Error(`updateRunningStats: variable "${paramKey(layer.name, name)}" is missing`);
      tf.tidy(() => v.assign(tf.add(tf.mul(v, layer.momentum), tf.mul(batch, 1 - layer.momentum))));
      batch.dispose();
    }
  }
}

/** Evaluation-mode logits for an NHWC batch, from host parameters (tensors are freed). */
export function predict(graph: Graph, params: ParamStore, x: tf.Tensor4D): tf.Tensor2D {
  checkParams(graph, params);
  const vars: TensorParams = new Map();
  for (const [k, t] of params) vars.set(k, tf.tensor(t.data, t.shape, 'float32'));
  try {
    return tf.tidy(() => forward(graph, vars, x, { training: false }).logits);
  } finally {
    for (const t of vars.values()) t.dispose();
  }
}
