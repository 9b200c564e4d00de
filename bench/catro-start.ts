/**
 * Where each channel selection starts its fine-tuning: the pruned model right after pruning
 * (and BN re-estimation), scored against the objective the fine-tuning then minimises, on the
 * validation selection set of the compile (each image clean and under each degradation):
 * accuracy, agreement with the unpruned teacher, T²·KL(teacher ‖ student) at the tuning's
 * temperature, cross-entropy, and the recall of each class (a start that answers one class for
 * almost every image shows as one recall near 100 and the rest near 0). CATRO's better start
 * and its fading after fine-tuning (docs/catro.md) are read from here.
 *
 *   npx tsx bench/catro-start.ts --config configs/fashion-mnist.json --from models/fashion-mnist \
 *     --subtasks footwear,tops [--seeds 0,1,2] [--out bench/results/catro-start.json]
 */
import { writeFile } from 'node:fs/promises';
import { restrictClasses } from '../compiler/catro/prune.ts';
import type { Graph, ParamStore } from '../compiler/graph/ir.ts';
import { subsetClasses } from '../compiler/data/split.ts';
import { exportOnnx } from '../compiler/onnx/export.ts';
import { onnxClassifier } from '../compiler/pipeline/evaluate.ts';
import { pruneSubtask, selectionSet } from '../compiler/pipeline/subtask.ts';
import { DEGRADATION_KINDS } from '../shared/manifest.ts';
import { batchToNCHW } from '../shared/preprocess.ts';
import { engineFromArgv, optionValue } from './args.ts';
import { loadSubtaskStudy } from './subtask-study.ts';

const argv = process.argv.slice(2);
const arg = (name: string) => optionValue(argv, name);
const configFile = arg('config') ?? 'configs/fashion-mnist.json';
const fromDir = arg('from') ?? 'models/fashion-mnist';
const subtasks = (arg('subtasks') ?? 'footwear,tops').split(',');
const seeds = (arg('seeds') ?? '0,1,2').split(',').map(Number);
const outFile = arg('out') ?? 'bench/results/catro-start.json';
const engine = await engineFromArgv(argv);

function softmax(logits: Float32Array, row: number, k: number, t: number): number[] {
  const z = Array.from(logits.subarray(row * k, (row + 1) * k), (v) => v / t);
  const max = Math.max(...z);
  const e = z.map((v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}
const argmax = (p: number[]) => p.indexOf(Math.max(...p));

const results: unknown[] = [];
for (const name of subtasks) {
  const study = await loadSubtaskStudy(configFile, fromDir, name, engine);
  const { config, classes, full, splits } = study;
  if (!splits.val) throw new Error(`${configFile}: needs a validation split`);
  const val = await selectionSet(subsetClasses(splits.val, classes), DEGRADATION_KINDS, config.degradations, config.seed);
  const norm = { mean: config.dataset.mean, std: config.dataset.std };
  const x = batchToNCHW(val.images, val.count, val.height, val.width, val.channels, norm);
  const per = val.height * val.width * val.channels;
  const k = classes.length;
  const logitsOf = async (graph: Graph, params: ParamStore): Promise<Float32Array> => {
    const model = await onnxClassifier(exportOnnx(graph, params, { labels: classes.map(String), classes, ...norm }));
    try {
      const out = new Float32Array(val.count * k);
      for (let s = 0; s < val.count; s += 500) {
        const n = Math.min(500, val.count - s);
        out.set(await model.classify(x.subarray(s * per, (s + n) * per), { n, c: val.channels, h: val.height, w: val.width }), s * k);
      }
      return out;
    } finally {
      await model.close();
    }
  };
  const t = study.tuning.temperature;
  const restricted = restrictClasses(full.graph, full.params, classes);
  const teacher = await logitsOf(restricted.graph, restricted.params);
  console.log(`${name}: ${val.count} validation images (clean and each degradation), T = ${t}`);
  for (const seed of seeds) {
    const input = study.input(seed);
    const catro = await pruneSubtask(input, 'catro');
    const selections = [['catro', catro], ['l1', await pruneSubtask(input, 'l1', catro.widths.widths)], ['random', await pruneSubtask(input, 'random', catro.widths.widths)]] as const;
    const cells: string[] = [];
    for (const [selector, pruned] of selections) {
      const student = await logitsOf(pruned.graph, pruned.params);
      let kl = 0, ce = 0, correct = 0, agree = 0;
      const hits = new Array<number>(k).fill(0), counts = new Array<number>(k).fill(0);
      for (let i = 0; i < val.count; i++) {
        const pt = softmax(teacher, i, k, t);
        const ps = softmax(student, i, k, t);
        kl += pt.reduce((a, p, j) => a + (p > 0 ? p * Math.log(p / Math.max(ps[j]!, 1e-12)) : 0), 0);
        const p1 = softmax(student, i, k, 1);
        ce -= Math.log(Math.max(p1[val.labels[i]!]!, 1e-12));
        correct += argmax(p1) === val.labels[i] ? 1 : 0;
        counts[val.labels[i]!]!++;
        if (argmax(p1) === val.labels[i]) hits[val.labels[i]!]!++;
        agree += argmax(p1) === argmax(softmax(teacher, i, k, 1)) ? 1 : 0;
      }
      const recall = hits.map((h, j) => (counts[j] ? h / counts[j]! : null));
      const row = { subtask: name, seed, selector, accuracy: correct / val.count, agreement: agree / val.count, t2kl: (t * t * kl) / val.count, ce: ce / val.count, recall };
      results.push(row);
      const recalls = recall.map((r) => (r === null ? '—' : (100 * r).toFixed(0))).join('/');
      cells.push(`${selector} acc ${(100 * row.accuracy).toFixed(1)} agree ${(100 * row.agreement).toFixed(1)} T²KL ${row.t2kl.toFixed(2)} CE ${row.ce.toFixed(3)} recall ${recalls}`);
    }
    console.log(`  seed ${seed}: ${cells.join(' | ')}`);
  }
}
await writeFile(outFile, JSON.stringify({ config: configFile, from: fromDir, seeds, results, createdAt: new Date().toISOString() }, null, 1));
console.log(`wrote ${outFile}`);
