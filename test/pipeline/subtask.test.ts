import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initParams, resnet } from '../../compiler/graph/builders.ts';
import { predict } from '../../compiler/nn/forward.ts';
import { exportOnnx } from '../../compiler/onnx/export.ts';
import { onnxClassifier } from '../../compiler/pipeline/evaluate.ts';
import { DEFAULT_SUBTASK_TUNING, fineTuneSubtask, pruneSubtask, selectionSet, type SubtaskInput } from '../../compiler/pipeline/subtask.ts';
import type { Engine } from '../../compiler/engine/types.ts';
import { initBackend } from '../../compiler/tf/backend.ts';
import { testEngine } from '../engine/engines.ts';
import { Rng } from '../../shared/rng.ts';
import { tinyData } from './helpers/tiny.ts';

let engine: Engine;
beforeAll(async () => {
  engine = await testEngine('ort');
  await initBackend('cpu'); // the tfjs interpreter, to compare the exported model with
});

function input(): SubtaskInput {
  const { train } = tinyData();
  const graph = resnet({ depth: 8, width: 1, input: [8, 8, 1], classes: 4, shortcut: 'projection', head: 'gap' });
  const params = initParams(graph, new Rng(5));
  return {
    graph,
    params,
    train,
    classes: [3, 1],
    budget: { flops: 0.5 },
    degradations: { jpeg: { min: 20, max: 101 }, blur: { min: 0, max: 10 }, awgn: { min: 0, max: 20 }, saltpepper: { min: 0, max: 5 } },
    normalize: { mean: [0.3], std: [0.3] },
    tuning: { ...DEFAULT_SUBTASK_TUNING, calibrationPerClass: 6, recalibrationImages: 24, epochs: 1, batchSize: 8 },
    seed: 7,
    engine,
  };
}

