/**
 * Data-parallel training on onnxruntime: replicas in worker threads compute gradients on
 * their slices of the batch, the main thread's update graph averages them and combines
 * the replicas' BN batch statistics into those of the whole batch.
 */
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrtEngine } from '../../compiler/engine/ort/engine.ts';
import { MIN_REPLICA_ROWS, replicaCount, sliceBatch } from '../../compiler/engine/ort/trainer.ts';
import type { Engine, HostBatch, Trainer, TrainerSpec } from '../../compiler/engine/types.ts';
import type { Graph, HostTensor, ParamStore } from '../../compiler/graph/ir.ts';
import { inputLayer } from '../../compiler/graph/shapes.ts';
import { forward, toVariables } from '../../compiler/nn/forward.ts';
import { testEngine } from './engines.ts';
import { channelStats, cloneBatch, cloneStore, concatBatches, expectStoresIdentical, pixelsOf, randomBatch, randomParams } from './helpers.ts';

/** conv → BN → ReLU → conv stride 2 (bias) → BN → ReLU (the feature) → pool → dense → BN on the logits. */
const graph: Graph = {
  arch: 'data-parallel-test',
  output: 'fc.bn',
  feature: 'relu2',
  layers: [
    { kind: 'input', name: 'input', shape: [6, 6, 2] },
    { kind: 'conv', name: 'conv1', input: 'input', filters: 4, kernel: 3, stride: 1, pad: 1, bias: false },
    { kind: 'bn', name: 'bn1', input: 'conv1', eps: 1e-5, momentum: 0.9 },
    { kind: 'relu', name: 'relu1', input: 'bn1' },
    { kind: 'conv', name: 'conv2', input: 'relu1', filters: 5, kernel: 3, stride: 2, pad: 1, bias: true },
    { kind: 'bn', name: 'bn2', input: 'conv2', eps: 1e-5, momentum: 0.8 },
    { kind: 'relu', name: 'relu2', input: 'bn2' },
    { kind: 'globalavgpool', name: 'gap', input: 'relu2' },
    { kind: 'dense', name: 'fc', input: 'gap', units: 3 },
    { kind: 'bn', name: 'fc.bn', input: 'fc', eps: 1e-3, momentum: 0.7 },
  ],
};
const pixels = pixelsOf(graph);
const ROWS = MIN_REPLICA_ROWS;

let one: Engine;
let two: Engine;
beforeAll(async () => {
  // The expected statistics need only tfjs's forward; no gradients (initBackend would load them).
  await tf.setBackend('cpu');
  // One thread per replica session, as the single-replica session has: bit-exact comparisons.
  one = await testEngine('ort');
  two = await createOrtEngine({ threads: 2, replicas: 2 });
  expect(two.description).toBe('ort cpu, 2 replicas × 1 thread');
});

const trainers: Trainer[] = [];
afterAll(async () => {
  for (const t of trainers) await t.dispose();
});
async function trainer(engine: Engine, spec: TrainerSpec): Promise<Trainer> {
  const t = await engine.trainer({ ...spec, params: cloneStore(spec.params) });
  trainers.push(t);
  return t;
}

/** A batch whose rows all differ in value: row i's pixels hold i + j/1000, its clean image the negatives, its label i. */
function numberedBatch(n: number): HostBatch {
  const x = new Float32Array(n * pixels);
  for (let i = 0; i < x.length; i++) x[i] = Math.floor(i / pixels) + (i % pixels) / 1000;
  return { n, x, clean: x.map((v) => -v), labels: Int32Array.from({ length: n }, (_, i) => i) };
}

