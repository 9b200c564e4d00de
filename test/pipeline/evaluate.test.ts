import { describe, expect, it } from 'vitest';
import type { LabelledImages } from '../../compiler/data/types.ts';
import type { EvaluationConfig } from '../../compiler/pipeline/config.ts';
import { argmaxCorrect, evaluate, evaluateAll, onnxClassifier, toAccuracyReport, type Classifier } from '../../compiler/pipeline/evaluate.ts';
import { buildGraph } from '../../compiler/graph/arch.ts';
import { initParams } from '../../compiler/graph/builders.ts';
import { exportOnnx } from '../../compiler/onnx/export.ts';
import { Rng } from '../../shared/rng.ts';
import { DEGRADATION_KINDS } from '../../shared/manifest.ts';

const H = 6;
const W = 6;
const MEAN = [0.5, 0.2, 0.1];
const STD = [0.25, 0.5, 0.2];
/** 3-channel images whose label is written only in channel 1: 40·label + 20 everywhere; channel 0 noise-free 0, channel 2 255. */
function testSet(count: number): LabelledImages {
  const images = new Uint8Array(count * H * W * 3);
  const labels = new Uint16Array(count);
  for (let i = 0; i < count; i++) {
    labels[i] = (i * 7) % 6;
    for (let p = 0; p < H * W; p++) {
      images[(i * H * W + p) * 3 + 1] = 40 * labels[i]! + 20;
      images[(i * H * W + p) * 3 + 2] = 255;
    }
  }
  return { name: 'synthetic', split: 'test', count, height: H, width: W, channels: 3, images, labels, classNames: ['a', 'b', 'c', 'd', 'e', 'f'] };
}

/** Reads plane 1 of the NCHW input, undoes the normalization and reads off the label from the mean value. */
const planeReader: Classifier = async (input, { n, c, h, w }) => {
  expect(c).toBe(3);
  const logits = new Float32Array(n * 6);
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (let p = 0; p < h * w; p++) sum += (input[(i * c + 1) * h * w + p]! * STD[1]! + MEAN[1]!) * 255;
    const label = Math.min(5, Math.max(0, Math.round((sum / (h * w) - 20) / 40)));
    logits[i * 6 + label] = 1;
  }
  return logits;
};

const ranges = { jpeg: { min: 1, max: 101 }, blur: { min: 0, max: 50 }, awgn: { min: 0, max: 50 }, saltpepper: { min: 0, max: 25 } };
const evaluation = (over: Partial<EvaluationConfig> = {}): EvaluationConfig => ({ step: 25, seed: 0, batchSize: 7, quick: { levels: 3, samples: 10 }, ...over });

describe('evaluation protocol', () => {
  it('evaluates every level of the grid, clean first, and summarizes by mean', async () => {
    const result = await evaluate(planeReader, testSet(30), { ranges, evaluation: evaluation(), quick: false, mean: MEAN, std: STD });
    const levels = (k: string) => result.points.filter((p) => p.kind === k).map((p) => p.level);
    expect(result.points[0]).toEqual({ kind: 'clean', level: null, correct: 30, samples: 30, accuracy: 1 });
    expect(levels('jpeg')).toEqual([1, 26, 51, 76, 101]);
    expect(levels('blur')).toEqual([0, 25, 50]);
    expect(levels('saltpepper')).toEqual([0, 25]);
    for (const kind of DEGRADATION_KINDS) {
      const pts = result.points.filter((p) => p.kind === kind);
      expect(result.summary[kind]).toBeCloseTo(pts.reduce((s, p) => s + p.accuracy, 0) / pts.length, 12);
    }
    expect(result.summary.degradedMean).toBeCloseTo(DEGRADATION_KINDS.reduce((s, k) => s + result.summary[k]!, 0) / 4, 12);
    expect(result.summary.samples).toBe(30);
    // Identity levels (no compression, σ = 0, p = 0) leave the images as they are.
    for (const [kind, level] of [['jpeg', 101], ['blur', 0], ['awgn', 0], ['saltpepper', 0]] as const) {
      expect(result.points.find((p) => p.kind === kind && p.level === level)!.accuracy, kind).toBe(1);
    }
    // Heavy salt-and-pepper (p = 0.25) moves the plane mean enough to fool the reader on some images.
    expect(result.points.find((p) => p.kind === 'saltpepper' && p.level === 25)!.accuracy).toBeLessThan(1);
  });

  it('is deterministic, independent of the batch size, and seeded per level', async () => {
    const run = (over: Partial<EvaluationConfig>) => evaluate(planeReader, testSet(30), { ranges, evaluation: evaluation(over), quick: false, mean: MEAN, std: STD });
    const a = await run({});
    expect((await run({})).points).toEqual(a.points);
    expect((await run({ batchSize: 30 })).points).toEqual(a.points);
    // Another seed changes the random degradations' outcome somewhere but not the identity levels.
    const b = await run({ seed: 1 });
    expect(b.points.map((p) => p.correct)).not.toEqual(a.points.map((p) => p.correct));
    expect(b.points.find((p) => p.kind === 'awgn' && p.level === 0)).toEqual(a.points.find((p) => p.kind === 'awgn' && p.level === 0));
  });

  it('quick mode samples the levels and the test set', async () => {
    const seen: string[] = [];
    const result = await evaluate(planeReader, testSet(30), { ranges, evaluation: evaluation(), quick: true, mean: MEAN, std: STD, onPoint: (p) => seen.push(`${p.kind}@${p.level}`) });
    expect(result.summary.samples).toBe(10);
    expect(result.points.filter((p) => p.kind === 'jpeg').map((p) => p.level)).toEqual([1, 51, 101]);
    expect(result.points.filter((p) => p.kind === 'saltpepper').map((p) => p.level)).toEqual([0, 13, 25]);
    expect(seen).toHaveLength(1 + 4 * 3);
    expect(result.points.every((p) => p.samples === 10)).toBe(true);
  });

  it('evaluates a subset of degradations, with or without clean images', async () => {
    const result = await evaluate(planeReader, testSet(12), { ranges: { blur: ranges.blur }, kinds: ['blur'], clean: false, evaluation: evaluation(), quick: false, mean: MEAN, std: STD });
    expect(result.points.map((p) => `${p.kind}@${p.level}`)).toEqual(['blur@0', 'blur@25', 'blur@50']);
    expect(result.summary).toMatchObject({ clean: null, jpeg: null, awgn: null, saltpepper: null, degradedMean: null, blur: 1, samples: 12 });
    expect(() => toAccuracyReport(result.summary)).toThrow(/did not cover/);
    await expect(evaluate(planeReader, testSet(4), { ranges: {}, kinds: ['awgn'], evaluation: evaluation(), quick: false, mean: MEAN, std: STD })).rejects.toThrow(/no level range for awgn/);
  });

  it('fails clearly on a model with the wrong number of outputs', async () => {
    const wrong: Classifier = async (_x, { n }) => new Float32Array(n * 5);
    await expect(evaluate(wrong, testSet(4), { ranges, evaluation: evaluation(), quick: false, mean: MEAN, std: STD })).rejects.toThrow(/returned 20 logits for 4 images of 6 classes/);
  });

  it('argmax counts ties for the first class', () => {
    const logits = Float32Array.from([0, 2, 1, /**/ 3, 3, 0, /**/ -1, -2, -0.5]);
    expect(argmaxCorrect(logits, [1, 0, 2], 0, 3, 3)).toBe(3);
    expect(argmaxCorrect(logits, [9, 9, 1, 0, 2], 2, 3, 3)).toBe(3);
    expect(argmaxCorrect(logits, [0, 1, 0], 0, 3, 3)).toBe(0);
  });
});

