/**
 * Subtask stages of `facet compile`: after FusionDistill, one cached stage per subtask
 * (CATRO prune → fine-tune → export → evaluate in onnxruntime-node), then the subtask
 * models are merged into the output manifest.
 *
 * They run after the FusionDistill stage graph instead of inside it on purpose: their cache
 * keys hold the full model's checksum, not the stage graph, so a subtask can also be
 * compiled from a published full model (`--from models/fashion-mnist`: full.ckpt and
 * full.graph.json beside the manifest) without the cache of stages 1–4, and adding one
 * subtask never touches the others.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { widthsForRatios } from '../catro/budget.ts';
import type { PruneResult } from '../catro/catro.ts';
import { prunableSpaces } from '../catro/spaces.ts';
import { gather, subsetClasses } from '../data/split.ts';
import type { CompileData, LabelledImages } from '../data/types.ts';
import { parseGraphJson } from '../graph/arch.ts';
import type { Engine } from '../engine/types.ts';
import type { Graph, ParamStore } from '../graph/ir.ts';
import { exportOnnx } from '../onnx/export.ts';
import { readParams, writeParams } from '../train/loop.ts';
import type { ProgressReporter } from '../train/progress.ts';
import { formatPoints, meanCleanAndDegraded } from './accuracy.ts';
import { runStage, sha256File, writeFileAtomic, type StageResult } from './cache.ts';
import { codeVersion } from './code.ts';
import { describeBudget, resolveSubtaskClasses, subtaskBudget, type CompileConfig, type SubtaskBudget, type SubtaskConfig } from './config.ts';
import { evaluateAll, onnxClassifier, type EvalSummary } from './evaluate.ts';
import { DEFAULT_SUBTASK_TUNING, fineTuneSubtask, pruneSubtask, restrictedFull, type SubtaskInput, type SubtaskTuning } from './subtask.ts';
import { trainingSplits } from './training-data.ts';

/** Files a published full model leaves beside the manifest, for `--from`. */
export const FULL_CKPT = 'full.ckpt';
export const FULL_GRAPH = 'full.graph.json';

export interface FullModel {
  graph: Graph;
  params: ParamStore;
  /** sha256 of the parameter file: the subtask stages' input checksum. */
  sha256: string;
  file: string;
}

export async function loadFullModel(graphFile: string, paramsFile: string): Promise<FullModel> {
  const graph = parseGraphJson(await readFile(graphFile, 'utf8'), graphFile);
  const { params } = readParams(paramsFile);
  return { graph, params, sha256: await sha256File(paramsFile), file: paramsFile };
}

/** One accuracy summary per evaluated variant of a subtask model. */
export interface SubtaskOutcome {
  name: string;
  classes: number[];
  labels: string[];
  macs: { full: number; pruned: number };
  params: { full: number; pruned: number };
  /** With --baselines: the unpruned model with its classifier restricted to the subtask (reference row). */
  restricted?: EvalSummary;
  /** `before` (the pruned model before fine-tuning) only with --baselines. */
  catro: { before?: EvalSummary; after: EvalSummary };
  /** With --baselines: L1-norm and random channels at CATRO's widths, same fine-tuning. */
  l1?: { before: EvalSummary; after: EvalSummary };
  random?: { before: EvalSummary; after: EvalSummary };
  seconds: { prune: number; fineTune: number; evaluate?: number; total: number };
}

export interface SubtaskRunOptions {
  config: CompileConfig;
  data: CompileData;
  full: FullModel;
  cacheDir: string;
  baselines: boolean;
  quick: boolean;
  progress?: () => ProgressReporter;
  log: (line: string) => void;
  engine: Engine;
}

/**
 * The examples of `train` whose image and label are not in `held` (the validation split):
 * every training image a subtask may learn from. By content, because the split is a copy;
 * a training image that happens to equal a validation image is left out too.
 */
