import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../compiler/pipeline/cache.ts';
import { compile, dataChecksum, EVAL_FILE, ONNX_FILE, type StageEnv, type StageImpls } from '../../compiler/pipeline/compile.ts';
import type { CompileData } from '../../compiler/data/types.ts';
import { loadCompileConfig, type CompileConfig } from '../../compiler/pipeline/config.ts';
import type { EvalResult } from '../../compiler/pipeline/evaluate.ts';
import { dependents, planCompile, type StageKind } from '../../compiler/pipeline/plan.ts';
import type { Report } from '../../compiler/pipeline/report.ts';
import { DEGRADATION_KINDS } from '../../shared/manifest.ts';
import { tempDirs } from './helpers/temp.ts';

const temp = tempDirs();
afterAll(temp.cleanup);

const CONFIG = new URL('../../configs/fashion-mnist.json', import.meta.url).pathname;

function tinyData(seed = 1): CompileData {
  const split = (name: string, count: number) => ({
    name: 'synthetic', split: name, count, height: 2, width: 2, channels: 1 as const,
    images: Uint8Array.from({ length: count * 4 }, (_, i) => (i * seed) % 256), labels: Uint16Array.from({ length: count }, (_, i) => i % 2), classNames: ['a', 'b'],
  });
  const train = split('train', 8);
  const test = split('test', 4);
  return { train, test, checksums: { train: dataChecksum(train), test: dataChecksum(test) } };
}

/** Fake stages: a model is JSON of its stage, config slice, code version and parent models; an evaluation scores it from its text. */
function fakeImpls(code: Partial<Record<StageKind, string>> = {}, fail?: string): StageImpls & { calls: string[] } {
  const calls: string[] = [];
  const train = async (env: StageEnv) => {
    calls.push(env.spec.id);
    if (env.spec.id === fail) throw new Error(`${fail} failed`);
    const parents = await Promise.all([...env.deps.values()].map((d) => readFile(join(d.dir, env.spec.kind === 'distill' || env.spec.kind === 'fusing' ? 'fused.ckpt' : 'params.ckpt'), 'utf8').catch(() => '')));
    // Like a real model, the bytes depend on the config slice, the code and the parents.
    const model = JSON.stringify({ stage: env.spec.id, config: env.spec.config, code: code[env.spec.kind] ?? 'v1', parents });
    if (env.spec.kind === 'fusion') {
      for (const f of ['fused.ckpt', 'soup-copy.ckpt', 'soup-recal.ckpt']) await writeFile(join(env.outDir, f), `${f}:${model}`);
    } else await writeFile(join(env.outDir, 'params.ckpt'), model);
    return { dataShare: 0.05 };
  };
  const evaluate = async (env: StageEnv) => {
    calls.push(env.spec.id);
    const { model, kinds, clean } = env.spec.config as { model: { stage: string; file: string }; kinds: string[]; clean: boolean };
    const text = await readFile(join(env.deps.get(model.stage)!.dir, model.file), 'utf8');
    const acc = 0.5 + (text.length % 40) / 100;
    const summary = { clean: clean ? acc : null, jpeg: null, blur: null, awgn: null, saltpepper: null, degradedMean: null, samples: env.data.test.count } as EvalResult['summary'];
    const points: EvalResult['points'] = clean ? [{ kind: 'clean', level: null, correct: 1, samples: 4, accuracy: acc }] : [];
    for (const k of kinds as (typeof DEGRADATION_KINDS)[number][]) {
      summary[k] = acc - 0.1;
      points.push({ kind: k, level: 0, correct: 1, samples: 4, accuracy: acc - 0.1 }, { kind: k, level: 10, correct: 1, samples: 4, accuracy: acc - 0.1 });
    }
    if (kinds.length === 4) summary.degradedMean = acc - 0.1;
    await writeFile(join(env.outDir, EVAL_FILE), JSON.stringify({ points, summary }));
    await writeFile(join(env.outDir, ONNX_FILE), text);
  };
  return {
    calls,
    run: { base: train, degrade: train, fusion: train, distill: train, vanilla: train, fusing: train, eval: evaluate },
    codeVersion: async (kind) => code[kind] ?? 'v1',
  };
}