describe('replicaCount', () => {
  it('takes the most replicas that split every group evenly with at least 16 rows each, else 1', () => {
    expect(MIN_REPLICA_ROWS).toBe(16);
    expect(replicaCount(8, 128, 1)).toBe(8);
    expect(replicaCount(16, 128, 1)).toBe(8); // 16 × 8 rows: too few
    expect(replicaCount(8, 64, 1)).toBe(4);
    expect(replicaCount(8, 48, 1)).toBe(3); // 8, 6, 4 replicas leave under 16 rows
    expect(replicaCount(4, 96, 2)).toBe(4); // 48 per group, 12 of each per replica
    expect(replicaCount(4, 96, 3)).toBe(4); // 32 per group, 8 of each
    expect(replicaCount(4, 90, 3)).toBe(3); // 30 per group: 4 does not divide it, 3 does
    expect(replicaCount(4, 100, 4)).toBe(1); // 25 per group: neither 4, 3 nor 2 divides it
    expect(replicaCount(2, 20, 2)).toBe(1); // 2 × 10 rows: too few
    expect(replicaCount(2, 32, 1)).toBe(2);
    expect(replicaCount(2, 31, 1)).toBe(1);
    expect(replicaCount(1, 128, 1)).toBe(1);
    expect(replicaCount(0, 128, 1)).toBe(1);
  });

  it('holds those rules for every batch up to 96, every group count and up to 8 replicas wanted', () => {
    for (let wanted = 0; wanted <= 8; wanted++) {
      for (let batch = 1; batch <= 96; batch++) {
        for (let groups = 1; groups <= batch; groups++) {
          if (batch % groups !== 0) continue;
          const r = replicaCount(wanted, batch, groups);
          const fits = (q: number) => (batch / groups) % q === 0 && batch / q >= MIN_REPLICA_ROWS;
          const what = `wanted ${wanted}, batch ${batch}, ${groups} groups → ${r}`;
          expect(r === 1 || (r <= wanted && fits(r)), what).toBe(true);
          for (let q = r + 1; q <= wanted; q++) expect(fits(q), `${what}, but ${q} fits`).toBe(false);
        }
      }
    }
  });

  it('a trainer falls back to one fused graph when the batch does not split', async () => {
    const spec: TrainerSpec = { graph, params: randomParams(graph, 1), optimizer: { kind: 'sgd', momentum: 0.9 }, objective: { ce: 1 }, batchSize: 24 };
    const [a, b] = [await trainer(two, spec), await trainer(one, spec)];
    for (let s = 0; s < 2; s++) {
      const batch = randomBatch(graph, 24, 10 + s);
      expect((await a.step(cloneBatch(batch), 0.1)).loss).toBe((await b.step(batch, 0.1)).loss);
    }
    expectStoresIdentical(await a.params(), await b.params(), '24 rows on the 2-replica engine vs 1 replica');
  });
});

describe('sliceBatch', () => {
  it('gives each replica its share of every group, in group order, with the clean images and labels alongside', () => {
    const batch = numberedBatch(12);
    const slices = sliceBatch(batch, 3, 2, pixels); // groups of 6, 2 rows of each per replica
    expect(slices.map((s) => [...s.labels])).toEqual([
      [0, 1, 6, 7],
      [2, 3, 8, 9],
      [4, 5, 10, 11],
    ]);
    for (const s of slices) {
      expect(s.n).toBe(4);
      s.labels.forEach((row, i) => {
        expect(s.x.subarray(i * pixels, (i + 1) * pixels), `row ${row}`).toEqual(batch.x.subarray(row * pixels, (row + 1) * pixels));
        expect(s.clean!.subarray(i * pixels, (i + 1) * pixels), `clean row ${row}`).toEqual(batch.clean!.subarray(row * pixels, (row + 1) * pixels));
      });
    }
    // One group: contiguous halves.
    expect(sliceBatch(batch, 2, 1, pixels).map((s) => [...s.labels])).toEqual([
      [0, 1, 2, 3, 4, 5],
      [6, 7, 8, 9, 10, 11],
    ]);
  });
});

