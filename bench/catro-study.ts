/**
 * CATRO against L1-norm and random channels on one subtask of a compile config, over several
 * seeds, with the compile's own pruning and fine-tuning code (compiler/pipeline/subtask.ts).
 * The full model comes from a published folder (`--from`, full.ckpt + full.graph.json), so no
 * stage cache is needed.
 *
 * Two kinds of figures, kept apart on purpose:
 * - validation (the compile's held-out split of the training images, each image clean and
 *   under each of the four degradations, as the fine-tuning selects its epoch): what choices
 *   of CATRO options may be made on;
 * - test (the compile's evaluation in onnxruntime-node on the subtask's test images): what
 *   the report quotes. Never used to choose anything.
 * "mean5" = (clean + 4 × mean over the degradations) / 5, as in the compile's report.
 *
 *   npx tsx bench/catro-study.ts --config configs/fashion-mnist.json --from models/fashion-mnist \
 *     --subtask tops [--seeds 0,1,2] [--variants "catro;catro:pooling=gap;l1;random"] \
 *     [--flops 0.5,0.25,0.1] [--no-finetune] [--no-test] [--out bench/results/catro-study-tops.json]
 *     [--engine ort|tfjs] [--threads N] [--provider P] [--replicas N] [--backend B]   (as facet compile)
 *
 * A variant is a selector (catro, l1, random) with optional subtaskTuning overrides after a
 * colon (`catro:wEpsilon=1e-8,pooling=gap,calibrationPerClass=200`). The baselines use the
 * widths of the seed's first CATRO variant at the same budget, as the compile does. `--flops`
 * sweeps MACs budgets (fractions of the full model's; default: the subtask's own). The output is
 * rewritten after every run (`complete: false` until the last), so a killed study keeps its runs.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { PruneResult, Selector } from '../compiler/catro/catro.ts';
import { restrictClasses } from '../compiler/catro/prune.ts';
import { subsetClasses } from '../compiler/data/split.ts';
import type { Graph, ParamStore } from '../compiler/graph/ir.ts';
import { exportOnnx } from '../compiler/onnx/export.ts';
import { formatPoints } from '../compiler/pipeline/accuracy.ts';
import { describeBudget, subtaskBudget, type SubtaskBudget } from '../compiler/pipeline/config.ts';
import { writeFileAtomic } from '../compiler/pipeline/cache.ts';
import { evaluate as evaluateOnnx, onnxClassifier, type EvalSummary } from '../compiler/pipeline/evaluate.ts';
import { fineTuneSubtask, pruneSubtask, selectionSet, type SubtaskTuning } from '../compiler/pipeline/subtask.ts';
import { evaluateWith } from '../compiler/train/loop.ts';
import { DEGRADATION_KINDS } from '../shared/manifest.ts';
import { engineFromArgv, optionValue } from './args.ts';
import { mean, sampleSd } from './stats.ts';
import { loadSubtaskStudy } from './subtask-study.ts';

const argv = process.argv.slice(2);
const arg = (name: string) => optionValue(argv, name);
const configFile = arg('config') ?? 'configs/fashion-mnist.json';
const fromDir = arg('from') ?? 'models/fashion-mnist';
const subtaskName = arg('subtask') ?? 'tops';
const seeds = (arg('seeds') ?? '0').split(',').map(Number);
const variants = (arg('variants') ?? 'catro;l1;random').split(';').filter(Boolean);
const fineTune = !argv.includes('--no-finetune');
const withTest = !argv.includes('--no-test');
const outFile = arg('out') ?? `bench/results/catro-study-${subtaskName}.json`;

interface Variant {
  name: string;
  selector: Selector;
  overrides: Partial<SubtaskTuning>;
}

function parseVariant(spec: string): Variant {
  const [selector, rest] = spec.split(':') as [string, string | undefined];
  if (!['catro', 'l1', 'random'].includes(selector)) throw new Error(`--variants: unknown selector "${selector}" in "${spec}" (catro, l1, random)`);
  const overrides: Record<string, unknown> = {};
  for (const kv of rest ? rest.split(',') : []) {
    const [k, v] = kv.split('=') as [string, string | undefined];
    if (v === undefined) throw new Error(`--variants: "${kv}" in "${spec}" is not key=value`);
    overrides[k] = /^-?[\d.e+-]+$/i.test(v) ? Number(v) : v;
  }
  return { name: spec, selector: selector as Selector, overrides: overrides as Partial<SubtaskTuning> };
}

const parsed = variants.map(parseVariant);
if (!parsed.some((v) => v.selector === 'catro') && parsed.some((v) => v.selector !== 'catro')) throw new Error('--variants: the baselines need a catro variant for their widths');

const engine = await engineFromArgv(argv);
const study = await loadSubtaskStudy(configFile, fromDir, subtaskName, engine);
const { config, subtask, data, classes, labels, full, splits } = study;
if (!splits.val) throw new Error(`${configFile}: the study needs a validation split (dataset.validation > 0)`);
const normalize = { mean: config.dataset.mean, std: config.dataset.std };
const budgets: SubtaskBudget[] = arg('flops')?.split(',').map((f) => ({ flops: Number(f) })) ?? [subtaskBudget(subtask)];

// Validation as the fine-tuning selects on it: each image clean and under each degradation.
const valSub = subsetClasses(splits.val, classes);
const valSelection = await selectionSet(valSub, DEGRADATION_KINDS, config.degradations, config.seed);
const testSub = subsetClasses(data.test, classes);

interface Scores {
  val: { clean: number; degraded: number; mean5: number };
  test?: EvalSummary & { mean5: number };
}

async function scores(graph: Graph, params: ParamStore): Promise<Scores> {
  const clean = (await evaluateWith(engine, graph, params, valSub, normalize)).accuracy;
  const mean5 = (await evaluateWith(engine, graph, params, valSelection, normalize)).accuracy;
  const out: Scores = { val: { clean, degraded: (5 * mean5 - clean) / 4, mean5 } };
  if (withTest) {
    const model = await onnxClassifier(exportOnnx(graph, params, { labels, classes, mean: normalize.mean, std: normalize.std }));
    try {
      const { summary } = await evaluateOnnx(model.classify, testSub, { ranges: config.degradations, evaluation: config.evaluation, quick: false, mean: normalize.mean, std: normalize.std });
      out.test = { ...summary, mean5: ((summary.clean ?? 0) + 4 * (summary.degradedMean ?? 0)) / 5 };
    } finally {
      await model.close();
    }
  }
  return out;
}

interface Row {
  seed: number;
  /** The budget in words (describeBudget); `flops` as well when it is a MACs target. */
  budget: string;
  flops?: number;
  variant: string;
  macs: number;
  before: Scores;
  after?: Scores & { bestEpoch: number | null };
  seconds: number;
}

