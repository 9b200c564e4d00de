/**
 * Paired comparison of CATRO against the baselines from one or more `bench/catro-study.ts` result
 * files of the same subtask (runs split over several studies are merged; a (budget, seed,
 * variant) present twice is refused).
 *
 * In a study the seed drives the calibration draw, BN re-estimation, random channels and the
 * fine-tuning order, and every variant of a seed shares them. So the difference CATRO − baseline
 * is taken seed by seed, and its mean gets a 95% t interval over the seeds: a gap whose interval
 * excludes 0 is one the seeds support; one whose interval straddles 0 is not shown either way.
 *
 *   npx tsx bench/catro-compare.ts bench/results/catro-study-footwear.json \
 *     bench/results/catro-study-footwear-seeds-0-3-4.json [--catro catro] [--baselines l1,random] \
 *     [--out bench/results/catro-compare-footwear.json]
 *
 * Validation columns are what options may be chosen on; test columns are for the report only.
 */
import { readFileSync } from 'node:fs';
import { describeBudget, loadCompileConfig, subtaskBudget } from '../compiler/pipeline/config.ts';
import { writeFileAtomic } from '../compiler/pipeline/cache.ts';
import { optionValue } from './args.ts';
import { mean, pairedDifference, sampleSd } from './stats.ts';

interface Split { mean5: number }
interface StudyRow {
  seed: number;
  budget?: string;
  flops?: number;
  variant: string;
  before: { val: Split; test?: Split };
  after?: { val: Split; test?: Split };
}
interface Study { subtask: string; config: string; rows: StudyRow[] }

const argv = process.argv.slice(2);
const valueFlags = new Set(['--catro', '--baselines', '--out']);
const files = argv.filter((a, i) => !a.startsWith('--') && !valueFlags.has(argv[i - 1] ?? ''));
if (files.length === 0) {
  console.error('usage: npx tsx bench/catro-compare.ts STUDY.json [STUDY.json ...] [--catro VARIANT] [--baselines V1,V2] [--out FILE]');
  process.exit(2);
}
const catroVariant = optionValue(argv, 'catro') ?? 'catro';
const baselinesArg = optionValue(argv, 'baselines')?.split(',').filter(Boolean);
const outFile = optionValue(argv, 'out');

/** Bad input ends the run with the file and the problem, not a stack trace. */
function fail(message: string): never {
  console.error(`catro-compare: ${message}`);
  process.exit(1);
}

function readStudy(file: string): Study {
  let j: Partial<Study>;
  try {
    j = JSON.parse(readFileSync(file, 'utf8')) as Partial<Study>;
  } catch (e) {
    fail(`${file}: cannot read a catro-study result (${(e as Error).message})`);
  }
  if (typeof j.subtask !== 'string' || !Array.isArray(j.rows)) fail(`${file}: not a catro-study result (no subtask or rows)`);
  return j as Study;
}

const studies = files.map((f) => ({ file: f, study: readStudy(f) }));
const subtask = studies[0]!.study.subtask;
for (const { file, study } of studies) if (study.subtask !== subtask) fail(`${file}: subtask "${study.subtask}", but ${files[0]} has "${subtask}"`);

// Rows name their budget in words; older rows give only `flops`, and the oldest nothing: those
// were all at the subtask's own budget in the study's config.
const defaultBudget = new Map<string, string>();
async function budgetOf(study: Study, row: StudyRow): Promise<string> {
  if (row.budget !== undefined) return row.budget;
  if (row.flops !== undefined) return describeBudget({ flops: row.flops });
  if (!defaultBudget.has(study.config)) {
    const config = await loadCompileConfig(study.config);
    const s = config.subtasks.find((x) => x.name === subtask);
    if (!s) fail(`${study.config} has no subtask "${subtask}"`);
    defaultBudget.set(study.config, describeBudget(subtaskBudget(s)));
  }
  return defaultBudget.get(study.config)!;
}

