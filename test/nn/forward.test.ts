import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initParams, resnet } from '../../compiler/graph/builders.ts';
import type { Graph, ParamStore } from '../../compiler/graph/ir.ts';
import { inferShapes } from '../../compiler/graph/shapes.ts';
import { forward, fromVariables, predict, toVariables, trainableVariables, updateRunningStats } from '../../compiler/nn/forward.ts';
import { ensureStockGradients } from '../../compiler/tf/gradients.ts';
import { TestRng } from './test-rng.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const t = (shape: number[], data: number[]) => ({ shape, data: Float32Array.from(data) });

/** conv(2×2, bias) → bn → relu → add(relu, bn) → avgpool 2×2 → flatten → dense(2). */
const tiny: Graph = {
  arch: 'tiny',
  layers: [
    { kind: 'input', name: 'input', shape: [3, 3, 1] },
    { kind: 'conv', name: 'conv', input: 'input', filters: 1, kernel: 2, stride: 1, pad: 0, bias: true },
    { kind: 'bn', name: 'bn', input: 'conv', eps: 0, momentum: 0.9 },
    { kind: 'relu', name: 'relu', input: 'bn' },
    { kind: 'add', name: 'add', inputs: ['relu', 'bn'] },
    { kind: 'avgpool', name: 'pool', input: 'add', kernel: 2, stride: 2, pad: 0 },
    { kind: 'flatten', name: 'flat', input: 'pool' },
    { kind: 'dense', name: 'fc', input: 'flat', units: 2 },
  ],
  output: 'fc',
};
const tinyParams = (): ParamStore =>
  new Map([
    ['conv/kernel', t([2, 2, 1, 1], [1, 0, 0, -1])], // y[i][j] = x[i][j] − x[i+1][j+1] + 0.5
    ['conv/bias', t([1], [0.5])],
    ['bn/gamma', t([1], [3])],
    ['bn/beta', t([1], [1])],
    ['bn/mean', t([1], [0.5])],
    ['bn/variance', t([1], [4])],
    ['fc/kernel', t([1, 2], [2, -1])],
    ['fc/bias', t([2], [0.25, 0])],
  ]);
const tinyInput = () => tf.tensor4d([1, 2, 0, 0, 1, 3, 2, 0, 1], [1, 3, 3, 1]);

