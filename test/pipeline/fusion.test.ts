import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Graph, ParamStore } from '../../compiler/graph/ir.ts';
import { fuseParams, meanParams, recalibrateBn, runningStatKeys } from '../../compiler/pipeline/fusion.ts';
import type { Engine, EngineName } from '../../compiler/engine/types.ts';
import { initBackend } from '../../compiler/tf/backend.ts';
import { Rng } from '../../shared/rng.ts';
import { TEST_ENGINES, testEngine } from '../engine/engines.ts';

beforeAll(async () => {
  await initBackend('cpu'); // tfjs ops compute the expected statistics
});

/** input 4×4×2 → bn0 → conv (3×3, 3 filters, stride 1) → bn1 → relu → gap → dense(2). */
const graph: Graph = {
  arch: 'tiny',
  layers: [
    { kind: 'input', name: 'in', shape: [4, 4, 2] },
    { kind: 'bn', name: 'bn0', input: 'in', eps: 1e-5, momentum: 0.9 },
    { kind: 'conv', name: 'conv', input: 'bn0', filters: 3, kernel: 3, stride: 1, pad: 1, bias: true },
    { kind: 'bn', name: 'bn1', input: 'conv', eps: 1e-5, momentum: 0.9 },
    { kind: 'relu', name: 'relu', input: 'bn1' },
    { kind: 'globalavgpool', name: 'gap', input: 'relu' },
    { kind: 'dense', name: 'fc', input: 'gap', units: 2 },
  ],
  output: 'fc',
};
const SHAPES: Record<string, number[]> = {
  'bn0/gamma': [2], 'bn0/beta': [2], 'bn0/mean': [2], 'bn0/variance': [2],
  'conv/kernel': [3, 3, 2, 3], 'conv/bias': [3],
  'bn1/gamma': [3], 'bn1/beta': [3], 'bn1/mean': [3], 'bn1/variance': [3],
  'fc/kernel': [3, 2], 'fc/bias': [2],
};

function randomParams(seed: number): ParamStore {
  const rng = new Rng(seed);
  const store: ParamStore = new Map();
  for (const [key, shape] of Object.entries(SHAPES)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = key.endsWith('variance') ? 0.5 + rng.float() : rng.gaussian();
    store.set(key, { shape, data });
  }
  return store;
}