async function setup() {
  const root = await temp.make('facet-compile-');
  const config = await loadCompileConfig(CONFIG);
  const run = async (cfg: CompileConfig, over: { baselines?: boolean; quick?: boolean; data?: CompileData; impls?: ReturnType<typeof fakeImpls> } = {}) => {
    const impls = over.impls ?? fakeImpls();
    const result = await compile({ config: cfg, cacheDir: join(root, 'cache'), outDir: join(root, 'out'), baselines: over.baselines ?? false, quick: over.quick ?? false, data: over.data ?? tinyData(), impls });
    return { ...result, calls: impls.calls };
  };
  return { root, config, run };
}

const edit = (c: CompileConfig, f: (c: CompileConfig) => void): CompileConfig => {
  const copy = structuredClone(c);
  f(copy);
  return copy;
};

const EVALS = ['eval-base', 'eval-oracle-jpeg', 'eval-oracle-blur', 'eval-oracle-awgn', 'eval-oracle-saltpepper', 'eval-soup-copy', 'eval-soup-recal', 'eval-fusiondistill'];
const TRAINING = ['base', 'degrade-jpeg', 'degrade-blur', 'degrade-awgn', 'degrade-saltpepper', 'fusion', 'distill'];

describe('compile orchestration', () => {
  it('plans the published stage graph; baselines add Vanilla and Fusing', async () => {
    const config = await loadCompileConfig(CONFIG);
    const plan = planCompile(config, { baselines: false, quick: false });
    expect(plan.stages.map((s) => s.id)).toEqual([...TRAINING, ...EVALS]);
    expect(plan.stages.find((s) => s.id === 'distill')!.deps).toEqual(['fusion', 'degrade-jpeg', 'degrade-blur', 'degrade-awgn', 'degrade-saltpepper']);
    expect(dependents(plan, 'degrade-blur')).toEqual(['fusion', 'distill', 'eval-oracle-blur', 'eval-soup-copy', 'eval-soup-recal', 'eval-fusiondistill']);
    const withBaselines = planCompile(config, { baselines: true, quick: false });
    expect(withBaselines.stages.map((s) => s.id).filter((id) => !plan.stages.some((s) => s.id === id))).toEqual(['vanilla', 'fusing', 'eval-vanilla', 'eval-fusing']);
    expect(dependents(withBaselines, 'base')).toContain('vanilla');
    expect(dependents(withBaselines, 'fusion')).toEqual(['distill', 'fusing', 'eval-soup-copy', 'eval-soup-recal', 'eval-fusing', 'eval-fusiondistill']);
    const fusingOnly = planCompile(config, { baselines: ['fusing'], quick: false });
    expect(fusingOnly.stages.map((s) => s.id).filter((id) => !plan.stages.some((s) => s.id === id))).toEqual(['fusing', 'eval-fusing']);
  });

  it('runs every stage once, writes the report, and a rerun does no work', async () => {
    const { root, config, run } = await setup();
    const first = await run(config);
    expect(first.ran).toEqual([...TRAINING, ...EVALS]);
    expect(first.calls).toEqual(first.ran);
    const report = JSON.parse(await readFile(join(root, 'out', 'report.json'), 'utf8')) as Report;
    expect(report.rows.map((r) => r.id)).toEqual(['base', 'oracle', 'soup-copy', 'soup-recal', 'fusiondistill']);
    expect(report.rows[1]!.summary.clean).toBeNull();
    expect(report.stages.map((s) => s.stage)).toEqual([...TRAINING, ...EVALS]);
    expect(report.stages[0]).toMatchObject({ cached: false, dataShare: 0.05 });
    expect(report.reference?.rows).toHaveLength(7);
    expect(await readFile(join(root, 'out', 'report.html'), 'utf8')).toContain('<tr data-row="fusiondistill">');

    const second = await run(config);
    expect(second.ran).toEqual([]);
    expect(second.calls).toEqual([]);
    expect(second.report.stages.every((s) => s.cached)).toBe(true);
    // Cached stages still report the wall time of the run that produced them.
    expect(second.report.stages.map((s) => s.wallMs)).toEqual(first.report.stages.map((s) => s.wallMs));
    expect(second.report.rows).toEqual(first.report.rows);
  });

  it('a config change reruns exactly the dependent stages', async () => {
    const { config, run } = await setup();
    await run(config);
    expect((await run(edit(config, (c) => (c.stages.distill.epochs += 1)))).ran).toEqual(['distill', 'eval-fusiondistill']);
    // A new blur range: its fine-tune and everything downstream, and every evaluation on blur.
    expect((await run(edit(config, (c) => (c.degradations.blur.max = 40)))).ran).toEqual(['degrade-blur', 'fusion', 'distill', 'eval-base', 'eval-oracle-blur', 'eval-soup-copy', 'eval-soup-recal', 'eval-fusiondistill']);
    expect((await run(edit(config, (c) => (c.stages.fusion.recalibrationBatches = 7)))).ran).toEqual(['fusion', 'distill', 'eval-soup-copy', 'eval-soup-recal', 'eval-fusiondistill']);
    // Notes, the data directory and the evaluation batch size change nothing.
    expect((await run(edit(config, (c) => (c.evaluation.batchSize = 17)))).ran).toEqual([]);
    expect((await run(edit(config, (c) => { c.notes = ['other']; c.dataset.dir = '/elsewhere'; }))).ran).toEqual([]);
  });

  it('a stage-4 seed reruns stage 4 and its baselines only; its losses and teachers are not the baselines\' business', () => {
    return loadCompileConfig(CONFIG).then((config) => {
      const keys = (c: typeof config) => new Map(planCompile(c, { baselines: true, quick: false }).stages.map((s) => [s.id, canonicalJson(s.config)]));
      const changed = (a: Map<string, string>, b: Map<string, string>) => [...a.keys()].filter((id) => a.get(id) !== b.get(id));
      const before = keys(config);
      expect(changed(before, keys(edit(config, (c) => (c.stages.distill.seed = 7))))).toEqual(['distill', 'vanilla', 'fusing']);
      expect(changed(before, keys(edit(config, (c) => (c.stages.distill.loss.logit = 1))))).toEqual(['distill']);
      expect(changed(before, keys(edit(config, (c) => (c.stages.distill.teacherInput = 'degraded'))))).toEqual(['distill']);
    });
  });

  it('input data, code versions, quick mode and baselines invalidate only what they reach', async () => {
    const { config, run } = await setup();
    await run(config);
    const newTest = tinyData();
    newTest.test.labels[0] = 1;
    newTest.checksums.test = dataChecksum(newTest.test);
    expect((await run(config, { data: newTest })).ran).toEqual(EVALS);
    expect((await run(config, { data: newTest, impls: fakeImpls({ eval: 'v2' }) })).ran).toEqual(EVALS);
    expect((await run(config, { data: newTest, impls: fakeImpls({ eval: 'v2', fusion: 'v2' }) })).ran).toEqual(['fusion', 'distill', 'eval-soup-copy', 'eval-soup-recal', 'eval-fusiondistill']);
    const withBaselines = await run(config, { data: newTest, baselines: true, impls: fakeImpls({ eval: 'v2', fusion: 'v2' }) });
    expect(withBaselines.ran).toEqual(['vanilla', 'fusing', 'eval-vanilla', 'eval-fusing']);
    expect(withBaselines.report.rows.map((r) => r.id)).toEqual(['base', 'oracle', 'vanilla', 'soup-copy', 'soup-recal', 'fusing', 'fusiondistill']);
    const quick = await run(config, { data: newTest, quick: true, impls: fakeImpls({ eval: 'v2', fusion: 'v2' }) });
    expect(quick.ran).toEqual(EVALS);
    expect(quick.report.quick).toBe(true);
  });

  it('a failed stage stops the compile; the rerun starts at that stage', async () => {
    const { root, config, run } = await setup();
    await expect(run(config, { impls: fakeImpls({}, 'fusion') })).rejects.toThrow('fusion failed');
    expect(existsSync(join(root, 'out', 'report.json'))).toBe(false);
    const rerun = await run(config);
    expect(rerun.ran).toEqual(['fusion', 'distill', ...EVALS]);
  });
});
