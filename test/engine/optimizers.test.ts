/**
 * The optimizer update inside the ort graphs against the TypeScript optimizers
 * (compiler/train/optimizers.ts, which follow PyTorch's equations and are checked against
 * hand-derived values in test/train/optimizers.test.ts):
 *
 * - in isolation: the update graph (the same `emitUpdate` as the fused step graph) and the
 *   TypeScript optimizer fed the very same gradients, several steps;
 * - end to end: an ort trainer and a tfjs trainer on the same graph, parameters and batches;
 * - the shared checkpoint format: optimizerState() of both engines has the same slots
 *   (`<param key>#<slot>`, IR layout, conv kernels HWIO), and a state moved from one engine
 *   to the other continues as the original does.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { fromOrtLayout, toOrtLayout } from '../../compiler/engine/ort/layout.ts';
import { sessionOptions } from '../../compiler/engine/ort/session.ts';
import { batchStatName, buildTrainingGraph, buildUpdateGraph, gradName, nextName, optimizerScalarValues } from '../../compiler/engine/ort/training-graph.ts';
import type { Engine, Trainer } from '../../compiler/engine/types.ts';
import type { Graph, HostTensor, ParamStore } from '../../compiler/graph/ir.ts';
import { initBackend } from '../../compiler/tf/backend.ts';
import { createOptimizer, type OptimizerConfig, type OptimizerState } from '../../compiler/train/optimizers.ts';
import { testEngine } from './engines.ts';
import { TestRng, cloneBatch, cloneStore, randomBatch, randomParams, relativeError } from './helpers.ts';

/**
 * conv 3×3 with bias → ReLU → conv 3×3 stride 2 → BN → ReLU → pool → dense: conv kernels
 * whose HWIO and OIHW layouts differ, both kinds of bias, BN γ/β and running statistics.
 * No bias feeds a BN, so no gradient here is mere rounding noise (which RAdam's m/√v
 * would turn into full-size steps of random sign).
 */
const graph: Graph = {
  arch: 'optimizer-test',
  output: 'fc',
  layers: [
    { kind: 'input', name: 'input', shape: [6, 5, 3] },
    { kind: 'conv', name: 'conv1', input: 'input', filters: 4, kernel: 3, stride: 1, pad: 1, bias: true },
    { kind: 'relu', name: 'relu1', input: 'conv1' },
    { kind: 'conv', name: 'conv2', input: 'relu1', filters: 6, kernel: 3, stride: 2, pad: 1, bias: false },
    { kind: 'bn', name: 'bn2', input: 'conv2', eps: 1e-5, momentum: 0.9 },
    { kind: 'relu', name: 'relu2', input: 'bn2' },
    { kind: 'globalavgpool', name: 'gap', input: 'relu2' },
    { kind: 'dense', name: 'fc', input: 'gap', units: 3 },
  ],
};
const BATCH = 8;

const SGD: OptimizerConfig[] = [
  { kind: 'sgd' },
  { kind: 'sgd', weightDecay: 0.05 },
  { kind: 'sgd', weightDecay: 0.05, decoupledWeightDecay: true },
  { kind: 'sgd', momentum: 0.9 },
  { kind: 'sgd', momentum: 0.9, nesterov: true },
  { kind: 'sgd', momentum: 0.9, dampening: 0.5 },
  { kind: 'sgd', momentum: 0.9, weightDecay: 0.05 },
  { kind: 'sgd', momentum: 0.9, weightDecay: 0.05, decoupledWeightDecay: true },
  { kind: 'sgd', momentum: 0.8, nesterov: true, weightDecay: 0.05 },
];
const RADAM: OptimizerConfig[] = [
  { kind: 'radam' },
  { kind: 'radam', weightDecay: 0.05 },
  { kind: 'radam', weightDecay: 0.05, decoupledWeightDecay: true },
  { kind: 'radam', beta1: 0.8, beta2: 0.99, eps: 1e-6 },
];
/** Enough RAdam steps to cross into the rectified regime (step 6 with β2 = 0.999). */
const stepsOf = (opt: OptimizerConfig): number => (opt.kind === 'radam' ? 8 : 4);
const lrAt = (opt: OptimizerConfig, t: number): number => (opt.kind === 'radam' ? 0.05 : 0.1) * (1 - t / 16);
const label = (opt: OptimizerConfig): string => JSON.stringify(opt);

beforeAll(async () => {
  await initBackend('cpu');
});