describe('two replicas', () => {
  it('on a batch of two identical halves: 3 steps bit-identical to one replica on one half (momentum, weight decay)', async () => {
    const spec: TrainerSpec = { graph, params: randomParams(graph, 2), optimizer: { kind: 'sgd', momentum: 0.9, nesterov: true, weightDecay: 5e-3 }, objective: { ce: 1 }, batchSize: 2 * ROWS };
    const dp = await trainer(two, spec);
    const single = await trainer(one, { ...spec, batchSize: ROWS });
    for (let s = 0; s < 3; s++) {
      const half = randomBatch(graph, ROWS, 20 + s);
      const both = concatBatches([half, half], pixels);
      const [a, b] = [await dp.step(both, 0.1), await single.step(cloneBatch(half), 0.1)];
      expect(a.loss, `step ${s + 1}: loss`).toBe(b.loss);
      expect(a.correct, `step ${s + 1}: correct`).toBe(2 * b.correct);
    }
    expectStoresIdentical(await dp.params(), await single.params(), 'parameters and running statistics');
    const [sa, sb] = [await dp.optimizerState(), await single.optimizerState()];
    expect(sa.step).toBe(3);
    expectStoresIdentical(sa.slots, sb.slots, 'momentum buffers');
  });

  it('parameters the loss does not reach (feature-only objective) stay bit-identical, the rest as one replica', async () => {
    const spec: TrainerSpec = {
      graph,
      params: randomParams(graph, 5),
      optimizer: { kind: 'sgd', momentum: 0.9, weightDecay: 0.1 },
      objective: { ce: 0, feature: { weight: 1, groups: 1 } },
      teachers: { models: [{ graph, params: randomParams(graph, 6) }], input: 'degraded' },
      batchSize: 2 * ROWS,
    };
    const dp = await trainer(two, spec);
    const single = await trainer(one, { ...spec, batchSize: ROWS });
    for (let s = 0; s < 2; s++) {
      const half = randomBatch(graph, ROWS, 70 + s);
      expect((await dp.step(concatBatches([half, half], pixels), 0.1)).loss).toBe((await single.step(cloneBatch(half), 0.1)).loss);
    }
    const after = await dp.params();
    expectStoresIdentical(after, await single.params(), 'parameters and running statistics');
    const unreached = ['fc/kernel', 'fc/bias', 'fc.bn/gamma', 'fc.bn/beta'];
    expectStoresIdentical(new Map(unreached.map((k) => [k, after.get(k)!])), new Map(unreached.map((k) => [k, spec.params.get(k)!])), 'unreached');
    expect([...(await dp.optimizerState()).slots.keys()].filter((k) => unreached.some((u) => k.startsWith(`${u}#`)))).toEqual([]);
  });

  it('with 2 teachers in 2 groups: each replica gets half of each group, and teacher g answers for group g', async () => {
    // Group g of the 4·16-row batch is [A_g, A_g]: with the right split both replicas see
    // [A_0, A_1] and agree with one replica on it. Any other split pairs a teacher with
    // the other group's rows, or gives the replicas different rows.
    const teachers = [randomParams(graph, 30), randomParams(graph, 31)];
    const spec: TrainerSpec = {
      graph,
      params: randomParams(graph, 3),
      optimizer: { kind: 'radam', weightDecay: 1e-2, decoupledWeightDecay: true },
      objective: { ce: 0.5, feature: { weight: 1, groups: 2 }, distill: { weight: 0.7, temperature: 2, groups: 2 } },
      teachers: { models: teachers.map((params) => ({ graph, params })), input: 'clean' },
      batchSize: 4 * ROWS,
    };
    const dp = await trainer(two, spec);
    const single = await trainer(one, { ...spec, batchSize: 2 * ROWS });
    for (let s = 0; s < 2; s++) {
      const groups = [0, 1].map((g) => {
        const b = randomBatch(graph, ROWS, 40 + 2 * s + g);
        return { ...b, clean: randomBatch(graph, ROWS, 50 + 2 * s + g).x };
      });
      const full = concatBatches([groups[0]!, groups[0]!, groups[1]!, groups[1]!], pixels);
      const [a, b] = [await dp.step(full, 0.01), await single.step(concatBatches(groups, pixels), 0.01)];
      expect(a.loss, `step ${s + 1}`).toBe(b.loss);
    }
    expectStoresIdentical(await dp.params(), await single.params(), 'parameters and running statistics');
  });

  it('running statistics: momentum·old + (1 − momentum)·(mean, biased variance) of every BN input over the whole batch', async () => {
    const params = randomParams(graph, 4);
    const spec: TrainerSpec = { graph, params, optimizer: { kind: 'sgd' }, objective: { ce: 1 }, batchSize: 2 * ROWS };
    const dp = await trainer(two, spec);
    // Halves from different distributions, so the spread of the replicas' means matters.
    const halves = [randomBatch(graph, ROWS, 60), randomBatch(graph, ROWS, 61)];
    halves[1]!.x = halves[1]!.x.map((v) => 2 * v + 1);
    await dp.step(concatBatches(halves, pixels), 0.1);
    const after = await dp.params();

    // Independently: each replica's BN inputs (tfjs, training mode on its own half, so the
    // earlier BNs normalise by that half as the replica's did), pooled, in float64.
    const bns = graph.layers.filter((l) => l.kind === 'bn');
    const taps = halves.map((h) => tapsOf(params, h, bns.map((l) => l.input)));
    for (const layer of bns) {
      const pooled = concatRows(taps.map((t) => t.get(layer.input)!));
      const { mean, variance } = channelStats(pooled);
      const m = layer.momentum;
      for (const [stat, batchValue] of [['mean', mean], ['variance', variance]] as const) {
        const key = `${layer.name}/${stat}`;
        const old = params.get(key)!.data;
        const want = Array.from(batchValue, (v, c) => m * old[c]! + (1 - m) * v);
        const got = after.get(key)!.data;
        const scale = Math.max(...want.map(Math.abs));
        want.forEach((v, c) => expect(Math.abs(got[c]! - v), `${key}[${c}]: ${got[c]} vs ${v}`).toBeLessThanOrEqual(2e-6 * scale));
      }
      // Not vacuous: the replicas' own variances, averaged, fall well short of the whole batch's.
      const within = taps.map((t) => channelStats(t.get(layer.input)!).variance);
      const naive = Array.from(variance, (_, c) => (within[0]![c]! + within[1]![c]!) / 2);
      expect(Math.max(...Array.from(variance, (v, c) => (v - naive[c]!) / v)), `${layer.name}: the spread of the means`).toBeGreaterThan(1e-3);
    }
  });
});

/** Training-mode tfjs forward on one batch, returning the named layers' outputs. */
function tapsOf(params: ParamStore, batch: HostBatch, names: string[]): Map<string, HostTensor> {
  const vars = toVariables(params);
  try {
    const outs = tf.tidy(() => {
      const r = forward(graph, vars, tf.tensor4d(batch.x, [batch.n, ...inputLayer(graph).shape]), { training: true, taps: names });
      return names.map((n) => r.taps.get(n)!);
    });
    const taps = new Map(names.map((n, i) => [n, { shape: [...outs[i]!.shape], data: outs[i]!.dataSync() as Float32Array }]));
    tf.dispose(outs);
    return taps;
  } finally {
    tf.dispose([...vars.values()]);
  }
}

function concatRows(ts: HostTensor[]): HostTensor {
  const data = new Float32Array(ts.reduce((s, t) => s + t.data.length, 0));
  let at = 0;
  for (const t of ts) {
    data.set(t.data, at);
    at += t.data.length;
  }
  return { shape: [ts.reduce((s, t) => s + t.shape[0]!, 0), ...ts[0]!.shape.slice(1)], data };
}
