/**
 * Which channels CATRO keeps, seed by seed, against L1-norm's at the same widths: per prunable
 * space, the kept set, its overlap with L1's, and the mean filter L1 norm of each kept set
 * relative to the space's mean, and the trace ratio of all the space's channels and of CATRO's kept
 * set (how much class signal the layer offers, and how much the selection concentrates). A
 * diagnostic for catro-study's figures: when a seed's result
 * stands apart, this shows which layer's choice moved (the seed changes CATRO's calibration draw;
 * L1 has none). No fine-tuning, about 10 s per seed.
 *
 *   npx tsx bench/catro-selection.ts [--config configs/fashion-mnist.json] [--from models/fashion-mnist] \
 *     [--subtask tops] [--seeds 0,1,2,3,4]
 */
import { filterL1Norms } from '../compiler/catro/catro.ts';
import { prunableSpaces } from '../compiler/catro/spaces.ts';
import { pruneSubtask } from '../compiler/pipeline/subtask.ts';
import { engineFromArgv, optionValue } from './args.ts';
import { mean } from './stats.ts';
import { loadSubtaskStudy } from './subtask-study.ts';

const arg = (name: string) => optionValue(process.argv, name);
const configFile = arg('config') ?? 'configs/fashion-mnist.json';
const fromDir = arg('from') ?? 'models/fashion-mnist';
const subtaskName = arg('subtask') ?? 'tops';
const seeds = (arg('seeds') ?? '0,1,2,3,4').split(',').map(Number);

const { full, tuning, input } = await loadSubtaskStudy(configFile, fromDir, subtaskName, await engineFromArgv(process.argv));
const spaces = prunableSpaces(full.graph, tuning.pruneMode);
const norms = new Map(spaces.map((s) => [s.id, filterL1Norms(full.graph, full.params, s)]));

console.log(`catro-selection: ${subtaskName}, ${fromDir}; kept channels per space, CATRO against L1 at CATRO's widths`);
for (const seed of seeds) {
  const catro = await pruneSubtask(input(seed), 'catro');
  const l1 = await pruneSubtask(input(seed), 'l1', catro.widths.widths);
  console.log(`seed ${seed}`);
  for (const s of spaces) {
    const all = Array.from({ length: s.channels }, (_, j) => j);
    const c = catro.keep.get(s.id) ?? all;
    const l = new Set(l1.keep.get(s.id) ?? all);
    const n = norms.get(s.id)!;
    const relNorm = (kept: Iterable<number>) => (mean([...kept].map((j) => n[j]!)) / mean([...n])).toFixed(2);
    const sel = catro.spaces.find((r) => r.id === s.id)?.selection;
    const ratios = sel ? `  trace ratio all ${sel.lambdas[0]!.toFixed(3)} → kept ${sel.ratio.toFixed(3)}` : '';
    console.log(
      `  ${s.id.padEnd(12)} keeps ${c.length}/${s.channels}  CATRO [${c.join(',')}]  shared with L1 ${c.filter((j) => l.has(j)).length}  filter norm / mean: CATRO ${relNorm(c)}, L1 ${relNorm(l)}${ratios}`,
    );
  }
}
