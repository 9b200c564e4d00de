import { cp, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readParams } from '../../compiler/train/loop.ts';
import { compile } from '../../compiler/pipeline/compile.ts';
import { stageImpls } from '../../compiler/pipeline/stages.ts';
import { onnxClassifier } from '../../compiler/pipeline/evaluate.ts';
import type { Engine } from '../../compiler/engine/types.ts';
import { testEngine } from '../engine/engines.ts';
import { parseManifest } from '../../shared/manifest.ts';
import { tinyConfig, tinyData } from './helpers/tiny.ts';
import { tempDirs } from './helpers/temp.ts';

const temp = tempDirs();
afterAll(temp.cleanup);

let engine: Engine;
beforeAll(async () => {
  engine = await testEngine('ort');
});

let firstRoot = '';

describe('end-to-end compile (tiny, ort engine)', () => {
  it('trains every stage, evaluates the exported models, writes report and manifest; a rerun is all cached', async () => {
    const root = (firstRoot = await temp.make('facet-e2e-'));
    const lines: string[] = [];
    const opts = { config: tinyConfig(), cacheDir: join(root, 'cache'), outDir: join(root, 'out'), baselines: true, quick: true, data: tinyData(), impls: stageImpls({ engine, prefetch: 'inline' }), log: (l: string) => lines.push(l) };
    const t0 = performance.now();
    const first = await compile(opts);
    const seconds = (performance.now() - t0) / 1000;
    expect(first.ran).toHaveLength(first.plan.stages.length);
    expect(first.report.rows.map((r) => r.id)).toEqual(['base', 'oracle', 'vanilla', 'soup-copy', 'soup-recal', 'fusing', 'fusiondistill']);
    for (const row of first.report.rows) {
      for (const v of Object.values(row.summary)) if (v !== null) expect(v).toBeGreaterThanOrEqual(0);
      expect(row.summary.degradedMean).not.toBeNull();
    }
    // The quadrant task is easy: the base model learns it from 48 images in two epochs.
    expect(first.report.rows[0]!.summary.clean).toBeGreaterThan(0.5);
    const training = first.report.stages.filter((s) => !s.stage.startsWith('eval-') && s.stage !== 'fusion');
    for (const s of training) expect(s.dataShare, s.stage).toBeGreaterThan(0);

    const manifest = parseManifest(JSON.parse(await readFile(join(root, 'out', 'manifest.json'), 'utf8')));
    expect(manifest.models[0]!.file).toBe(`full.${manifest.models[0]!.sha256.slice(0, 12)}.onnx`);
    expect(manifest.models[0]).toMatchObject({ id: 'full', input: { height: 8, width: 8, channels: 1 }, output: 'logits' });
    expect(manifest.models[0]!.accuracy!.degradedMean).toBeCloseTo(first.report.rows.at(-1)!.summary.degradedMean!, 12);
    // The shipped file is the model the report evaluated.
    const shipped = await onnxClassifier(join(root, 'out', manifest.models[0]!.file));
    const logits = await shipped.classify(new Float32Array(64), { n: 1, c: 1, h: 8, w: 8 });
    expect(logits).toHaveLength(4);
    await shipped.close();
    const html = await readFile(join(root, 'out', 'report.html'), 'utf8');
    expect(html).toContain('<tr data-row="fusiondistill">');

    // Fusion wrote the three variants; the recalibrated soup has different BN statistics than the copied one.
    const fusion = first.results.get('fusion')!;
    const copy = readParams(join(fusion.dir, 'soup-copy.ckpt')).params;
    const recal = readParams(join(fusion.dir, 'soup-recal.ckpt')).params;
    const bnMean = [...copy.keys()].find((k) => k.endsWith('/mean'))!;
    expect(recal.get(bnMean)!.data).not.toEqual(copy.get(bnMean)!.data);
    expect(recal.get('fc/kernel')!.data).toEqual(copy.get('fc/kernel')!.data);

    // Stage 4 and the Fusing baseline start from the same fused model but differ in loss.
    const distilled = readParams(join(first.results.get('distill')!.dir, 'params.ckpt')).params;
    const fusing = readParams(join(first.results.get('fusing')!.dir, 'params.ckpt')).params;
    expect(distilled.get('fc/kernel')!.data).not.toEqual(fusing.get('fc/kernel')!.data);

    const second = await compile({ ...opts, log: () => {} });
    expect(second.ran).toEqual([]);
    expect(second.report.rows).toEqual(first.report.rows);
    console.log(`tiny end-to-end compile with baselines: ${seconds.toFixed(1)} s`);
  });

  it('stage-4 variants (logit distillation, teachers on degraded images) rerun only stage 4 and change its weights', async () => {
    expect(firstRoot).not.toBe('');
    const root = await temp.make('facet-variant-');
    await cp(join(firstRoot, 'cache'), join(root, 'cache'), { recursive: true });
    const config = tinyConfig();
    config.stages.distill.loss = { ...config.stages.distill.loss, logit: 1, temperature: 2 };
    config.stages.distill.teacherInput = 'degraded';
    const variant = await compile({ config, cacheDir: join(root, 'cache'), outDir: join(root, 'out'), baselines: false, quick: true, data: tinyData(), impls: stageImpls({ engine, prefetch: 'inline' }) });
    expect(variant.ran).toEqual(['distill', 'eval-fusiondistill']);
    const ours = readParams(join(variant.results.get('distill')!.dir, 'params.ckpt')).params;
    const published = readParams(join(firstRoot, 'cache', (await readdir(join(firstRoot, 'cache'))).find((n) => /^distill-[0-9a-f]+$/.test(n))!, 'params.ckpt')).params;
    expect(ours.get('fc/kernel')!.data).not.toEqual(published.get('fc/kernel')!.data);
  });
});
