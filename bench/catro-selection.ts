/**
 * Which channels CATRO keeps, seed by seed, against L1-norm's at the same widths: per prunable
 * space, the kept set, its overlap with L1's, and the mean filter L1 norm of each kept set
 * relative to the space's mean. A diagnostic for catro-study's figures: when a seed's result
 * stands apart, this shows which layer's choice moved (the seed changes CATRO's calibration draw;
 * L1 has none). No fine-tuning, about 10 s per seed.
 *
 *   npx tsx bench/catro-selection.ts [--config configs/fashion-mnist.json] [--from models/fashion-mnist] \
 *     [--subtask tops] [--seeds 0,1,2,3,4]
 */
import { join } from 'node:path';
import { filterL1Norms } from '../compiler/catro/catro.ts';
import { prunableSpaces } from '../compiler/catro/spaces.ts';
import { loadCompileConfig, resolveSubtaskClasses, subtaskBudget } from '../compiler/pipeline/config.ts';
import { loadCompileData, trainingSplits } from '../compiler/pipeline/stages.ts';
import { pruneSubtask, type SubtaskInput } from '../compiler/pipeline/subtask.ts';
import { FULL_CKPT, FULL_GRAPH, loadFullModel, subtaskTuning } from '../compiler/pipeline/subtasks.ts';
import { initBackend } from '../compiler/tf/backend.ts';
import { optionValue } from './args.ts';
import { mean } from './stats.ts';

const arg = (name: string) => optionValue(process.argv, name);
const configFile = arg('config') ?? 'configs/fashion-mnist.json';
const fromDir = arg('from') ?? 'models/fashion-mnist';
const subtaskName = arg('subtask') ?? 'tops';
const seeds = (arg('seeds') ?? '0,1,2,3,4').split(',').map(Number);

await initBackend('wasm');
const config = await loadCompileConfig(configFile);
const subtask = config.subtasks.find((s) => s.name === subtaskName);
if (!subtask) throw new Error(`${configFile} has no subtask "${subtaskName}" (${config.subtasks.map((s) => s.name).join(', ')})`);
const data = await loadCompileData(config);
const classes = resolveSubtaskClasses(subtask, config.subtasks.indexOf(subtask), data.train.classNames, configFile);
const full = await loadFullModel(join(fromDir, FULL_GRAPH), join(fromDir, FULL_CKPT));
const splits = trainingSplits(config, data.train);
const tuning = subtaskTuning(config);
const spaces = prunableSpaces(full.graph, tuning.pruneMode);
const norms = new Map(spaces.map((s) => [s.id, filterL1Norms(full.graph, full.params, s)]));

console.log(`catro-selection: ${subtaskName}, ${fromDir}; kept channels per space, CATRO against L1 at CATRO's widths`);
for (const seed of seeds) {
  const input: SubtaskInput = {
    graph: full.graph,
    params: full.params,
    train: splits.train,
    val: splits.val,
    classes,
    budget: subtaskBudget(subtask),
    degradations: config.degradations,
    normalize: { mean: config.dataset.mean, std: config.dataset.std },
    augment: tuning.augmentation ?? config.augmentation,
    tuning,
    seed,
  };
  const catro = await pruneSubtask(input, 'catro');
  const l1 = await pruneSubtask(input, 'l1', catro.widths.widths);
  console.log(`seed ${seed}`);
  for (const s of spaces) {
    const all = Array.from({ length: s.channels }, (_, j) => j);
    const c = catro.keep.get(s.id) ?? all;
    const l = new Set(l1.keep.get(s.id) ?? all);
    const n = norms.get(s.id)!;
    const relNorm = (kept: Iterable<number>) => (mean([...kept].map((j) => n[j]!)) / mean([...n])).toFixed(2);
    console.log(
      `  ${s.id.padEnd(12)} keeps ${c.length}/${s.channels}  CATRO [${c.join(',')}]  shared with L1 ${c.filter((j) => l.has(j)).length}  filter norm / mean: CATRO ${relNorm(c)}, L1 ${relNorm(l)}`,
    );
  }
}
