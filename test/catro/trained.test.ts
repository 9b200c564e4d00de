/**
 * CATRO on a model trained (briefly, tfjs wasm backend) on separable synthetic data whose
 * classes live in different image regions: subtasks over different classes must keep
 * different channels, and the tfjs interpreter must give the masked network's outputs
 * for the physically pruned one.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { catroPrune, measureScatter, type PruneResult } from '../../compiler/catro/catro.ts';
import { prunableSpaces } from '../../compiler/catro/spaces.ts';
import { referenceTapRunner } from './reference-forward.ts';
import { maskChannels } from '../../compiler/catro/prune.ts';
import { tfjsTapRunner } from '../../compiler/engine/tfjs/engine.ts';
import { initBackend } from '../../compiler/tf/backend.ts';
import { initParams, resnet } from '../../compiler/graph/builders.ts';
import type { ParamStore } from '../../compiler/graph/ir.ts';
import { forward, fromVariables, predict, toVariables, trainableVariables, updateRunningStats, type BnBatchStats } from '../../compiler/nn/forward.ts';
import { prng, testRng } from './helpers.ts';

const graph = resnet({ depth: 8, width: 0.5, input: [8, 8, 1], classes: 4 });

/** Class 0/1: horizontal/vertical bar in the top-left quadrant; 2/3: the same bottom-right. */
function synthetic(seed: number, n: number): { x: Float32Array; labels: number[] } {
  const rand = prng(seed);
  const x = new Float32Array(n * 64);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % 4;
    labels.push(c);
    const off = c < 2 ? 0 : 4;
    const pos = 1 + Math.floor(rand() * 2);
    for (let p = 0; p < 64; p++) x[i * 64 + p] = (rand() - 0.5) * 0.6;
    for (let t = 0; t < 4; t++) {
      const [r, col] = c % 2 === 0 ? [off + pos, off + t] : [off + t, off + pos];
      x[i * 64 + r * 8 + col] += 2;
    }
  }
  return { x, labels };
}

function accuracy(params: ParamStore, x: Float32Array, labels: number[]): number {
  const logits = predict(graph, params, tf.tensor4d(x, [labels.length, 8, 8, 1]));
  const pred = tf.argMax(logits, 1).dataSync();
  logits.dispose();
  return labels.filter((c, i) => pred[i] === c).length / labels.length;
}

let trained: ParamStore;
const test = synthetic(99, 80);

beforeAll(async () => {
  // Training on the cpu backend is ~15× slower than wasm with the fast gradients; CATRO
  // and the equality checks below then run on the cpu backend.
  await initBackend('wasm');
  const vars = toVariables(initParams(graph, testRng(5)));
  const trainable = [...trainableVariables(vars).values()];
  const opt = tf.train.adam(0.02);
  const data = synthetic(1, 512);
  for (let step = 0; step < 48; step++) {
    const lo = (step * 32) % 512;
    let stats = new Map<string, BnBatchStats>();
    tf.tidy(() => {
      const xb = tf.tensor4d(data.x.subarray(lo * 64, (lo + 32) * 64), [32, 8, 8, 1]);
      const yb = tf.oneHot(tf.tensor1d(data.labels.slice(lo, lo + 32), 'int32'), 4);
      opt.minimize(() => {
        const out = forward(graph, vars, xb, { training: true });
        for (const s of out.bnBatchStats.values()) [tf.keep(s.mean), tf.keep(s.variance)];
        stats = out.bnBatchStats;
        return tf.losses.softmaxCrossEntropy(yb, out.logits) as tf.Scalar;
      }, false, trainable);
    });
    updateRunningStats(graph, vars, stats);
  }
  trained = await fromVariables(vars);
  for (const v of vars.values()) v.dispose();
  opt.dispose();
  await initBackend('cpu');
}, 120_000);

describe('CATRO on a trained model (tfjs cpu)', () => {
  let results: PruneResult[];
  const subsets = [[0, 1], [2, 3]];

  it('trains to high accuracy on the synthetic task', () => {
    expect(accuracy(trained, test.x, test.labels)).toBeGreaterThan(0.9);
  });

  it('keeps different channels for class subsets in different image regions', async () => {
    const calibData = synthetic(7, 64);
    results = [];
    for (const classes of subsets) {
      const idx = calibData.labels.flatMap((c, i) => (classes.includes(c) ? [i] : []));
      const x = Float32Array.from(idx.flatMap((i) => Array.from(calibData.x.subarray(i * 64, (i + 1) * 64))));
      const slots = idx.map((i) => classes.indexOf(calibData.labels[i]!));
      results.push(await catroPrune(graph, trained, { x, slots }, tfjsTapRunner, { classes, budget: { ratio: 0.5 } }));
    }
    const differing = [...results[0]!.keep.keys()].filter((id) => results[0]!.keep.get(id)!.join() !== results[1]!.keep.get(id)!.join());
    expect(differing.length).toBeGreaterThanOrEqual(1);
    // Each selection is Stage II's optimum on its subset: the other subset's channels score lower.
    subsets.forEach((classes, s) => {
      for (const r of results[s]!.spaces) expect(r.selection!.ratio).toBeGreaterThanOrEqual(r.selection!.lambdas[0]!);
    });
  });

  it('measures the same scatter through the tfjs interpreter as through the reference one', async () => {
    const calibData = synthetic(8, 24);
    const calib = { x: calibData.x, slots: calibData.labels };
    const spaces = prunableSpaces(graph, 'residual');
    const viaTfjs = await measureScatter(graph, trained, spaces, calib, 4, tfjsTapRunner, { batchSize: 10 });
    const viaReference = await measureScatter(graph, trained, spaces, calib, 4, referenceTapRunner);
    for (const s of spaces) {
      const a = viaTfjs.get(s.id)!;
      const b = viaReference.get(s.id)!;
      for (let j = 0; j < s.channels; j++) {
        expect(Math.abs(a.b[j]! - b.b[j]!)).toBeLessThanOrEqual(1e-4 * (1 + b.b[j]!));
        expect(Math.abs(a.w[j]! - b.w[j]!)).toBeLessThanOrEqual(1e-4 * (1 + b.w[j]!));
      }
    }
  });

  it('the physically pruned network gives the masked network outputs in tfjs eval mode', () => {
    const res = results[1]!;
    const x = tf.tensor4d(test.x, [80, 8, 8, 1]);
    const masked = predict(graph, maskChannels(graph, trained, res.keep), x);
    const pruned = predict(res.graph, res.params, x);
    const restricted = tf.gather(masked, [2, 3], 1);
    const diff = tf.max(tf.abs(tf.sub(restricted, pruned))).dataSync()[0]!;
    const changed = tf.max(tf.abs(tf.sub(tf.gather(predict(graph, trained, x), [2, 3], 1), pruned))).dataSync()[0]!;
    expect(diff).toBeLessThan(1e-4);
    expect(changed).toBeGreaterThan(1e-3);
    tf.dispose([x, masked, pruned, restricted]);
  });
});
