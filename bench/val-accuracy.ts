/**
 * Validation accuracy of model checkpoints (a compile stage's params.ckpt, or a published
 * full.ckpt): on the config's held-out validation split, clean, and on the degraded copy the
 * training stages log as "val acc" (each image under one degradation at a random level).
 * For choosing a budget on validation, never on test. Each model is exported to ONNX and run
 * in onnxruntime-node, as the evaluation runs it.
 *
 *   npm run bench:val-accuracy -- --config configs/fashion-mnist.json CKPT [CKPT…]
 */
import { parseArgs } from 'node:util';
import type { LabelledImages } from '../compiler/data/types.ts';
import { exportOnnx } from '../compiler/onnx/export.ts';
import { loadCompileConfig } from '../compiler/pipeline/config.ts';
import { type Classifier, evaluate, onnxClassifier } from '../compiler/pipeline/evaluate.ts';
import { buildGraph, loadCompileData } from '../compiler/pipeline/stages.ts';
import { degradedCopy, trainingSplits } from '../compiler/pipeline/training-data.ts';
import { readCheckpoint } from '../compiler/train/checkpoint.ts';
import { DEGRADATION_KINDS } from '../shared/manifest.ts';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { config: { type: 'string', default: 'configs/fashion-mnist.json' } } });
if (positionals.length === 0) {
  console.error('usage: npm run bench:val-accuracy -- --config CONFIG CKPT [CKPT…]');
  process.exit(2);
}
const config = await loadCompileConfig(values.config!);
const data = await loadCompileData(config);
const { val } = trainingSplits(config, data.train);
if (!val) {
  console.error(`bench:val-accuracy: ${values.config} holds out no validation split (dataset.validation is 0)`);
  process.exit(1);
}
const degraded = degradedCopy(val, DEGRADATION_KINDS, config.degradations, config.seed);
const graph = buildGraph(config, data.train);

/** Clean accuracy on the whole of `set` by the evaluation protocol's own batch loop. */
async function accuracy(classify: Classifier, set: LabelledImages): Promise<number> {
  const evaluation = { ...config.evaluation, samples: undefined };
  const result = await evaluate(classify, set, { ranges: config.degradations, evaluation, quick: false, kinds: [], clean: true, mean: config.dataset.mean, std: config.dataset.std });
  return result.summary.clean!;
}

console.log(`| checkpoint | val clean | val degraded copy |\n|---|---|---|`);
for (const file of positionals) {
  let params;
  try {
    params = readCheckpoint(file).tensors;
  } catch (err) {
    console.error(`bench:val-accuracy: cannot read ${file}: ${(err as Error).message}`);
    process.exit(1);
  }
  const model = await onnxClassifier(exportOnnx(graph, params, { labels: data.train.classNames, mean: config.dataset.mean, std: config.dataset.std }));
  try {
    console.log(`| ${file} | ${(100 * (await accuracy(model.classify, val))).toFixed(2)} | ${(100 * (await accuracy(model.classify, degraded))).toFixed(2)} |`);
  } finally {
    await model.close();
  }
}
console.log(`\n${val.count} validation images (${values.config}).`);