const rows: Row[] = [];
// Mean ± sample std over seeds per variant.
const stat = (xs: number[]) => ({ mean: mean(xs), sd: sampleSd(xs), n: xs.length });
const fmt = (s: { mean: number; sd: number; n: number } | undefined) => (s ? `${(100 * s.mean).toFixed(1)} ± ${(100 * s.sd).toFixed(1)}` : '—');
const summarize = () => budgets.flatMap((budget) => parsed.map((v) => {
  const rs = rows.filter((r) => r.variant === v.name && r.budget === describeBudget(budget));
  const pick = (f: (r: Row) => number | undefined) => {
    const xs = rs.map(f).filter((x): x is number => x !== undefined);
    return xs.length ? stat(xs) : undefined;
  };
  return {
    variant: v.name,
    budget: describeBudget(budget),
    macs: rs[0]?.macs,
    valBefore: pick((r) => r.before.val.mean5),
    valAfter: pick((r) => r.after?.val.mean5),
    testBefore: pick((r) => r.before.test?.mean5),
    testAfter: pick((r) => r.after?.test?.mean5),
  };
}));

/** Write the rows so far (`complete: false` until the last run), atomically. */
async function save(complete: boolean) {
  if (!existsSync(dirname(outFile))) mkdirSync(dirname(outFile), { recursive: true });
  await writeFileAtomic(outFile, JSON.stringify({ subtask: subtaskName, classes: labels, config: configFile, from: fromDir, seeds, fineTune, complete, unpruned, rows, summary: summarize(), createdAt: new Date().toISOString() }, null, 1));
}

const pct = formatPoints;
console.log(`catro-study: ${subtaskName} (${labels.join(', ')}), ${configFile}, full model ${fromDir}, seeds ${seeds.join(',')}, ${fineTune ? `fine-tuned ${study.tuning.epochs} epochs unless a variant sets epochs` : 'no fine-tuning'}`);
/** The unpruned model restricted to the subtask's classes: the reference of the "≥ unpruned − 0.5" goal, on validation as well as test. */
const restricted = restrictClasses(full.graph, full.params, classes);
const unpruned = await scores(restricted.graph, restricted.params);
console.log(`unpruned, restricted to the subtask: val mean5 ${pct(unpruned.val.mean5)}  test mean5 ${pct(unpruned.test?.mean5)}`);
for (const [budget, seed] of budgets.flatMap((b) => seeds.map((s) => [b, s] as const))) {
  let widths: ReadonlyMap<string, number> | undefined;
  for (const v of parsed) {
    const t0 = performance.now();
    const input = study.input(seed, { budget, overrides: v.overrides });
    let pruned: PruneResult;
    if (v.selector === 'catro') {
      pruned = await pruneSubtask(input, 'catro');
      widths ??= pruned.widths.widths;
    } else {
      pruned = await pruneSubtask(input, v.selector, widths);
    }
    const row: Row = { seed, budget: describeBudget(budget), ...('flops' in budget ? { flops: budget.flops } : {}), variant: v.name, macs: pruned.macs.pruned, before: await scores(pruned.graph, pruned.params), seconds: 0 };
    if (fineTune) {
      const tuned = await fineTuneSubtask(input, pruned);
      const params = tuned.best?.params ?? tuned.params;
      row.after = { ...(await scores(pruned.graph, params)), bestEpoch: tuned.best?.epoch ?? null };
    }
    row.seconds = (performance.now() - t0) / 1000;
    rows.push(row);
    // Each run takes minutes: keep what is done on disk, so a killed study loses one run at most.
    await save(false);
    console.log(
      `${row.budget}, seed ${seed} ${v.name.padEnd(28)} MACs ${row.macs}  val mean5 ${pct(row.before.val.mean5)} → ${pct(row.after?.val.mean5)}  test mean5 ${pct(row.before.test?.mean5)} → ${pct(row.after?.test?.mean5)}  (${row.seconds.toFixed(0)} s)`,
    );
  }
}

const summary = summarize();
console.log(`\n| ${subtaskName}: variant | MACs | val mean5 before FT | val mean5 after FT | test mean5 before FT | test mean5 after FT |\n|---|---|---|---|---|---|`);
for (const s of summary) console.log(`| ${s.variant} | ${s.macs ?? '—'} (${s.budget}) | ${fmt(s.valBefore)} | ${fmt(s.valAfter)} | ${fmt(s.testBefore)} | ${fmt(s.testAfter)} |`);
console.log(`| unpruned, restricted | full | ${pct(unpruned.val.mean5)} | | ${pct(unpruned.test?.mean5)} | |`);
console.log(`(mean ± std over ${seeds.length} seed(s); choose on the validation columns only)`);

await save(true);
console.log(`wrote ${outFile}`);
