/**
 * `facet compile`: runs the FusionDistill stage graph (plan.ts) through the stage cache
 * (cache.ts), then writes the report and the shipped model. What each stage does is
 * behind {@link StageImpls} — stages.ts trains for real; tests plug in fakes to check the
 * orchestration (order, caching, invalidation, report) in milliseconds.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CompileData, LabelledImages } from '../data/types.ts';
import { DEGRADATION_KINDS, type DegradationKind } from '../../shared/manifest.ts';
import { canonicalJson, runStage, writeFileAtomic, type StageResult } from './cache.ts';
import type { CompileConfig } from './config.ts';
import type { EvalResult } from './evaluate.ts';
import { planCompile, type Plan, type PlanOptions, type StageKind, type StageSpec } from './plan.ts';
import { modelRow, oracleRow, REFERENCE_FASHION_MNIST, renderReportHtml, REPORT_SCHEMA, type Report, type ReportRow, type StageTiming } from './report.ts';

/** Written by every eval stage: the {@link EvalResult} as JSON. */
export const EVAL_FILE = 'eval.json';
/** Written by every eval stage: the evaluated model as exported. */
export const ONNX_FILE = 'model.onnx';

export interface StageEnv {
  config: CompileConfig;
  spec: StageSpec;
  data: CompileData;
  /** Finished dependency stages by id. */
  deps: Map<string, StageResult>;
  /** Write artifacts here. */
  outDir: string;
  /** Checkpoints for resuming (kept if the stage dies). */
  workDir: string;
  log: (line: string) => void;
}

export interface PublishEnv {
  config: CompileConfig;
  configHash: string;
  plan: Plan;
  data: CompileData;
  results: Map<string, StageResult>;
  report: Report;
  outDir: string;
  log: (line: string) => void;
}

export interface StageImpls {
  /** Each returns the stage's meta (kept in done.json); eval stages write {@link EVAL_FILE} and {@link ONNX_FILE}. */
  run: Record<StageKind, (env: StageEnv) => Promise<unknown>>;
  /** Version of the code each kind of stage runs (its cache key's `code`). */
  codeVersion(kind: StageKind): Promise<string>;
  /** Writes the shipped model(s) and manifest into the output dir; returns the files written. */
  publish?(env: PublishEnv): Promise<string[]>;
}

export interface CompileOptions {
  config: CompileConfig;
  cacheDir: string;
  outDir: string;
  baselines: PlanOptions['baselines'];
  quick: boolean;
  data: CompileData;
  impls: StageImpls;
  log?: (line: string) => void;
}

export interface CompileResult {
  plan: Plan;
  report: Report;
  results: Map<string, StageResult>;
  /** Stage ids that ran (were not cached) in this compile. */
  ran: string[];
  files: string[];
}

/** sha256 of a data split (shape, images and labels). */
export function dataChecksum(d: LabelledImages): string {
  return createHash('sha256')
    .update(canonicalJson({ count: d.count, h: d.height, w: d.width, c: d.channels, classes: d.classNames }))
    .update(d.images)
    .update(new Uint8Array(d.labels.buffer, d.labels.byteOffset, d.labels.byteLength))
    .digest('hex');
}

export function configHash(config: CompileConfig): string {
  const { notes: _notes, ...rest } = config;
  return createHash('sha256').update(canonicalJson(rest)).digest('hex').slice(0, 16);
}

/** One checksum for all of a finished stage's artifacts. */
function artifactsChecksum(result: StageResult): string {
  return createHash('sha256').update(canonicalJson(Object.fromEntries(Object.entries(result.done.files).map(([f, r]) => [f, r.sha256])))).digest('hex');
}