describe('several models at once, and the multi-threaded classifier', () => {
  const onnxRanges = { jpeg: { min: 1, max: 101 }, blur: { min: 0, max: 50 }, awgn: { min: 0, max: 50 }, saltpepper: { min: 0, max: 25 } };
  const norm = { mean: [0.3], std: [0.3] };
  /** 12×12 grey noise images with arbitrary labels: the models' answers are what is compared. */
  function noise(count: number): LabelledImages {
    const rng = new Rng(9);
    const images = new Uint8Array(count * 144).map(() => Math.floor(rng.float() * 256));
    const labels = new Uint16Array(count).map((_, i) => i % 3);
    return { name: 'noise', split: 'test', count, height: 12, width: 12, channels: 1, images, labels, classNames: ['a', 'b', 'c'] };
  }
  function model(seed: number): Uint8Array {
    const graph = buildGraph({ arch: 'resnet8', width: 0.5, input: [12, 12, 1], classes: 3, shortcut: 'projection' });
    return exportOnnx(graph, initParams(graph, new Rng(seed)), { labels: ['a', 'b', 'c'], ...norm });
  }

  it('evaluateAll gives each model exactly what evaluate() gives it alone', async () => {
    const test = noise(23);
    const opts = { ranges: onnxRanges, evaluation: evaluation({ seed: 4 }), quick: false, ...norm };
    const models = await Promise.all([1, 2, 3].map((s) => onnxClassifier(model(s), 1)));
    try {
      const alone = [];
      for (const m of models) alone.push(await evaluate(m.classify, test, opts));
      // The three random models disagree somewhere, so a mix-up of models would show.
      expect(new Set(alone.map((r) => JSON.stringify(r.points.map((p) => p.correct)))).size).toBeGreaterThan(1);
      expect(await evaluateAll(models.map((m) => m.classify), test, opts)).toEqual(alone);
    } finally {
      await Promise.all(models.map((m) => m.close()));
    }
  }, 60_000);

  it('onnxClassifier on 2 threads answers with the logits of 1 thread, bit for bit', async () => {
    const m = model(5);
    const one = await onnxClassifier(m, 1);
    const two = await onnxClassifier(m, 2);
    try {
      const rng = new Rng(2);
      for (const n of [1, 7, 250]) {
        const input = new Float32Array(n * 144).map(() => rng.gaussian());
        const expected = await one.classify(input, { n, c: 1, h: 12, w: 12 });
        expect(expected.length).toBe(n * 3);
        expect(await two.classify(input, { n, c: 1, h: 12, w: 12 })).toEqual(expected);
      }
    } finally {
      await one.close();
      await two.close();
    }
  }, 60_000);
});