/** (budget → seed → variant → row), merged over the files. */
const runs = new Map<string, Map<number, Map<string, StudyRow>>>();
for (const { file, study } of studies) {
  for (const row of study.rows) {
    const budget = await budgetOf(study, row);
    const bySeed = runs.get(budget) ?? new Map<number, Map<string, StudyRow>>();
    runs.set(budget, bySeed);
    const byVariant = bySeed.get(row.seed) ?? new Map<string, StudyRow>();
    bySeed.set(row.seed, byVariant);
    if (byVariant.has(row.variant)) fail(`${file}: budget "${budget}", seed ${row.seed}, variant "${row.variant}" is already in another file`);
    byVariant.set(row.variant, row);
  }
}

// By default every other variant the files hold, in the order they first appear.
const baselineVariants = baselinesArg ?? [...new Set(studies.flatMap(({ study }) => study.rows.map((r) => r.variant)))].filter((v) => v !== catroVariant);
if (baselineVariants.length === 0) fail(`no variant to compare "${catroVariant}" with in ${files.join(', ')}`);

type Metric = 'valBefore' | 'valAfter' | 'testBefore' | 'testAfter';
const METRICS: Record<Metric, (r: StudyRow) => number | undefined> = {
  valBefore: (r) => r.before.val.mean5,
  testBefore: (r) => r.before.test?.mean5,
  valAfter: (r) => r.after?.val.mean5,
  testAfter: (r) => r.after?.test?.mean5,
};
const pts = (x: number) => (100 * x).toFixed(1);
const signed = (x: number) => `${x >= 0 ? '+' : '−'}${pts(Math.abs(x))}`;

const report: Record<string, unknown>[] = [];
for (const [budget, bySeed] of runs) {
  console.log(`\n${subtask}, ${budget}; mean5 in points, seeds paired`);
  console.log(`| | seeds | ${catroVariant} | ${baselineVariants.map((b) => `${b} | ${catroVariant} − ${b} [95% CI] (wins/losses)`).join(' | ')} |`);
  console.log(`|---|---|---|${baselineVariants.map(() => '---|---|').join('')}`);
  for (const [metric, pick] of Object.entries(METRICS) as [Metric, (r: StudyRow) => number | undefined][]) {
    // Only seeds where CATRO and every baseline have this figure.
    const seeds = [...bySeed.keys()].sort((a, b) => a - b).filter((s) => [catroVariant, ...baselineVariants].every((v) => {
      const row = bySeed.get(s)!.get(v);
      return row !== undefined && pick(row) !== undefined;
    }));
    // A figure the study did not measure (--no-test, --no-finetune) gets no row.
    if (![...bySeed.values()].some((byVariant) => [...byVariant.values()].some((r) => pick(r) !== undefined))) continue;
    if (seeds.length === 0) {
      console.log(`| ${metric} | none with ${catroVariant} and ${baselineVariants.join(', ')} | | |`);
      continue;
    }
    const values = (v: string) => seeds.map((s) => pick(bySeed.get(s)!.get(v)!)!);
    const catro = values(catroVariant);
    const cells: string[] = [];
    const entry: Record<string, unknown> = { budget, metric, seeds, [catroVariant]: { mean: mean(catro), sd: sampleSd(catro) } };
    for (const b of baselineVariants) {
      const base = values(b);
      const d = pairedDifference(catro, base);
      entry[b] = { mean: mean(base), sd: sampleSd(base), difference: d };
      const ci = d.ci95 ? ` [${signed(d.ci95[0])}, ${signed(d.ci95[1])}]` : '';
      cells.push(`${pts(mean(base))} ± ${pts(sampleSd(base))} | ${signed(d.mean)}${ci} (${d.wins}/${d.losses})`);
    }
    report.push(entry);
    console.log(`| ${metric} | ${seeds.join(',')} | ${pts(mean(catro))} ± ${pts(sampleSd(catro))} | ${cells.join(' | ')} |`);
  }
}
console.log('\n(choose on the val rows only; a gap is supported by the seeds when its interval excludes 0)');
if (outFile) {
  await writeFileAtomic(outFile, JSON.stringify({ subtask, files, catro: catroVariant, baselines: baselineVariants, comparisons: report, createdAt: new Date().toISOString() }, null, 1));
  console.log(`wrote ${outFile}`);
}