describe('fusion', () => {
  it('the mean of parameters is exact', () => {
    // Values whose mean is exactly representable: (1 + 2 + 4 + 9) / 4 = 4, (0.5 + 0.25 + 0 − 0.75) / 4 = 0.
    const a = (x: number[]): ParamStore => new Map([['w/kernel', { shape: [x.length], data: Float32Array.from(x) }]]);
    expect([...meanParams([a([1, 0.5]), a([2, 0.25]), a([4, 0]), a([9, -0.75])]).get('w/kernel')!.data]).toEqual([4, 0]);
    // Random models: every element is the float32 nearest the float64 mean.
    const stores = [1, 2, 3, 4].map(randomParams);
    const fused = meanParams(stores);
    expect([...fused.keys()].sort()).toEqual(Object.keys(SHAPES).sort());
    for (const [key, t] of fused) {
      expect(t.shape).toEqual(SHAPES[key]);
      for (let i = 0; i < t.data.length; i++) {
        const exact = stores.reduce((s, p) => s + p.get(key)!.data[i]!, 0) / 4;
        expect(t.data[i]).toBe(Math.fround(exact));
      }
    }
    // The inputs are not modified.
    expect(stores[0]!.get('fc/bias')!.data).toEqual(randomParams(1).get('fc/bias')!.data);
  });

  it('refuses models that do not line up', () => {
    const a = randomParams(1);
    const b = randomParams(2);
    b.set('fc/bias', { shape: [3], data: new Float32Array(3) });
    expect(() => meanParams([a, b])).toThrow(/"fc\/bias" is \[3\] in model 1 but \[2\] in model 0/);
    const c = randomParams(3);
    c.delete('fc/bias');
    c.set('fc/other', { shape: [2], data: new Float32Array(2) });
    expect(() => meanParams([a, c])).toThrow(/model 1 has no parameter "fc\/bias"/);
    expect(() => meanParams([])).toThrow(/no models/);
  });

  it('copy keeps model 0 BN statistics; average averages them; trained parameters are averaged either way', () => {
    const stores = [5, 6, 7, 8].map(randomParams);
    const mean = meanParams(stores);
    const copy = fuseParams(graph, stores, 'copy');
    const average = fuseParams(graph, stores, 'average');
    expect(runningStatKeys(graph)).toEqual(new Set(['bn0/mean', 'bn0/variance', 'bn1/mean', 'bn1/variance']));
    for (const key of Object.keys(SHAPES)) {
      const isStat = runningStatKeys(graph).has(key);
      expect(copy.get(key)!.data, key).toEqual(isStat ? stores[0]!.get(key)!.data : mean.get(key)!.data);
      expect(average.get(key)!.data, key).toEqual(mean.get(key)!.data);
    }
    // A copy, not an alias of model 0's arrays.
    expect(copy.get('bn0/mean')!.data).not.toBe(stores[0]!.get('bn0/mean')!.data);
  });

  it('recalibration on tfjs leaks no tensors', async () => {
    const params = randomParams(21);
    const before = tf.memory().numTensors;
    const rng = new Rng(4);
    const batch = () => ({ x: Float32Array.from({ length: 4 * 4 * 4 * 2 }, () => rng.gaussian()), n: 4 });
    await recalibrateBn(await testEngine('tfjs'), graph, params, [batch(), batch()]);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe.each(TEST_ENGINES)('BN recalibration on %s', (name: EngineName) => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await testEngine(name);
  });

  it('reproduces the population statistics of the data it saw', async () => {
    const params = fuseParams(graph, [randomParams(11), randomParams(12)], 'copy');
    // Three batches of different sizes with per-channel offsets, so batch means differ.
    const rng = new Rng(3);
    const batches = [5, 3, 8].map((n, b) => {
      const data = new Float32Array(n * 4 * 4 * 2);
      for (let i = 0; i < data.length; i++) data[i] = rng.gaussian() * (1 + (i % 2)) + b + (i % 2 ? -2 : 1);
      return { x: data, n };
    });
    const all = tf.concat(batches.map((b) => tf.tensor4d(b.x, [b.n, 4, 4, 2])), 0);
    const recal = await recalibrateBn(engine, graph, params, batches);

    // bn0 sees the input itself: its statistics are the moments of all 16·16 pixels.
    const { mean: m0, variance: v0 } = tf.moments(all, [0, 1, 2]);
    expect(Array.from(recal.get('bn0/mean')!.data)).toEqual(Array.from(m0.dataSync()).map((v) => expect.closeTo(v, 5)));
    expect(Array.from(recal.get('bn0/variance')!.data)).toEqual(Array.from(v0.dataSync()).map((v) => expect.closeTo(v, 4)));

    // bn1 sees conv(bn0 in training mode), i.e. each batch normalized by its own statistics.
    const convOut = tf.concat(
      [5, 3, 8].map((n, b) => {
        const x = tf.slice(all, [[0, 5, 8][b]!, 0, 0, 0], [n, 4, 4, 2]) as tf.Tensor4D;
        const { mean, variance } = tf.moments(x, [0, 1, 2]);
        const g = params.get('bn0/gamma')!.data;
        const be = params.get('bn0/beta')!.data;
        const normalized = tf.batchNorm4d(x, mean as tf.Tensor1D, variance as tf.Tensor1D, tf.tensor1d(be), tf.tensor1d(g), 1e-5);
        const k = tf.tensor4d(params.get('conv/kernel')!.data, [3, 3, 2, 3]);
        return tf.add(tf.conv2d(normalized, k, 1, 'same'), tf.tensor1d(params.get('conv/bias')!.data));
      }),
      0,
    );
    const { mean: m1, variance: v1 } = tf.moments(convOut, [0, 1, 2]);
    expect(Array.from(recal.get('bn1/mean')!.data)).toEqual(Array.from(m1.dataSync()).map((v) => expect.closeTo(v, 4)));
    expect(Array.from(recal.get('bn1/variance')!.data)).toEqual(Array.from(v1.dataSync()).map((v) => expect.closeTo(v, 3)));

    // The statistics changed (they were model 11's) and trained parameters did not.
    expect(recal.get('bn0/mean')!.data).not.toEqual(params.get('bn0/mean')!.data);
    for (const key of ['conv/kernel', 'bn1/gamma', 'fc/kernel']) expect(recal.get(key)!.data).toEqual(params.get(key)!.data);
    await expect(recalibrateBn(engine, graph, params, [])).rejects.toThrow(/no batches/);
  });

  it("batch-average (PyTorch's momentum=None) leaves out the spread of the batch means; population keeps it", async () => {
    const params = fuseParams(graph, [randomParams(11), randomParams(12)], 'copy');
    // Two batches whose means lie far apart, as batches of two different degradations do.
    const rng = new Rng(5);
    const batches = [6, 6].map((n, b) => {
      const data = new Float32Array(n * 4 * 4 * 2);
      for (let i = 0; i < data.length; i++) data[i] = rng.gaussian() + (b === 0 ? -3 : 3);
      return { x: data, n };
    });
    const perBatch = batches.map((b) => tf.moments(tf.tensor4d(b.x, [b.n, 4, 4, 2]), [0, 1, 2]));
    const averaged = await recalibrateBn(engine, graph, params, batches, 'batch-average');
    const population = await recalibrateBn(engine, graph, params, batches);
    const expectedVar = Array.from({ length: 2 }, (_, c) => (perBatch[0]!.variance.dataSync()[c]! + perBatch[1]!.variance.dataSync()[c]!) / 2);
    const expectedMean = Array.from({ length: 2 }, (_, c) => (perBatch[0]!.mean.dataSync()[c]! + perBatch[1]!.mean.dataSync()[c]!) / 2);
    expect(Array.from(averaged.get('bn0/variance')!.data)).toEqual(expectedVar.map((v) => expect.closeTo(v, 4)));
    expect(Array.from(averaged.get('bn0/mean')!.data)).toEqual(expectedMean.map((v) => expect.closeTo(v, 5)));
    expect(Array.from(population.get('bn0/mean')!.data)).toEqual(expectedMean.map((v) => expect.closeTo(v, 5)));
    // Means 6 apart add (6/2)² = 9 to the population variance of unit-variance data.
    for (let c = 0; c < 2; c++) expect(population.get('bn0/variance')!.data[c]! - averaged.get('bn0/variance')!.data[c]!).toBeGreaterThan(7);
  });

});