describe('forward on a hand-computed graph', () => {
  it('eval mode: conv, BN with running stats, relu, add, avgpool, flatten, dense', async () => {
    // conv = [[0.5, −0.5], [0.5, 0.5]]; bn = (v − 0.5)/2·3 + 1 = [[1, −0.5], [1, 1]];
    // relu = [[1, 0], [1, 1]]; add = [[2, −0.5], [2, 2]]; pool = 5.5/4 = 1.375;
    // fc = [1.375·2 + 0.25, −1.375] = [3, −1.375].
    const vars = toVariables(tinyParams());
    const r = forward(tiny, vars, tinyInput(), { training: false, taps: ['conv', 'bn', 'add'] });
    expect([...(await r.taps.get('conv')!.data())]).toEqual([0.5, -0.5, 0.5, 0.5]);
    expect([...(await r.taps.get('bn')!.data())]).toEqual([1, -0.5, 1, 1]);
    expect([...(await r.taps.get('add')!.data())]).toEqual([2, -0.5, 2, 2]);
    expect(r.logits.shape).toEqual([1, 2]);
    expect([...(await r.logits.data())]).toEqual([3, -1.375]);
    expect(r.bnBatchStats.size).toBe(0);
    const p = predict(tiny, tinyParams(), tinyInput());
    expect([...(await p.data())]).toEqual([3, -1.375]);
  });

  it('training mode: BN uses and returns batch statistics; running stats update Keras-style', async () => {
    // Batch statistics of conv: mean 0.25, biased variance 0.75/4 = 0.1875.
    const vars = toVariables(tinyParams());
    const r = forward(tiny, vars, tinyInput(), { training: true, taps: ['bn'] });
    const s = r.bnBatchStats.get('bn')!;
    expect((await s.mean.data())[0]).toBeCloseTo(0.25, 6);
    expect((await s.variance.data())[0]).toBeCloseTo(0.1875, 6);
    const bn = await r.taps.get('bn')!.data();
    const sd = Math.sqrt(0.1875);
    [0.5, -0.5, 0.5, 0.5].forEach((v, i) => expect(bn[i]).toBeCloseTo(((v - 0.25) / sd) * 3 + 1, 4));
    updateRunningStats(tiny, vars, r.bnBatchStats);
    expect((await vars.get('bn/mean')!.data())[0]).toBeCloseTo(0.9 * 0.5 + 0.1 * 0.25, 6);
    expect((await vars.get('bn/variance')!.data())[0]).toBeCloseTo(0.9 * 4 + 0.1 * 0.1875, 6);
    expect(vars.get('bn/mean')!.trainable).toBe(false);
    expect([...trainableVariables(vars).keys()].sort()).toEqual(['bn/beta', 'bn/gamma', 'conv/bias', 'conv/kernel', 'fc/bias', 'fc/kernel']);
  });

  it('maxpool and padshortcut (subsample, zero channels on both sides)', async () => {
    const g: Graph = {
      arch: 'ps',
      layers: [
        { kind: 'input', name: 'input', shape: [3, 3, 1] },
        { kind: 'padshortcut', name: 'short', input: 'input', stride: 2, filters: 4 },
        { kind: 'maxpool', name: 'max', input: 'input', kernel: 2, stride: 1, pad: 0 },
        { kind: 'globalavgpool', name: 'gap', input: 'short' },
        { kind: 'dense', name: 'fc', input: 'gap', units: 1 },
      ],
      output: 'fc',
    };
    const params: ParamStore = new Map([['fc/kernel', t([4, 1], [1, 1, 1, 1])], ['fc/bias', t([1], [0])]]);
    const x = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 3, 3, 1]);
    const r = forward(g, toVariables(params), x, { training: false, taps: ['short', 'max'] });
    const short = r.taps.get('short')!;
    expect(short.shape).toEqual([1, 2, 2, 4]);
    // Rows/cols 0 and 2 → [[1, 3], [7, 9]] in channel 1 (one zero channel before, two after).
    expect([...(await short.data())]).toEqual([0, 1, 0, 0, 0, 3, 0, 0, 0, 7, 0, 0, 0, 9, 0, 0]);
    expect([...(await r.taps.get('max')!.data())]).toEqual([5, 6, 8, 9]);
    expect([...(await r.logits.data())]).toEqual([5]);
  });

  it('rejects a wrong input shape, an unknown tap and a missing parameter by name', () => {
    const vars = toVariables(tinyParams());
    expect(() => forward(tiny, vars, tf.zeros([1, 4, 3, 1]), { training: false })).toThrow(/\[N, 3, 3, 1\].*\[1, 4, 3, 1\]/);
    expect(() => forward(tiny, vars, tinyInput(), { training: false, taps: ['nope'] })).toThrow(/tap "nope"/);
    vars.delete('fc/bias');
    expect(() => forward(tiny, vars, tinyInput(), { training: false })).toThrow(/"fc\/bias" is missing/);
  });
});