describe('the test itself', () => {
  it('runs RAdam through both regimes: plain steps first, rectified ones later', () => {
    for (const opt of RADAM) {
      const scalars = Array.from({ length: stepsOf(opt) }, (_, t) => optimizerScalarValues(opt, t, 0.05));
      expect(scalars[0]!['radam.plain'], label(opt)).toBeGreaterThan(0);
      expect(scalars[0]!['radam.adaptive'], label(opt)).toBe(0);
      expect(scalars.at(-1)!['radam.adaptive'], label(opt)).toBeGreaterThan(0);
      expect(scalars.at(-1)!['radam.plain'], label(opt)).toBe(0);
    }
    // β2 = 0.999: rectification starts at the 6th update (ρ_t > 5), as in PyTorch.
    const first = Array.from({ length: 8 }, (_, t) => optimizerScalarValues({ kind: 'radam' }, t, 1)['radam.adaptive']!).findIndex((v) => v > 0);
    expect(first).toBe(5);
  });
});

/** The ort update graph for `opt`, one replica: gradients in, next parameters and slots out. */
async function ortUpdater(opt: OptimizerConfig) {
  const tg = buildTrainingGraph(graph, { batch: 1, objective: { ce: 1 }, mode: 'gradients' });
  const session = await ort.InferenceSession.create(buildUpdateGraph(graph, tg, opt, 1), sessionOptions({ provider: 'cpu', threads: 1 }));
  const feed = (store: Map<string, HostTensor>, key: string, name = key): [string, ort.Tensor] => {
    const t = toOrtLayout(graph, key, store.get(key)!);
    return [name, new ort.Tensor('float32', Float32Array.from(t.data), t.shape)];
  };
  let slots = new Map<string, HostTensor>();
  return {
    tg,
    /** One update of `params` (IR layout) by `grads` at step `t`; returns the next parameters and keeps the slots. */
    async step(params: ParamStore, grads: Map<string, HostTensor>, t: number, lr: number): Promise<ParamStore> {
      const feeds: Record<string, ort.Tensor> = {};
      for (const [k, v] of Object.entries(optimizerScalarValues(opt, t, lr))) feeds[k] = new ort.Tensor('float32', new Float32Array([v]), []);
      for (const key of tg.trainable) {
        Object.assign(feeds, Object.fromEntries([feed(params, key), feed(grads, key, `r0:${gradName(key)}`)]));
      }
      for (const name of session.inputNames.filter((n) => n.includes('#'))) {
        const shape = tg.shapes.get(name.split('#')[0]!)!;
        feeds[name] = slots.has(name) ? feed(slots, name)[1] : new ort.Tensor('float32', new Float32Array(shape.reduce((p, q) => p * q, 1)), shape);
      }
      for (const key of tg.runningStats) {
        Object.assign(feeds, Object.fromEntries([feed(params, key), feed(params, key, `r0:${batchStatName(key)}`)]));
      }
      const out = await session.run(feeds);
      const next: ParamStore = new Map();
      for (const key of [...tg.trainable, ...tg.runningStats]) next.set(key, fromOrtLayout(graph, key, { shape: [...out[nextName(key)]!.dims], data: out[nextName(key)]!.data as Float32Array }));
      slots = new Map();
      for (const name of session.outputNames.filter((n) => n.includes('#'))) {
        const key = name.slice(0, -'.next'.length);
        slots.set(key, fromOrtLayout(graph, key, { shape: [...out[name]!.dims], data: out[name]!.data as Float32Array }));
      }
      return next;
    },
    slots: () => slots,
    release: () => session.release(),
  };
}

/**
 * Random gradients (IR layout) spanning six orders of magnitude, signs mixed, so the
 * update's every term (and RAdam's ε next to √v) matters somewhere.
 */
function randomGrads(params: ParamStore, keys: string[], seed: number): Map<string, HostTensor> {
  const rng = new TestRng(seed);
  return new Map(
    keys.map((key) => {
      const t = params.get(key)!;
      const data = new Float32Array(t.data.length);
      for (let i = 0; i < data.length; i++) data[i] = (rng.float() < 0.5 ? -1 : 1) * 10 ** (-5 + 6 * rng.float());
      return [key, { shape: [...t.shape], data }];
    }),
  );
}