describe('subtask compile (CATRO + baselines + fine-tune)', () => {
  it('prunes to the MACs budget, keeps only the subtask rows, and the exported ONNX equals tfjs', async () => {
    const job = input();
    const catro = await pruneSubtask(job, 'catro');
    expect(catro.macs.pruned).toBeLessThan(catro.macs.full);
    // Within one inner channel of the target (ratio budget rounds per layer).
    expect(catro.macs.pruned / catro.macs.full).toBeLessThan(0.56);
    const fc = catro.graph.layers.find((l) => l.kind === 'dense');
    expect(fc && fc.kind === 'dense' && fc.units).toBe(2);

    const x = new Float32Array(5 * 64).map((_, i) => Math.sin(i * 0.37));
    const expected = tf.tidy(() => predict(catro.graph, catro.params, tf.tensor4d(x, [5, 8, 8, 1])).dataSync());
    const onnx = exportOnnx(catro.graph, catro.params, { labels: ['bottom-right', 'top-right'], classes: [3, 1], mean: [0.3], std: [0.3] });
    const model = await onnxClassifier(onnx);
    // ONNX takes NCHW; with one channel the layouts coincide.
    const got = await model.classify(x, { n: 5, c: 1, h: 8, w: 8 });
    await model.close();
    expect(got.length).toBe(10);
    for (let i = 0; i < got.length; i++) expect(Math.abs(got[i]! - expected[i]!)).toBeLessThan(1e-4);
  });

  it('keep ratios fix each named layer\'s width and leave the others whole; a wrong layer name is an error', async () => {
    const job = { ...input(), budget: { keep: { 's1b0.conv1': 0.5, 's3b0.conv1': 0.25 } } };
    const catro = await pruneSubtask(job, 'catro');
    expect(Object.fromEntries(catro.widths.widths)).toEqual({ 's1b0.conv1': 8, 's2b0.conv1': 32, 's3b0.conv1': 16 });
    const filters = (name: string) => {
      const l = catro.graph.layers.find((x) => x.name === name);
      return l && l.kind === 'conv' ? l.filters : undefined;
    };
    expect([filters('s1b0.conv1'), filters('s2b0.conv1'), filters('s3b0.conv1')]).toEqual([8, 32, 16]);
    const uniform = await pruneSubtask({ ...input(), budget: { keep: 0.5 } }, 'catro');
    expect(Object.fromEntries(uniform.widths.widths)).toEqual({ 's1b0.conv1': 8, 's2b0.conv1': 16, 's3b0.conv1': 32 });
    await expect(pruneSubtask({ ...input(), budget: { keep: { 'stem.conv': 0.5 } } }, 'catro')).rejects.toThrow(/"stem\.conv", which is not a prunable layer \(prunable: s1b0\.conv1, s2b0\.conv1, s3b0\.conv1\)/);
  });

  it('calibration "clean" measures the scatter on undegraded images; the default uses the training degradations', async () => {
    const mild = { jpeg: { min: 95, max: 101 }, blur: { min: 0, max: 1 }, awgn: { min: 0, max: 1 }, saltpepper: { min: 0, max: 1 } };
    const keepOf = async (calibration: 'clean' | 'degraded', degradations: SubtaskInput['degradations']) => {
      const job = input();
      const pruned = await pruneSubtask({ ...job, degradations, tuning: { ...job.tuning, calibration } }, 'catro');
      return JSON.stringify([...pruned.keep]);
    };
    // Clean calibration does not see the degradations at all; the default does.
    expect(await keepOf('clean', mild)).toBe(await keepOf('clean', input().degradations));
    expect(await keepOf('degraded', mild)).not.toBe(await keepOf('degraded', input().degradations));
  });

  it('baselines reuse CATRO\'s widths, so every selector lands on the same MACs', async () => {
    const job = input();
    const catro = await pruneSubtask(job, 'catro');
    const l1 = await pruneSubtask(job, 'l1', catro.widths.widths);
    const random = await pruneSubtask(job, 'random', catro.widths.widths);
    expect(l1.macs.pruned).toBe(catro.macs.pruned);
    expect(random.macs.pruned).toBe(catro.macs.pruned);
    await expect(pruneSubtask(job, 'l1')).rejects.toThrow(/widths CATRO chose/);
  });

  it('pruneMode residual narrows the residual streams too, for CATRO and the baselines alike', async () => {
    const job = input();
    const streamWidth = (g: typeof job.graph) => {
      const stem = g.layers.find((l) => l.name === 'stem.conv');
      return stem && stem.kind === 'conv' ? stem.filters : undefined;
    };
    const inner = await pruneSubtask(job, 'catro');
    expect(streamWidth(inner.graph)).toBe(16);
    const residualJob = { ...job, tuning: { ...job.tuning, pruneMode: 'residual' as const } };
    const residual = await pruneSubtask(residualJob, 'catro');
    expect(streamWidth(residual.graph)).toBeLessThan(16);
    expect(residual.macs.pruned / residual.macs.full).toBeLessThan(0.56);
    const l1 = await pruneSubtask(residualJob, 'l1', residual.widths.widths);
    expect(streamWidth(l1.graph)).toBe(streamWidth(residual.graph));
    expect(l1.macs.pruned).toBe(residual.macs.pruned);
  });

  it('fine-tunes the pruned model on the subtask with distillation and keeps its shapes', async () => {
    const job = input();
    const catro = await pruneSubtask(job, 'catro');
    const result = await fineTuneSubtask(job, catro);
    expect(result.stats.images).toBeGreaterThan(0);
    for (const [k, t] of catro.params) expect(result.params.get(k)!.shape).toEqual(t.shape);
    const moved = [...catro.params.keys()].some((k) => k.endsWith('/kernel') && result.params.get(k)!.data.some((v, i) => v !== catro.params.get(k)!.data[i]));
    expect(moved).toBe(true);
  });
});

describe('selectionSet', () => {
  it('holds every validation image clean and once under each degradation, in that order', async () => {
    const val = tinyData().train;
    const kinds = ['jpeg', 'blur', 'awgn', 'saltpepper'] as const;
    const ranges = { jpeg: { min: 10, max: 30 }, blur: { min: 10, max: 20 }, awgn: { min: 20, max: 40 }, saltpepper: { min: 5, max: 10 } };
    const sel = await selectionSet(val, kinds, ranges, 3);
    const px = val.height * val.width * val.channels;
    expect(sel.count).toBe(5 * val.count);
    expect(sel.images.length).toBe(5 * val.images.length);
    for (let part = 0; part < 5; part++) expect([...sel.labels.subarray(part * val.count, (part + 1) * val.count)]).toEqual([...val.labels]);
    expect(sel.images.subarray(0, val.count * px)).toEqual(val.images);
    // Each degraded part differs from the clean images, and the parts differ from each other.
    const parts = Array.from({ length: 5 }, (_, p) => Buffer.from(sel.images.subarray(p * val.count * px, (p + 1) * val.count * px)).toString('base64'));
    expect(new Set(parts).size).toBe(5);
    expect(await selectionSet(val, kinds, ranges, 3)).toEqual(sel);
  });
});
