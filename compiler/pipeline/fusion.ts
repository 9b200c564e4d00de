/**
 * Stage 3, weight fusion: the uniform mean of N models' parameters, and the three ways of
 * getting the fused model's BatchNorm running statistics (docs/fusiondistill.md):
 * `copy` (model 0's, as the published code does), `average`, and `recalibrate`
 * (re-estimated on degraded training images without gradients).
 */
import type { Engine } from '../engine/types.ts';
import type { Graph, HostTensor, ParamStore } from '../graph/ir.ts';
import { paramKey } from '../graph/ir.ts';
import type { BnMode } from './config.ts';

/** A batch of normalized NHWC images. */
export interface ImageBatch {
  x: Float32Array;
  n: number;
}

const RUNNING_STATS = ['mean', 'variance'] as const;

function bnLayers(graph: Graph): string[] {
  return graph.layers.filter((l) => l.kind === 'bn').map((l) => l.name);
}

/** Keys of BN running statistics in `graph`. */
export function runningStatKeys(graph: Graph): Set<string> {
  return new Set(bnLayers(graph).flatMap((name) => RUNNING_STATS.map((s) => paramKey(name, s))));
}

/**
 * Element-wise mean of every parameter (running statistics included) over the stores,
 * summed in float64 and rounded once, so it is the float32 nearest the exact mean.
 * The stores must hold the same keys with the same shapes.
 */
export function meanParams(stores: readonly ParamStore[]): ParamStore {
  if (stores.length === 0) throw new Error('meanParams: no models to fuse');
  const [first, ...rest] = stores;
  rest.forEach((store, i) => {
    if (store.size !== first!.size) throw new Error(`meanParams: model ${i + 1} has ${store.size} parameters, model 0 has ${first!.size}`);
  });
  const out: ParamStore = new Map();
  for (const [key, t0] of first!) {
    const sum = new Float64Array(t0.data.length);
    stores.forEach((store, i) => {
      const t = store.get(key);
      if (!t) throw new Error(`meanParams: model ${i} has no parameter "${key}"`);
      if (t.shape.join() !== t0.shape.join()) throw new Error(`meanParams: "${key}" is [${t.shape.join(', ')}] in model ${i} but [${t0.shape.join(', ')}] in model 0`);
      for (let j = 0; j < sum.length; j++) sum[j]! += t.data[j]!;
    });
    const data = new Float32Array(sum.length);
    for (let j = 0; j < sum.length; j++) data[j] = sum[j]! / stores.length;
    out.set(key, { shape: [...t0.shape], data });
  }
  return out;
}

const copyTensor = (t: HostTensor): HostTensor => ({ shape: [...t.shape], data: Float32Array.from(t.data) });

/**
 * The fused model with BN running statistics `copy`-ed from model 0 or `average`-d. For
 * `recalibrate`, fuse with either and then call {@link recalibrateBn}.
 */
export function fuseParams(graph: Graph, stores: readonly ParamStore[], bn: Exclude<BnMode, 'recalibrate'>): ParamStore {
  const fused = meanParams(stores);
  if (bn === 'copy') {
    for (const key of runningStatKeys(graph)) {
      const t = stores[0]!.get(key);
      if (!t) throw new Error(`fuseParams: model 0 has no BN statistic "${key}"`);
      fused.set(key, copyTensor(t));
    }
  }
  return fused;
}

/**
 * How per-batch BN statistics become running ones. `population` (ours): the exact mean and
 * variance of every activation seen, batch means' spread included. `batch-average`
 * (PyTorch's `momentum=None`, the reference's): the mean of the batches' variances, which
 * leaves out how far the batch means lie from each other; with each batch drawn from one
 * degradation that spread is systematic, not noise. (PyTorch averages unbiased batch
 * variances; at ≥ 128 × 7 × 7 values per channel and batch the factor is under 1.0002.)
 */
export type BnEstimator = 'population' | 'batch-average';

/**
 * Re-estimates every BN layer's running mean and variance as the population statistics
 * of the activations it sees over all `batches` (NHWC float, already normalized), with the
 * network in training mode (each BN normalizes by its batch statistics, as during
 * training) and no gradients. Per channel it accumulates the cumulative averages of the
 * batch mean and of the batch second moment (variance + mean²), weighted by batch size,
 * so the result is exactly the mean and (biased) variance over every pixel it saw
 * (`batch-average` instead averages the batch variances).
 * Returns a new store; trained parameters are untouched.
 */
export async function recalibrateBn(engine: Engine, graph: Graph, params: ParamStore, batches: Iterable<ImageBatch> | AsyncIterable<ImageBatch>, estimator: BnEstimator = 'population'): Promise<ParamStore> {
  const layers = bnLayers(graph);
  const sums = new Map<string, { mean: Float64Array; second: Float64Array }>();
  let seen = 0;
  const runner = await engine.statistics(graph, params);
  try {
    for await (const { x, n } of batches) {
      const stats = await runner.run(x, n);
      for (const name of layers) {
        const s = stats.get(name);
        if (!s) throw new Error(`recalibrateBn: the forward pass returned no batch statistics for BN layer "${name}"`);
        let acc = sums.get(name);
        if (!acc) sums.set(name, (acc = { mean: new Float64Array(s.mean.length), second: new Float64Array(s.mean.length) }));
        for (let c = 0; c < s.mean.length; c++) {
          acc.mean[c]! += n * s.mean[c]!;
          acc.second[c]! += estimator === 'population' ? n * (s.variance[c]! + s.mean[c]! * s.mean[c]!) : n * s.variance[c]!;
        }
      }
      seen += n;
    }
  } finally {
    await runner.dispose();
  }
  if (seen === 0) throw new Error('recalibrateBn: no batches to estimate BN statistics from');
  const out: ParamStore = new Map([...params].map(([k, t]) => [k, copyTensor(t)]));
  for (const name of layers) {
    const acc = sums.get(name)!;
    const mean = new Float32Array(acc.mean.length);
    const variance = new Float32Array(acc.mean.length);
    for (let c = 0; c < mean.length; c++) {
      const m = acc.mean[c]! / seen;
      mean[c] = m;
      variance[c] = estimator === 'population' ? Math.max(acc.second[c]! / seen - m * m, 0) : acc.second[c]! / seen;
    }
    out.set(paramKey(name, 'mean'), { shape: [mean.length], data: mean });
    out.set(paramKey(name, 'variance'), { shape: [variance.length], data: variance });
  }
  return out;
}
