/**
 * CATRO against the class-agnostic baselines on real data: a small ResNet trained briefly
 * on Fashion-MNIST (clean; this script's own short Adam loop, cached under /tmp), then per
 * subtask at a FLOPs budget: CATRO, L1-norm and random channels (same widths), and the
 * unpruned model restricted to the subtask's classes. Accuracy on the subtask's test
 * images right after pruning and after the same short fine-tuning (cross-entropy on the
 * subtask's training images). A quick relative comparison, not the shipped recipe.
 *   npx tsx bench/catro-fmnist.ts [--steps 300] [--finetune 60] [--flops 0.25] [--method ratio|greedy] [--eps 1e-8,1] [--depth 8] [--width 1]
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { baselinePrune, catroPrune, type PruneResult, sampleCalibration } from '../compiler/catro/catro.ts';
import { restrictClasses } from '../compiler/catro/prune.ts';
import { recalibrateBatchNorm } from '../compiler/catro/recalibrate.ts';
import { tfjsTapRunner } from '../compiler/engine/tfjs/engine.ts';
import { loadDataset } from '../compiler/data/index.ts';
import { initParams, resnet } from '../compiler/graph/builders.ts';
import type { Graph, ParamStore } from '../compiler/graph/ir.ts';
import { type BnBatchStats, forward, fromVariables, predict, toVariables, trainableVariables, updateRunningStats } from '../compiler/nn/forward.ts';
import { initBackend } from '../compiler/tf/backend.ts';
import { Rng } from '../shared/rng.ts';
import { optionValue } from './args.ts';

const arg = (name: string, fallback: string) => optionValue(process.argv, name) ?? fallback;
const steps = Number(arg('steps', '300'));
const finetuneSteps = Number(arg('finetune', '60'));
const flops = Number(arg('flops', '0.25'));
const method = arg('method', 'ratio') as 'ratio' | 'greedy';
const epsilons = arg('eps', '1e-8').split(',').map(Number);
const depth = Number(arg('depth', '8'));
const width = Number(arg('width', '1'));
const testPerClass = Number(arg('test-per-class', '200'));
const SUBTASKS: Record<string, number[]> = { tops: [0, 2, 4, 6], footwear: [5, 7, 9], trouser_dress_bag: [1, 3, 8] };
const MEAN = 0.286;
const STD = 0.353;

await initBackend('wasm');
const train = await loadDataset({ name: 'fashion-mnist', split: 'train' });
const test = await loadDataset({ name: 'fashion-mnist', split: 'test' });
const px = 28 * 28;
const toInput = (d: typeof train, idx: number[]) => {
  const x = new Float32Array(idx.length * px);
  idx.forEach((i, k) => {
    for (let p = 0; p < px; p++) x[k * px + p] = (d.images[i * px + p]! / 255 - MEAN) / STD;
  });
  return x;
};
const graph = resnet({ depth, width, input: [28, 28, 1], classes: 10 });

async function fit(g: Graph, params: ParamStore, indices: number[], labelOf: (i: number) => number, classes: number, nSteps: number, lr: number, seed: number): Promise<ParamStore> {
  const rng = new Rng(seed);
  const vars = toVariables(params);
  const opt = tf.train.adam(lr);
  const trainable = [...trainableVariables(vars).values()];
  for (let s = 0; s < nSteps; s++) {
    const batch = Array.from({ length: 64 }, () => indices[rng.int(0, indices.length - 1)]!);
    let stats = new Map<string, BnBatchStats>();
    tf.tidy(() => {
      const xb = tf.tensor4d(toInput(train, batch), [64, 28, 28, 1]);
      const yb = tf.oneHot(tf.tensor1d(batch.map(labelOf), 'int32'), classes);
      opt.minimize(() => {
        const out = forward(g, vars, xb, { training: true });
        for (const st of out.bnBatchStats.values()) [tf.keep(st.mean), tf.keep(st.variance)];
        stats = out.bnBatchStats;
        return tf.losses.softmaxCrossEntropy(yb, out.logits) as tf.Scalar;
      }, false, trainable);
    });
    updateRunningStats(g, vars, stats);
  }
  const out = await fromVariables(vars);
  for (const v of vars.values()) v.dispose();
  opt.dispose();
  return out;
}

function accuracy(g: Graph, params: ParamStore, idx: number[], labelOf: (i: number) => number): number {
  let correct = 0;
  for (let lo = 0; lo < idx.length; lo += 256) {
    const part = idx.slice(lo, lo + 256);
    const logits = predict(g, params, tf.tensor4d(toInput(test, part), [part.length, 28, 28, 1]));
    const pred = tf.argMax(logits, 1).dataSync();
    logits.dispose();
    part.forEach((i, k) => (correct += pred[k] === labelOf(i) ? 1 : 0));
  }
  return correct / idx.length;
}

// Base model, cached by its recipe.
const cache = `/tmp/facet-catro-fmnist-r${depth}w${width}-s${steps}.json`;
let base: ParamStore;
const t0 = performance.now();
if (existsSync(cache)) {
  const raw = JSON.parse(readFileSync(cache, 'utf8')) as [string, { shape: number[]; data: number[] }][];
  base = new Map(raw.map(([k, t]) => [k, { shape: t.shape, data: Float32Array.from(t.data) }]));
} else {
  const all = Array.from({ length: train.count }, (_, i) => i);
  base = await fit(graph, initParams(graph, new Rng(1)), all, (i) => train.labels[i]!, 10, steps, 0.003, 2);
  const tmp = `${cache}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  writeSync(fd, JSON.stringify([...base].map(([k, t]) => [k, { shape: t.shape, data: Array.from(t.data) }])));
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, cache);
}
const trainSeconds = (performance.now() - t0) / 1000;
const testIdxAll = (classes: number[]) => {
  const out: number[] = [];
  const seen = new Map<number, number>();
  for (let i = 0; i < test.count; i++) {
    const c = test.labels[i]!;
    if (classes.includes(c) && (seen.get(c) ?? 0) < testPerClass) {
      out.push(i);
      seen.set(c, (seen.get(c) ?? 0) + 1);
    }
  }
  return out;
};
const fullAcc = accuracy(graph, base, testIdxAll([...Array(10).keys()]), (i) => test.labels[i]!);
console.log(`base ResNet-${depth} w${width}: ${steps} steps (${trainSeconds.toFixed(0)} s incl. cache), 10-class test accuracy ${(100 * fullAcc).toFixed(1)}%`);

const rows: Record<string, unknown>[] = [];
for (const [name, classes] of Object.entries(SUBTASKS)) {
  const slotOfTest = (i: number) => classes.indexOf(test.labels[i]!);
  const slotOfTrain = (i: number) => classes.indexOf(train.labels[i]!);
  const testIdx = testIdxAll(classes);
  const trainIdx = Array.from({ length: train.count }, (_, i) => i).filter((i) => classes.includes(train.labels[i]!));
  const { indices, slots } = sampleCalibration(train.labels, classes, 50, new Rng(3));
  const t1 = performance.now();
  const calib = { x: toInput(train, indices), slots };
  const catro = await catroPrune(graph, base, calib, tfjsTapRunner, { classes, budget: { flops, method }, wEpsilon: epsilons[0] });
  const catroSeconds = (performance.now() - t1) / 1000;
  const variants: [string, PruneResult][] = [];
  for (const eps of epsilons.slice(1)) {
    variants.push([`catro-eps${eps}`, await catroPrune(graph, base, calib, tfjsTapRunner, { classes, budget: { flops, method }, wEpsilon: eps })]);
  }
  const restricted = restrictClasses(graph, base, classes);
  const candidates: [string, PruneResult | Omit<PruneResult, 'widths'>][] = [
    ['catro', catro],
    ...variants,
    ['l1', baselinePrune(graph, base, catro.widths.widths, { classes, selector: 'l1' })],
    ...[1, 2, 3].map((s) => [`random${s}`, baselinePrune(graph, base, catro.widths.widths, { classes, selector: 'random', rng: new Rng(100 + s) })] as [string, Omit<PruneResult, 'widths'>]),
  ];
  const row: Record<string, unknown> = {
    subtask: name,
    classes,
    unprunedRestricted: accuracy(restricted.graph, restricted.params, testIdx, slotOfTest),
    macs: catro.macs,
    catroSeconds,
  };
  // BN re-estimation on other training images of the subtask (100 per class).
  const recalSample = sampleCalibration(train.labels, classes, 100, new Rng(4)).indices;
  const recalX = toInput(train, recalSample);
  for (const [label, r] of candidates) {
    const before = accuracy(r.graph, r.params, testIdx, slotOfTest);
    const recal = await recalibrateBatchNorm(r.graph, r.params, recalX, recalSample.length, tfjsTapRunner);
    const beforeRecal = accuracy(r.graph, recal, testIdx, slotOfTest);
    const tuned = finetuneSteps > 0 ? await fit(r.graph, recal, trainIdx, slotOfTrain, classes.length, finetuneSteps, 0.001, 7) : recal;
    const after = accuracy(r.graph, tuned, testIdx, slotOfTest);
    row[label] = { before, beforeRecal, after };
  }
  rows.push(row);
  const pct = (v: number) => (100 * v).toFixed(1);
  const cell = (l: string) => {
    const v = row[l] as { before: number; beforeRecal: number; after: number };
    return `${pct(v.before)}/${pct(v.beforeRecal)}/${pct(v.after)}`;
  };
  console.log(
    `${name} [${classes}] MACs ${(catro.macs.full / 1e6).toFixed(2)}M → ${(catro.macs.pruned / 1e6).toFixed(2)}M (catro ${catroSeconds.toFixed(1)} s); ` +
      `unpruned-restricted ${pct(row.unprunedRestricted as number)} | catro ${cell('catro')}${variants.map(([l]) => ` | ${l} ${cell(l)}`).join('')} | l1 ${cell('l1')} | random ${cell('random1')}, ${cell('random2')}, ${cell('random3')}`,
  );
}

mkdirSync('bench/results', { recursive: true });
const path = 'bench/results/catro-fmnist.json';
const tmp = `${path}.tmp-${process.pid}`;
const fd = openSync(tmp, 'w');
writeSync(fd, JSON.stringify({ date: new Date().toISOString(), depth, width, steps, finetuneSteps, flops, method, epsilons, fullAccuracy: fullAcc, rows }, null, 2) + '\n');
fsyncSync(fd);
closeSync(fd);
renameSync(tmp, path);
