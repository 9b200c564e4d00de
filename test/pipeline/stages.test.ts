import { describe, expect, it } from 'vitest';
import { beforeAll } from 'vitest';
import { trainerOptimizer, trainerSchedule } from '../../compiler/pipeline/stages.ts';
import { degradedCopy, recalibrationBatches, repeatSet, trainingSplits } from '../../compiler/pipeline/training-data.ts';
import { initBackend } from '../../compiler/tf/backend.ts';
import { learningRate } from '../../compiler/train/schedules.ts';
import { tinyConfig, tinyData } from './helpers/tiny.ts';

beforeAll(async () => {
  await initBackend('cpu');
});

const IDENTITY = { jpeg: { min: 101, max: 101 }, blur: { min: 0, max: 0 }, awgn: { min: 0, max: 0 }, saltpepper: { min: 0, max: 0 } };

describe('stage helpers', () => {
  it('training splits: limit, then a stratified validation split; none when validation is 0', () => {
    const config = tinyConfig();
    const { train } = tinyData();
    const s = trainingSplits(config, train);
    expect(s.train.count + s.val!.count).toBe(48);
    expect(s.val!.count).toBe(12);
    // 40 images, 10 per class; validation round(10 · 0.25) = 3 per class → 28 left to train on.
    expect(trainingSplits({ ...config, dataset: { ...config.dataset, trainLimit: 40 } }, train).train.count).toBe(28);
    expect(trainingSplits({ ...config, dataset: { ...config.dataset, validation: 0 } }, train)).toEqual({ train });
  });

  it('repeats the training set for stage 4 (every image once per degradation per epoch)', () => {
    const { train } = tinyData();
    const r = repeatSet(train, 4);
    expect(r.count).toBe(192);
    // Copy 3 starts at image 3·48; each image is 8·8 = 64 bytes.
    expect(r.images.subarray(3 * 48 * 64, 3 * 48 * 64 + 64)).toEqual(train.images.subarray(0, 64));
    expect(Array.from(r.labels.subarray(96, 100))).toEqual(Array.from(train.labels.subarray(0, 4)));
    expect(repeatSet(train, 1)).toBe(train);
  });

  it('degraded validation copy: image i gets degradation i mod K, deterministically', () => {
    const { train } = tinyData();
    const config = tinyConfig();
    const a = degradedCopy(train, ['awgn', 'saltpepper'], { ...config.degradations, awgn: { min: 20, max: 20 } }, 1);
    expect(a.images).toEqual(degradedCopy(train, ['awgn', 'saltpepper'], { ...config.degradations, awgn: { min: 20, max: 20 } }, 1).images);
    expect(a.labels).toEqual(train.labels);
    const changed = (i: number) => a.images.subarray(i * 64, (i + 1) * 64).some((v, j) => v !== train.images[i * 64 + j]);
    expect(changed(0)).toBe(true); // AWGN σ = 20 changes every image
    // Identity levels leave every image as it was.
    expect(degradedCopy(train, ['jpeg', 'blur', 'awgn', 'saltpepper'], IDENTITY, 1).images).toEqual(train.images);
    expect(train.images).toEqual(tinyData().train.images); // the source is not modified
  });

  it('recalibration batches: the requested count and size, normalized NHWC, no degradation at identity levels', () => {
    const { train } = tinyData();
    const norm = { mean: [0.5], std: [0.25] };
    const batches = [...recalibrationBatches(train, 5, 8, IDENTITY, norm, 0)];
    expect(batches.map((b) => [b.n, b.x.length])).toEqual(Array(5).fill([8, 8 * 8 * 8 * 1]));
    // Every value is (v/255 − 0.5)/0.25 for some training pixel value v.
    const pixels = new Set(Array.from(train.images, (v) => Math.fround((v / 255 - 0.5) / 0.25)));
    for (const v of batches[0]!.x) expect(pixels.has(v)).toBe(true);
  });

  it('maps config optimizers and schedules onto the trainer', () => {
    expect(trainerOptimizer({ type: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4 })).toEqual({ kind: 'sgd', momentum: 0.9, nesterov: true, weightDecay: 5e-4 });
    expect(trainerOptimizer({ type: 'radam', lr: 1e-3, betas: [0.9, 0.99], eps: 1e-8, weightDecay: 1e-4 })).toEqual({ kind: 'radam', beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 1e-4 });
    const clock = { totalSteps: 100, stepsPerEpoch: 10 };
    const step = trainerSchedule({ type: 'step', unit: 'fraction', milestones: [0.3, 0.7], gamma: 0.2 }, 1e-3);
    expect(learningRate(step, 29, clock)).toBeCloseTo(1e-3, 12);
    expect(learningRate(step, 30, clock)).toBeCloseTo(2e-4, 12);
    expect(learningRate(step, 70, clock)).toBeCloseTo(4e-5, 12);
    const cosine = trainerSchedule({ type: 'cosine', min: 0 }, 1e-3);
    expect(learningRate(cosine, 0, clock)).toBeCloseTo(1e-3, 12);
    expect(learningRate(cosine, 50, clock)).toBeCloseTo(5e-4, 6);
    const onecycle = trainerSchedule({ type: 'onecycle', peak: 0.1, pctStart: 0.15, divFactor: 25, finalDivFactor: 1e4 }, 0.1);
    expect(learningRate(onecycle, 0, clock)).toBeCloseTo(0.1 / 25, 9);
    expect(Math.max(...Array.from({ length: 100 }, (_, i) => learningRate(onecycle, i, clock)))).toBeCloseTo(0.1, 3);
    expect(trainerSchedule({ type: 'constant' }, 0.5)).toEqual({ kind: 'constant', lr: 0.5 });
  });
});
