/**
 * FusionDistill against Fusing over several stage-4 seeds (issue 3's study).
 *
 * Stages 1–3 are the config's own (cached: run the default compile first); only stage 4 and
 * its baselines change with the seed (`stages.distill.seed`), so each seed costs one
 * FusionDistill, one Fusing and one Vanilla fine-tune (issue 17 compares all three, paired
 * by seed; the config's own seed reuses the compile's cached stage 4 and baselines), plus
 * one stage 4 per extra variant (`--variants ''` for none).
 * Every model is evaluated in onnxruntime-node on held-out test images exactly as the
 * report does; nothing here selects on test data (checkpoints are picked on validation).
 *
 *   npx tsx bench/fusion-study.ts [--config configs/fashion-mnist.json] [--seeds 0,1,2]
 *     [--variants ce1-logit,degraded-teachers] [--cache-dir .cache/compile] [--backend wasm]
 *
 * Several processes may run different seeds at once on the same cache (each stage locks its
 * own directory); `--merge` prints the table from the per-seed files in bench/results/.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatPoints } from '../compiler/pipeline/accuracy.ts';
import { compile } from '../compiler/pipeline/compile.ts';
import { loadCompileConfig, type CompileConfig } from '../compiler/pipeline/config.ts';
import type { RowSummary } from '../compiler/pipeline/report.ts';
import { loadCompileData, stageImpls } from '../compiler/pipeline/stages.ts';
import { createProgress } from '../compiler/train/progress.ts';
import type { Engine } from '../compiler/engine/types.ts';
import { mean, pairedDifference } from './stats.ts';
import { engineFromArgv, optionValue } from './args.ts';

const arg = (name: string, fallback: string) => optionValue(process.argv, name) ?? fallback;
const RESULTS = 'bench/results';

/** Stage-4 variants beside the published method: each edits `stages.distill`. */
const VARIANTS: Record<string, (d: CompileConfig['stages']['distill']) => void> = {
  /** Full-weight labels plus temperature-4 logit distillation from each degradation's teacher. */
  'ce1-logit': (d) => {
    d.loss = { ...d.loss, ce: 1, logit: 1 };
  },
  /** The teachers see the student's degraded images instead of the clean ones. */
  'degraded-teachers': (d) => {
    d.teacherInput = 'degraded';
  },
  /** Twice the stage-4 budget (the baselines are not rerun at this budget). */
  'two-epochs': (d) => {
    d.epochs *= 2;
  },
};

interface SeedResult {
  seed: number;
  /** Row label → summary (FusionDistill, Fusing, Vanilla fine-tune, and `FusionDistill [variant]`). */
  rows: Record<string, RowSummary>;
  /** Wall seconds of the stages this process ran. */
  seconds: number;
}

const pct = formatPoints;

async function runSeed(engine: Engine, base: CompileConfig, seed: number, variants: string[], cacheDir: string): Promise<SeedResult> {
  const withSeed = (edit?: (d: CompileConfig['stages']['distill']) => void): CompileConfig => {
    const c = structuredClone(base);
    // The config's own seed stays implicit, so its cached stage 4 (the default compile's) is reused.
    if (seed !== base.seed) c.stages.distill.seed = seed;
    edit?.(c.stages.distill);
    return c;
  };
  const data = await loadCompileData(base);
  // Checkpoints every 50 steps, as facet compile's default: a study killed mid-epoch (a session's end) loses minutes, not an epoch.
  const impls = stageImpls({ engine, prefetch: 'worker', checkpointEverySteps: 50, progress: () => createProgress(process.stderr) });
  const log = (line: string) => console.error(`[seed ${seed}] ${line}`);
  const outDir = join(tmpdir(), `facet-fusion-study-${process.pid}-${seed}`);
  const t0 = performance.now();
  const rows: Record<string, RowSummary> = {};
  // --variants-first: the variants before the published rows (another process may be running those).
  const publishedRows = async () => {
    const published = await compile({ config: withSeed(), cacheDir, outDir, baselines: true, quick: false, data, impls, log });
    for (const r of published.report.rows) if (['fusiondistill', 'fusing', 'vanilla'].includes(r.id)) rows[r.label] = r.summary;
  };
  if (!process.argv.includes('--variants-first')) await publishedRows();
  for (const v of variants) {
    const edit = VARIANTS[v];
    if (!edit) throw new Error(`unknown variant "${v}"; known: ${Object.keys(VARIANTS).join(', ')}`);
    const result = await compile({ config: withSeed(edit), cacheDir, outDir, baselines: false, quick: false, data, impls, log });
    rows[`FusionDistill [${v}]`] = result.report.rows.find((r) => r.id === 'fusiondistill')!.summary;
  }
  if (process.argv.includes('--variants-first')) await publishedRows();
  return { seed, rows, seconds: (performance.now() - t0) / 1000 };
}