describe('the in-graph update equals the TypeScript optimizer on the same gradients', () => {
  it.each([...SGD, ...RADAM].map((o) => [label(o), o] as const))('%s', async (_, opt) => {
    const updater = await ortUpdater(opt);
    const optimizer = createOptimizer(opt);
    let params = randomParams(graph, 1);
    const vars = new Map(updater.tg.trainable.map((k) => [k, tf.variable(tf.tensor(params.get(k)!.data, params.get(k)!.shape))]));
    try {
      for (let t = 0; t < stepsOf(opt); t++) {
        const lr = lrAt(opt, t);
        const grads = randomGrads(params, updater.tg.trainable, 100 + t);
        const next = await updater.step(params, grads, t, lr);
        const gradTensors = new Map([...grads].map(([k, g]) => [k, tf.tensor(g.data, g.shape)]));
        optimizer.apply(vars, gradTensors, lr);
        tf.dispose([...gradTensors.values()]);
        for (const key of updater.tg.trainable) {
          const want = vars.get(key)!.dataSync() as Float32Array;
          const have = next.get(key)!.data;
          const before = params.get(key)!.data;
          // The update itself to 1e-5 of its size, plus the rounding of the parameter it lands on
          // (two roundings, each up to an ulp: 2^-23 of a value in [scale/2, scale]).
          let update = 0;
          let scale = 0;
          let diff = 0;
          for (let i = 0; i < want.length; i++) {
            update = Math.max(update, Math.abs(want[i]! - before[i]!));
            scale = Math.max(scale, Math.abs(want[i]!));
            diff = Math.max(diff, Math.abs(have[i]! - want[i]!));
          }
          expect(update, `${label(opt)} step ${t + 1} ${key}: the step moves it`).toBeGreaterThan(0);
          expect(diff, `${label(opt)} step ${t + 1} ${key}`).toBeLessThanOrEqual(1e-5 * update + 2 ** -22 * scale);
        }
        // The running statistics pass through unchanged here: momentum·old + (1 − momentum)·old.
        for (const key of updater.tg.runningStats) expect(relativeError(next.get(key)!.data, params.get(key)!.data), key).toBeLessThanOrEqual(1e-6);
        // The slots agree too, under the same names.
        const state = await optimizer.getState();
        expect([...updater.slots().keys()].sort(), `${label(opt)} step ${t + 1}: slots`).toEqual([...state.slots.keys()].sort());
        for (const [key, s] of state.slots) {
          expect(updater.slots().get(key)!.shape, key).toEqual(s.shape);
          expect(relativeError(updater.slots().get(key)!.data, s.data), `${label(opt)} step ${t + 1} ${key}`).toBeLessThanOrEqual(1e-5);
        }
        params = next;
      }
    } finally {
      await updater.release();
      optimizer.dispose();
      tf.dispose([...vars.values()]);
    }
  });
});

/** Steps two trainers through steps [from, to) on the same batches and learning rates; after each, the same loss and parameters. */
async function stepBoth(a: Trainer, b: Trainer, opt: OptimizerConfig, from: number, to: number): Promise<void> {
  for (let t = from; t < to; t++) {
    const batch = randomBatch(graph, BATCH, 500 + t);
    const lr = lrAt(opt, t);
    const ra = await a.step(cloneBatch(batch), lr);
    const rb = await b.step(batch, lr);
    expect(Math.abs(ra.loss - rb.loss) / rb.loss, `${label(opt)} step ${t + 1}: loss`).toBeLessThanOrEqual(1e-5);
    expect(ra.correct, `${label(opt)} step ${t + 1}: correct`).toBe(rb.correct);
    await expectParamsTrack(await a.params(), await b.params(), `${label(opt)} after step ${t + 1}`);
  }
}

/**
 * Parameters of the two engines after the same steps. Measured: ≤ 2e-7 of max |p| for
 * every configuration here (the engines' gradients differ in the last bits, ~1e-6
 * relative). 2e-6 leaves 10× for other CPUs' kernels; an update off by 1% moves a
 * parameter by ≥ 1e-4 of max |p| with these learning rates.
 */
async function expectParamsTrack(have: ParamStore, want: ParamStore, what: string): Promise<void> {
  expect([...have.keys()].sort(), what).toEqual([...want.keys()].sort());
  for (const [k, t] of want) {
    expect(have.get(k)!.shape, `${what} ${k}`).toEqual(t.shape);
    expect(relativeError(have.get(k)!.data, t.data), `${what} ${k}`).toBeLessThanOrEqual(2e-6);
  }
}