describe('forward on ResNets', () => {
  it('every layer output has the inferred shape (option A + pool2x2 on 28×28×1, projection + GAP on 32×32×3)', () => {
    for (const g of [
      resnet({ depth: 20, width: 0.25, input: [28, 28, 1], classes: 10, shortcut: 'A', head: 'pool2x2' }),
      resnet({ depth: 20, width: 0.25, input: [32, 32, 3], classes: 4, shortcut: 'projection', head: 'gap' }),
    ]) {
      const shapes = inferShapes(g);
      tf.tidy(() => {
        const vars = toVariables(initParams(g, new TestRng(5)));
        const x = tf.randomNormal([2, ...(shapes.get('input') as [number, number, number])]) as tf.Tensor4D;
        const r = forward(g, vars, x, { training: true, taps: g.layers.map((l) => l.name) });
        for (const [name, shape] of shapes) expect(r.taps.get(name)!.shape, name).toEqual([2, ...shape]);
        expect(r.bnBatchStats.size).toBe(g.layers.filter((l) => l.kind === 'bn').length);
        for (const v of vars.values()) v.dispose();
      });
    }
  });

  it('gradients reach every trainable variable through the option-A shortcut', async () => {
    await ensureStockGradients();
    const g = resnet({ depth: 8, width: 0.25, input: [9, 9, 1], classes: 3, shortcut: 'A' });
    const vars = toVariables(initParams(g, new TestRng(6)));
    const x = tf.randomNormal([2, 9, 9, 1], 0, 1, 'float32', 7) as tf.Tensor4D;
    const { grads } = tf.variableGrads(() => tf.sum(tf.square(forward(g, vars, x, { training: true }).logits)) as tf.Scalar, [
      ...trainableVariables(vars).values(),
    ]);
    const trainable = [...trainableVariables(vars).values()];
    expect(Object.keys(grads).length).toBe(trainable.length);
    for (const v of trainable) {
      const gr = grads[v.name]!;
      expect(gr.shape, v.name).toEqual(v.shape);
      expect((await tf.sum(tf.abs(gr)).data())[0], v.name).toBeGreaterThan(0);
    }
  });

  it('toVariables leaves no tensors behind once the variables are disposed', () => {
    const g = resnet({ depth: 8, width: 0.25, input: [8, 8, 3], classes: 2 });
    const before = tf.memory().numTensors;
    const vars = toVariables(initParams(g, new TestRng(9)));
    expect(tf.memory().numTensors).toBe(before + vars.size);
    for (const v of vars.values()) v.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('fromVariables round-trips the parameters', async () => {
    const g = resnet({ depth: 8, width: 0.25, input: [8, 8, 3], classes: 2 });
    const p = initParams(g, new TestRng(8));
    const back = await fromVariables(toVariables(p));
    expect([...back.keys()]).toEqual([...p.keys()]);
    for (const [k, v] of p) expect(back.get(k)).toEqual(v);
  });
});

describe('forward on the wasm backend (the default for training)', () => {
  it('matches the cpu backend in loss and every gradient, option A with an odd map size', async () => {
    const { initBackend } = await import('../../compiler/tf/backend.ts');
    const g = resnet({ depth: 8, width: 0.5, input: [15, 15, 1], classes: 3, shortcut: 'A' });
    const params = initParams(g, new TestRng(31));
    const xs = new TestRng(32).uniform(2 * 15 * 15, -1, 1);
    const run = async (backend: 'cpu' | 'wasm'): Promise<Float32Array[]> => {
      await initBackend(backend);
      const vars = toVariables(params);
      const trainable = [...trainableVariables(vars).values()];
      const x = tf.tensor4d(xs, [2, 15, 15, 1]);
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(forward(g, vars, x, { training: true }).logits)) as tf.Scalar, trainable);
      const out = [value, ...trainable.map((v) => grads[v.name]!)].map((t) => Float32Array.from(t.dataSync() as Float32Array));
      tf.dispose([value, x, ...Object.values(grads), ...vars.values()]);
      return out;
    };
    try {
      const cpu = await run('cpu');
      const wasm = await run('wasm');
      expect(tf.getBackend()).toBe('wasm');
      cpu.forEach((a, i) => a.forEach((v, j) => expect(Math.abs(v - wasm[i]![j]!) / (1 + Math.abs(v))).toBeLessThan(1e-4)));
    } finally {
      await tf.setBackend('cpu');
    }
  });
});