function table(results: SeedResult[]): string {
  const labels = [...new Set(results.flatMap((r) => Object.keys(r.rows)))];
  const lines = [
    `Seeds: ${results.map((r) => r.seed).join(', ')} (stage-4 seed; stages 1–3 shared). Mean over seeds, % on held-out test images.`,
    'Gaps to Fusing are paired by seed: mean ± sd [95% CI] (seeds ahead/behind).',
    '',
    '| Row | Clean | JPEG | Blur | AWGN | S&P | Avg | Avg per seed | Avg − Fusing | Clean − Fusing |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  const signed = (x: number) => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(2)}`;
  for (const label of labels) {
    const have = results.filter((r) => r.rows[label]);
    const col = (k: keyof RowSummary) => pct(mean(have.map((r) => r.rows[label]![k] as number)));
    const avgs = have.map((r) => r.rows[label]!.degradedMean!);
    const both = have.filter((r) => r.rows.Fusing);
    const gap = (k: 'degradedMean' | 'clean'): string => {
      if (label === 'Fusing' || both.length === 0) return '—';
      const d = pairedDifference(both.map((r) => r.rows[label]![k]!), both.map((r) => r.rows.Fusing![k]!));
      const ci = d.ci95 ? ` [${signed(d.ci95[0])}, ${signed(d.ci95[1])}]` : '';
      return `${signed(d.mean)} ± ${(100 * d.sd).toFixed(2)}${ci} (${d.wins}/${d.losses})`;
    };
    lines.push(`| ${label} | ${col('clean')} | ${col('jpeg')} | ${col('blur')} | ${col('awgn')} | ${col('saltpepper')} | ${col('degradedMean')} | ${avgs.map(pct).join(' / ')} | ${gap('degradedMean')} | ${gap('clean')} |`);
  }
  return lines.join('\n');
}

const configFile = arg('config', 'configs/fashion-mnist.json');
const config = await loadCompileConfig(configFile);
const file = (seed: number) => join(RESULTS, `fusion-study-${config.name}-seed${seed}.json`);
if (!process.argv.includes('--merge')) {
  const engine = await engineFromArgv(process.argv);
  const seeds = arg('seeds', '0,1,2').split(',').map(Number);
  const variants = arg('variants', 'ce1-logit').split(',').filter(Boolean);
  await mkdir(RESULTS, { recursive: true });
  for (const seed of seeds) {
    const result = await runSeed(engine, config, seed, variants, arg('cache-dir', join('.cache', 'compile')));
    await writeFile(file(seed), JSON.stringify({ benchmark: 'fusion-study', config: configFile, finished: new Date().toISOString(), ...result }, null, 1));
    console.log(table([result]));
  }
}
const all: SeedResult[] = [];
for (const name of (await readdir(RESULTS)).filter((n) => n.startsWith(`fusion-study-${config.name}-seed`)).sort()) {
  all.push(JSON.parse(await readFile(join(RESULTS, name), 'utf8')) as SeedResult);
}
console.log(`\n${table(all)}`);
