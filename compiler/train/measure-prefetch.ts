/**
 * Measures the two batch-prefetch modes side by side on the FusionDistill workload
 * (ResNet-20 on Fashion-MNIST, every batch split over the four degradations, flip +
 * pad-4 crop + Cutout 14, a frozen teacher distilled from on the clean copy) and prints
 * step time, images/s and the share of step time the trainer spent on data.
 *
 *   npx tsx compiler/train/measure-prefetch.ts [--engine ort|tfjs] [--threads N] [--replicas N] [--provider P] [--backend B] [--steps 6] [--batch 128] [--width 1]
 */
import { parseArgs } from 'node:util';
import { Rng } from '../../shared/rng.ts';
import { loadDataset } from '../data/registry.ts';
import { take } from '../data/split.ts';
import { buildGraph } from '../graph/arch.ts';
import { initParams } from '../graph/builders.ts';
import { engineOptions, ENGINE_FLAGS } from '../cli/engine-flags.ts';
import { createEngine } from '../engine/index.ts';
import { epochOrder, prepareBatch, loadDegrader, type BatchRecipe } from './batches.ts';
import { DATASET_TRAINING_DEFAULTS } from './defaults.ts';
import { train } from './loop.ts';
import type { PrefetchMode } from './pipeline.ts';

const { values } = parseArgs({
  options: { ...ENGINE_FLAGS, steps: { type: 'string' }, batch: { type: 'string' }, width: { type: 'string' } },
});
const engine = await createEngine(engineOptions(values));
const steps = Number(values.steps ?? 6);
const batchSize = Number(values.batch ?? 128);
const width = Number(values.width ?? 1);
const { mean, std } = DATASET_TRAINING_DEFAULTS['fashion-mnist'];
const data = take(await loadDataset({ name: 'fashion-mnist', split: 'train' }), batchSize * (steps + 1), 0);
const graph = buildGraph({ arch: 'resnet20', width, input: [28, 28, 1], classes: 10, head: 'pool2x2' });
const recipe: BatchRecipe = {
  augment: { flip: true, pad: 4, cutout: 14 },
  degrade: { kinds: ['jpeg', 'blur', 'awgn', 'saltpepper'] },
  keepClean: true,
  mean,
  std,
};

// Preparation alone, on this thread: what one batch costs wherever it runs.
const degrader = await loadDegrader();
const order = epochOrder(data.count, 1);
const prepTimes: number[] = [];
for (let b = 0; b < 3; b++) prepTimes.push(prepareBatch(data, order.subarray(b * batchSize, (b + 1) * batchSize), b, 1, recipe, degrader).prepMs);

const params = initParams(graph, new Rng(0));
const run = (mode: PrefetchMode, set: typeof data) =>
  train({
    graph,
    params,
    train: set,
    epochs: 1,
    batchSize,
    optimizer: { kind: 'radam', weightDecay: 1e-4 },
    schedule: { kind: 'constant', lr: 1e-3 },
    augment: recipe.augment,
    degrade: recipe.degrade,
    objective: { ce: 1, distill: { weight: 1, temperature: 4, groups: 1 } },
    teachers: { models: [{ graph, params }], input: 'clean' },
    normalize: { mean, std },
    engine,
    seed: 0,
    prefetch: mode,
  });
// Warm-up, so the first mode measured does not pay for compiling the backend's kernels.
await run('inline', take(data, 2 * batchSize, 1));
const rows = [];
for (const mode of ['inline', 'worker'] as PrefetchMode[]) {
  const s = (await run(mode, data)).stats;
  rows.push({ mode, steps: s.steps, stepMs: (1000 * s.seconds) / s.steps, imagesPerSecond: s.imagesPerSecond, dataShare: s.dataShare, prepMsPerBatch: s.prepMsPerBatch });
}

console.log(`${engine.description}, resnet20-w${width} 28×28×1, batch ${batchSize} (4 degradations × ${batchSize / 4}), ${steps + 1} steps per mode`);
console.log(`batch preparation alone: ${prepTimes.map((t) => t.toFixed(0)).join(', ')} ms`);
console.log('mode     step ms   img/s   data share   prep ms/batch');
for (const r of rows) {
  console.log(`${r.mode.padEnd(8)} ${r.stepMs.toFixed(0).padStart(7)} ${r.imagesPerSecond.toFixed(1).padStart(7)} ${(100 * r.dataShare).toFixed(1).padStart(10)}% ${r.prepMsPerBatch.toFixed(0).padStart(13)}`);
}
console.log(JSON.stringify({ engine: engine.description, batchSize, width, prepMs: prepTimes, rows }));