export function withoutExamplesOf(train: LabelledImages, held: LabelledImages | undefined): LabelledImages {
  if (!held) return train;
  const px = train.height * train.width * train.channels;
  const key = (d: LabelledImages, i: number) => createHash('sha1').update(d.images.subarray(i * px, (i + 1) * px)).update(String(d.labels[i])).digest('base64');
  const heldKeys = new Set(Array.from({ length: held.count }, (_, i) => key(held, i)));
  const keep: number[] = [];
  for (let i = 0; i < train.count; i++) if (!heldKeys.has(key(train, i))) keep.push(i);
  return gather(train, keep);
}

/** Tuning from the config's `subtaskTuning` over the defaults. */
export function subtaskTuning(config: CompileConfig): SubtaskTuning {
  return { ...DEFAULT_SUBTASK_TUNING, ...(config.subtaskTuning ?? {}) };
}

/**
 * What the compile prunes and fine-tunes for one subtask of a config: the full model, the
 * training images (the compile's split, or with `trainImages: 'all'` every one outside
 * validation), the validation split, the budget and the tuning. The studies in bench/ build
 * theirs here too, so that they run what the compile runs; they may vary the seed, the budget
 * and the tuning.
 */
export function subtaskInput(o: {
  config: CompileConfig;
  /** Every training image of the data set (what `trainImages: 'all'` draws from). */
  allTrain: LabelledImages;
  splits: { train: LabelledImages; val?: LabelledImages };
  full: Pick<FullModel, 'graph' | 'params'>;
  subtask: SubtaskConfig;
  classes: number[];
  tuning: SubtaskTuning;
  seed?: number;
  budget?: SubtaskBudget;
  engine: Engine;
}): SubtaskInput {
  const { config, splits, tuning } = o;
  return {
    graph: o.full.graph,
    params: o.full.params,
    train: tuning.trainImages === 'all' ? withoutExamplesOf(o.allTrain, splits.val) : splits.train,
    val: splits.val,
    classes: o.classes,
    budget: o.budget ?? subtaskBudget(o.subtask),
    degradations: config.degradations,
    normalize: { mean: config.dataset.mean, std: config.dataset.std },
    augment: tuning.augmentation ?? config.augmentation,
    tuning,
    seed: o.seed ?? config.seed,
    engine: o.engine,
  };
}

/** Runs (or takes from the cache) every subtask stage of the config. */
export async function runSubtasks(opts: SubtaskRunOptions): Promise<Map<string, StageResult>> {
  const { config, data, full } = opts;
  const tuning = subtaskTuning(config);
  // Layer names in keep ratios are checked against the model before any subtask runs, so a
  // misspelt one fails in a second rather than after the subtasks before it.
  const spaces = prunableSpaces(full.graph, tuning.pruneMode);
  for (const subtask of config.subtasks) {
    const budget = subtaskBudget(subtask);
    if ('keep' in budget && typeof budget.keep !== 'number') {
      try {
        widthsForRatios(spaces, new Map(Object.entries(budget.keep)));
      } catch (err) {
        throw new Error(`subtask "${subtask.name}": ${(err as Error).message}`);
      }
    }
  }
  const results = new Map<string, StageResult>();
  for (const [i, subtask] of config.subtasks.entries()) {
    const classes = resolveSubtaskClasses(subtask, i, data.train.classNames);
    const { trainLimit, validation, mean, std } = config.dataset;
    const key = {
      name: `subtask-${subtask.name}`,
      config: { classes, budget: subtaskBudget(subtask), tuning, seed: config.seed, data: { trainLimit: trainLimit ?? null, validation, mean, std }, augmentation: config.augmentation, degradations: config.degradations, evaluation: { ...config.evaluation, batchSize: undefined, quick: opts.quick ? config.evaluation.quick : null }, baselines: opts.baselines },
      inputs: { full: full.sha256, 'data:train': data.checksums.train, 'data:test': data.checksums.test },
      code: await codeVersion('subtask', opts.engine),
    };
    const result = await runStage(opts.cacheDir, key, async ({ outDir, workDir }) => {
      opts.log(`[subtask-${subtask.name}] running`);
      return compileSubtask({ ...opts, subtask, classes, tuning, outDir, workDir, log: (l) => opts.log(`[subtask-${subtask.name}] ${l}`) });
    });
    if (result.cached) opts.log(`[subtask-${subtask.name}] cached (${result.hash})`);
    results.set(subtask.name, result);
  }
  return results;
}