/** Same slots (names and IR shapes) and values within 1e-4 of each slot's scale (they accumulate gradients). */
function expectSameState(have: OptimizerState, want: OptimizerState, params: ParamStore, what: string): void {
  expect(have.kind, what).toBe(want.kind);
  expect(have.step, `${what}: step`).toBe(want.step);
  expect([...have.slots.keys()].sort(), `${what}: slot names`).toEqual([...want.slots.keys()].sort());
  for (const [key, s] of want.slots) {
    // IR layout: every slot has its parameter's shape (conv kernels HWIO).
    expect(s.shape, `${what}: ${key} shape`).toEqual(params.get(key.split('#')[0]!)!.shape);
    expect(have.slots.get(key)!.shape, `${what}: ${key} shape`).toEqual(s.shape);
    expect(relativeError(have.slots.get(key)!.data, s.data), `${what}: ${key}`).toBeLessThanOrEqual(1e-4);
  }
}

const trainerOn = (engine: Engine, opt: OptimizerConfig, params: ParamStore): Promise<Trainer> =>
  engine.trainer({ graph, params: cloneStore(params), optimizer: opt, objective: { ce: 1 }, batchSize: BATCH });

describe('ort and tfjs trainers step for step', () => {
  let ortEngine: Engine;
  let tfjsEngine: Engine;
  beforeAll(async () => {
    ortEngine = await testEngine('ort');
    tfjsEngine = await testEngine('tfjs');
  });

  it.each([...SGD, ...RADAM].map((o) => [label(o), o] as const))('%s: same parameters after every step, and the same optimizer state', async (_, opt) => {
    const params = randomParams(graph, 2);
    const a = await trainerOn(ortEngine, opt, params);
    const b = await trainerOn(tfjsEngine, opt, params);
    try {
      // Before any update neither has slots (PyTorch creates them lazily).
      expectSameState(await a.optimizerState(), await b.optimizerState(), params, `${label(opt)} before stepping`);
      expect((await a.optimizerState()).slots.size).toBe(0);
      await stepBoth(a, b, opt, 0, stepsOf(opt));
      const state = await a.optimizerState();
      expectSameState(state, await b.optimizerState(), params, label(opt));
      const slots = opt.kind === 'radam' ? ['exp_avg', 'exp_avg_sq'] : (opt.momentum ?? 0) !== 0 ? ['momentum'] : [];
      expect([...state.slots.keys()].sort()).toEqual(['conv1/kernel', 'conv1/bias', 'conv2/kernel', 'bn2/gamma', 'bn2/beta', 'fc/kernel', 'fc/bias'].flatMap((k) => slots.map((s) => `${k}#${s}`)).sort());
    } finally {
      await a.dispose();
      await b.dispose();
    }
  });

  it.each([
    ['ort → tfjs', { kind: 'sgd', momentum: 0.9, nesterov: true, weightDecay: 0.05 }],
    ['tfjs → ort', { kind: 'sgd', momentum: 0.9, dampening: 0.3, weightDecay: 0.05, decoupledWeightDecay: true }],
    ['ort → tfjs', { kind: 'radam', weightDecay: 0.05 }],
    ['tfjs → ort', { kind: 'radam', weightDecay: 0.05, decoupledWeightDecay: true }],
  ] as const)('%s: load() of the other engine\'s state continues as the original, %j', async (direction, opt) => {
    const [fromEngine, toEngine] = direction === 'ort → tfjs' ? [ortEngine, tfjsEngine] : [tfjsEngine, ortEngine];
    const source = await trainerOn(fromEngine, opt, randomParams(graph, 3));
    // The receiving trainer starts elsewhere: load() must replace parameters, statistics, slots and the step count.
    const target = await trainerOn(toEngine, opt, randomParams(graph, 4));
    try {
      // Three steps on the source (RAdam: still unrectified), then both continue past step 6.
      for (let t = 0; t < 3; t++) await source.step(randomBatch(graph, BATCH, 500 + t), lrAt(opt, t));
      await target.load(await source.params(), await source.optimizerState());
      await expectParamsTrack(await target.params(), await source.params(), `${direction} right after load`);
      expectSameState(await target.optimizerState(), await source.optimizerState(), await source.params(), `${direction} right after load`);
      await stepBoth(target, source, opt as OptimizerConfig, 3, 3 + stepsOf(opt as OptimizerConfig));
      expectSameState(await target.optimizerState(), await source.optimizerState(), await source.params(), `${direction} at the end`);
    } finally {
      await source.dispose();
      await target.dispose();
    }
  });
});