export async function compile(opts: CompileOptions): Promise<CompileResult> {
  const { config, impls, data } = opts;
  const log = opts.log ?? (() => {});
  const started = performance.now();
  const plan = planCompile(config, { baselines: opts.baselines, quick: opts.quick });
  // Find an unwritable output directory now, not after hours of training.
  await checkWritableDir(opts.outDir);
  const results = new Map<string, StageResult>();
  const ran: string[] = [];
  // Hash every kind's code now: source edited while a long compile runs must not label the
  // later stages' cache entries with code this process never ran.
  const code = new Map<string, string>();
  for (const kind of new Set(plan.stages.map((s) => s.kind))) code.set(kind, await impls.codeVersion(kind));

  for (const spec of plan.stages) {
    const deps = new Map(spec.deps.map((d) => [d, results.get(d)!]));
    const inputs: Record<string, string> = {};
    for (const [id, r] of deps) inputs[id] = artifactsChecksum(r);
    for (const split of spec.data) inputs[`data:${split}`] = data.checksums[split];
    const key = { name: spec.id, config: spec.config, inputs, code: code.get(spec.kind)! };
    const result = await runStage(opts.cacheDir, key, async ({ outDir, workDir }) => {
      log(`[${spec.id}] running`);
      return impls.run[spec.kind]({ config, spec, data, deps, outDir, workDir, log: (line) => log(`[${spec.id}] ${line}`) });
    });
    if (result.cached) log(`[${spec.id}] cached (${result.hash})`);
    else {
      ran.push(spec.id);
      const runs = result.done.runs ?? 1;
      log(`[${spec.id}] done in ${(result.done.wallMs / 1000).toFixed(1)} s${runs > 1 ? ` over ${runs} runs (resumed)` : ''}`);
    }
    results.set(spec.id, result);
  }

  const report = await buildReport(config, plan, results, opts.quick, performance.now() - started);
  await mkdir(opts.outDir, { recursive: true });
  const files = [join(opts.outDir, 'report.json'), join(opts.outDir, 'report.html')];
  const hash = configHash(config);
  if (impls.publish) files.push(...(await impls.publish({ config, configHash: hash, plan, data, results, report, outDir: opts.outDir, log })));
  report.wallMs = performance.now() - started;
  await writeFileAtomic(files[0]!, JSON.stringify(report, null, 1));
  await writeFileAtomic(files[1]!, renderReportHtml(report));
  return { plan, report, results, ran, files };
}

/** Creates `dir` if needed and writes (then removes) a probe file in it; throws naming `dir` if either fails. */
export async function checkWritableDir(dir: string): Promise<void> {
  const probe = join(dir, `.write-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(probe, '');
    await rm(probe);
  } catch (err) {
    await rm(probe, { force: true }).catch(() => {});
    throw new Error(`output directory ${dir} is not writable: ${(err as Error).message}`, { cause: err });
  }
}

export async function readEval(result: StageResult): Promise<EvalResult> {
  return JSON.parse(await readFile(join(result.dir, EVAL_FILE), 'utf8')) as EvalResult;
}

async function buildReport(config: CompileConfig, plan: Plan, results: Map<string, StageResult>, quick: boolean, wallMs: number): Promise<Report> {
  const evals = new Map<string, EvalResult>();
  for (const e of plan.evals) evals.set(e.row, await readEval(results.get(`eval-${e.row}`)!));
  const rows: ReportRow[] = [];
  for (const e of plan.evals) {
    if (e.row.startsWith('oracle-')) {
      if (e.row !== 'oracle-jpeg') continue;
      rows.push(oracleRow(Object.fromEntries(DEGRADATION_KINDS.map((k) => [k, evals.get(`oracle-${k}`)!])) as Record<DegradationKind, EvalResult>));
    } else rows.push(modelRow(e.row, e.label, evals.get(e.row)!));
  }
  const stages: StageTiming[] = plan.stages.map((s) => {
    const r = results.get(s.id)!;
    const meta = r.done.meta as { dataShare?: number } | null;
    const runs = r.done.runs ?? 1;
    return { stage: s.id, hash: r.hash, wallMs: r.done.wallMs, cached: r.cached, ...(runs > 1 ? { runs } : {}), ...(typeof meta?.dataShare === 'number' ? { dataShare: meta.dataShare } : {}) };
  });
  const notes = [...(config.notes ?? [])];
  const samples = evals.get('fusiondistill')!.summary.samples;
  return {
    schema: REPORT_SCHEMA,
    config: config.name,
    dataset: config.dataset.name,
    createdAt: new Date().toISOString(),
    quick,
    samples,
    rows,
    stages,
    wallMs,
    ...(config.dataset.name === 'fashion-mnist' ? { reference: REFERENCE_FASHION_MNIST } : {}),
    notes,
  };
}