interface CompileSubtaskOptions extends SubtaskRunOptions {
  subtask: SubtaskConfig;
  classes: number[];
  tuning: SubtaskTuning;
  outDir: string;
  workDir: string;
}

async function compileSubtask(o: CompileSubtaskOptions): Promise<SubtaskOutcome> {
  const t0 = performance.now();
  const { config, data, full } = o;
  const splits = trainingSplits(config, data.train);
  const input = subtaskInput({ config, allTrain: data.train, splits, full, subtask: o.subtask, classes: o.classes, tuning: o.tuning, engine: o.engine });
  const test = subsetClasses(data.test, o.classes);
  const labels = o.classes.map((c) => data.test.classNames[c]!);
  const exported = (m: { graph: Graph; params: ParamStore }) => exportOnnx(m.graph, m.params, { labels, classes: o.classes, mean: config.dataset.mean, std: config.dataset.std });
  const pct = (s: EvalSummary) => `clean ${formatPoints(s.clean)}%, degraded mean ${formatPoints(s.degradedMean)}%`;

  const tPrune = performance.now();
  const catro = await pruneSubtask(input, 'catro');
  const pruneSeconds = (performance.now() - tPrune) / 1000;
  o.log(`CATRO kept ${catro.macs.pruned} of ${catro.macs.full} MACs (${((100 * catro.macs.pruned) / catro.macs.full).toFixed(1)}%; budget: ${describeBudget(input.budget)}) in ${pruneSeconds.toFixed(1)} s`);

  // Every model is exported as it is made and evaluated at the end, together: each pass over
  // the test images is degraded once and answered by all of them. What is only there to be
  // compared with (the unpruned model restricted to the subtask, the pruned models before
  // fine-tuning, the L1 and random selections) comes with --baselines: evaluating the unpruned
  // model alone costs as much as fine-tuning a two-class subtask, and a plain compile of one
  // new subtask should take about a minute on 2 cores.
  const tune = async (selector: string, pruned: PruneResult) => {
    const before = o.baselines ? exported(pruned) : undefined;
    const tuned = await fineTuneSubtask(input, pruned, { outDir: join(o.workDir, selector), progress: o.progress?.() });
    const params = tuned.best?.params ?? tuned.params;
    return { before, after: exported({ graph: pruned.graph, params }), params };
  };
  const tFine = performance.now();
  const main = await tune('catro', catro);
  const fineSeconds = (performance.now() - tFine) / 1000;
  const baselines = o.baselines ? [
    { selector: 'l1' as const, ...(await tune('l1', await pruneSubtask(input, 'l1', catro.widths.widths))) },
    { selector: 'random' as const, ...(await tune('random', await pruneSubtask(input, 'random', catro.widths.widths))) },
  ] : [];

  const tEval = performance.now();
  const variants = [main, ...baselines];
  const models = [...(o.baselines ? [exported(restrictedFull(input))] : []), ...variants.flatMap((v) => (v.before ? [v.before, v.after] : [v.after]))];
  const classifiers = await Promise.all(models.map((m) => onnxClassifier(m)));
  let evals: EvalSummary[];
  try {
    const results = await evaluateAll(classifiers.map((m) => m.classify), test, { ranges: config.degradations, evaluation: config.evaluation, quick: o.quick, mean: config.dataset.mean, std: config.dataset.std });
    evals = results.map((r) => r.summary);
  } finally {
    await Promise.all(classifiers.map((m) => m.close()));
  }
  const evalSeconds = (performance.now() - tEval) / 1000;
  // evals: [the restricted model,] then each variant's [before,] after, in order.
  let next = 0;
  const restrictedEval = o.baselines ? evals[next++] : undefined;
  const variantEvals = variants.map((v) => ({ before: v.before ? evals[next++] : undefined, after: evals[next++]! }));
  const catroEval = variantEvals[0]!;
  if (restrictedEval) o.log(`unpruned, restricted to ${labels.join(', ')}: ${pct(restrictedEval)}`);
  o.log(`catro: ${catroEval.before ? `before fine-tuning ${pct(catroEval.before)}; after ` : ''}${pct(catroEval.after)}`);

  writeParams(join(o.outDir, 'params.ckpt'), catro.graph.arch, main.params, 0, null);
  await writeFileAtomic(join(o.outDir, 'graph.json'), JSON.stringify(catro.graph));
  await writeFileAtomic(join(o.outDir, 'model.onnx'), main.after);

  const outcome: SubtaskOutcome = {
    name: o.subtask.name,
    classes: o.classes,
    labels,
    macs: catro.macs,
    params: catro.paramCount,
    restricted: restrictedEval,
    catro: catroEval,
    seconds: { prune: pruneSeconds, fineTune: fineSeconds, evaluate: evalSeconds, total: 0 },
  };
  for (const [i, b] of baselines.entries()) {
    const { before, after } = variantEvals[1 + i]!;
    o.log(`${b.selector}: before fine-tuning ${pct(before!)}; after ${pct(after)}`);
    outcome[b.selector] = { before: before!, after };
  }
  outcome.seconds.total = (performance.now() - t0) / 1000;
  o.log(`pruned in ${pruneSeconds.toFixed(1)} s, fine-tuned in ${fineSeconds.toFixed(1)} s, ${models.length} model${models.length === 1 ? '' : 's'} evaluated in ${evalSeconds.toFixed(1)} s; ${outcome.seconds.total.toFixed(1)} s in all`);
  await writeFileAtomic(join(o.outDir, 'outcome.json'), JSON.stringify(outcome, null, 1));
  return outcome;
}

