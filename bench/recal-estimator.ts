/**
 * The recalibrated ModelSoups row under the two BN estimators (issue 17, goal 1): ours, the
 * population variance, against PyTorch's `momentum=None` average of batch variances, which
 * the reference run used. Same soup weights (a compile's fusion stage, `soup-copy.ckpt`),
 * same recalibration batches, same test protocol as the report.
 *
 *   npm run bench:recal-estimator -- --config configs/reference-fashion-mnist.json \
 *     --soup PATH/fusion-<hash>/soup-copy.ckpt [--out bench/results/recal-estimator.json]
 */
import { writeFileAtomic } from '../compiler/pipeline/cache.ts';
import { loadCompileConfig } from '../compiler/pipeline/config.ts';
import { evaluate, onnxClassifier } from '../compiler/pipeline/evaluate.ts';
import { recalibrateBn, type BnEstimator } from '../compiler/pipeline/fusion.ts';
import { buildGraph, loadCompileData } from '../compiler/pipeline/stages.ts';
import { recalibrationBatches, trainingSplits } from '../compiler/pipeline/training-data.ts';
import { exportOnnx } from '../compiler/onnx/export.ts';
import { readParams } from '../compiler/train/loop.ts';
import { formatPoints } from '../compiler/pipeline/accuracy.ts';
import { engineFromArgv, optionValue } from './args.ts';

const argv = process.argv.slice(2);
const configFile = optionValue(argv, 'config') ?? 'configs/reference-fashion-mnist.json';
const soupFile = optionValue(argv, 'soup');
if (!soupFile) {
  console.error('usage: npx tsx bench/recal-estimator.ts --config CONFIG --soup .../fusion-<hash>/soup-copy.ckpt [--out FILE]');
  process.exit(2);
}
const outFile = optionValue(argv, 'out');
const config = await loadCompileConfig(configFile);
const data = await loadCompileData(config);
const engine = await engineFromArgv(argv);
const graph = buildGraph(config, data.train);
const { params: soup } = readParams(soupFile);
const { recalibrationBatches: count, recalibrationBatchSize: size } = config.stages.fusion;
const splits = trainingSplits(config, data.train);
const norm = { mean: config.dataset.mean, std: config.dataset.std };

const rows: Record<string, unknown> = {};
for (const estimator of ['population', 'batch-average'] as BnEstimator[]) {
  const t0 = performance.now();
  const params = await recalibrateBn(engine, graph, soup, recalibrationBatches(splits.train, count, size, config.degradations, norm, config.seed), estimator);
  const model = await onnxClassifier(exportOnnx(graph, params, { labels: data.test.classNames, ...norm }));
  try {
    const { summary } = await evaluate(model.classify, data.test, { ranges: config.degradations, evaluation: config.evaluation, quick: false, ...norm });
    rows[estimator] = summary;
    const cells = [summary.clean, summary.jpeg, summary.blur, summary.awgn, summary.saltpepper, summary.degradedMean].map((v) => formatPoints(v));
    console.log(`| ${estimator} | ${cells.join(' | ')} | ${((performance.now() - t0) / 1000).toFixed(0)} s |`);
  } finally {
    await model.close();
  }
}
if (outFile) await writeFileAtomic(outFile, JSON.stringify({ config: configFile, soup: soupFile, rows, createdAt: new Date().toISOString() }, null, 1));