/** The subtask outcome a finished stage recorded. */
export async function readOutcome(result: StageResult): Promise<SubtaskOutcome> {
  return JSON.parse(await readFile(join(result.dir, 'outcome.json'), 'utf8')) as SubtaskOutcome;
}

/** Copies the full model's parameters and graph beside the manifest, for later `--from` compiles. */
export async function publishFullCheckpoint(outDir: string, graph: Graph, paramsFile: string): Promise<string[]> {
  const files = [join(outDir, FULL_CKPT), join(outDir, FULL_GRAPH)];
  await writeFileAtomic(files[0]!, new Uint8Array(await readFile(paramsFile)));
  await writeFileAtomic(files[1]!, JSON.stringify(graph));
  return files;
}

/** Markdown table of subtask outcomes for the CLI and the closing notes. */
export function subtaskTableMarkdown(outcomes: SubtaskOutcome[]): string {
  const lines = [
    '| Subtask | Classes | MACs (of full) | Params | Unpruned restricted: clean / degr. / mean5 | CATRO before FT: mean5 | CATRO: clean / degr. / mean5 | L1 before → after: mean5 | Random before → after: mean5 |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const o of outcomes) {
    const base = (s: { before: EvalSummary; after: EvalSummary } | undefined) => (s ? `${formatPoints(meanCleanAndDegraded(s.before))} → ${formatPoints(meanCleanAndDegraded(s.after))}` : '—');
    lines.push(
      `| ${o.name} | ${o.labels.join(', ')} | ${o.macs.pruned.toLocaleString('en')} (${((100 * o.macs.pruned) / o.macs.full).toFixed(1)}%) | ${o.params.pruned.toLocaleString('en')} | ${o.restricted ? `${formatPoints(o.restricted.clean)} / ${formatPoints(o.restricted.degradedMean)} / ${formatPoints(meanCleanAndDegraded(o.restricted))}` : '—'} | ${formatPoints(meanCleanAndDegraded(o.catro.before))} | ${formatPoints(o.catro.after.clean)} / ${formatPoints(o.catro.after.degradedMean)} / ${formatPoints(meanCleanAndDegraded(o.catro.after))} | ${base(o.l1)} | ${base(o.random)} |`,
    );
  }
  return lines.join('\n');
}
