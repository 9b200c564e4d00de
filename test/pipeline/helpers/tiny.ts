/** A tiny synthetic data set and compile config: a real end-to-end compile in seconds. */
import { dataChecksum } from '../../../compiler/pipeline/compile.ts';
import { parseCompileConfig, type CompileConfig } from '../../../compiler/pipeline/config.ts';
import type { CompileData, LabelledImages } from '../../../compiler/data/types.ts';
import { Rng } from '../../../shared/rng.ts';

const SIZE = 8;

/** 8×8 grey images; class q has its bright quadrant at q (0 top-left … 3 bottom-right), plus noise. */
function quadrants(split: string, count: number, seed: number): LabelledImages {
  const rng = new Rng(seed);
  const images = new Uint8Array(count * SIZE * SIZE);
  const labels = new Uint16Array(count);
  for (let i = 0; i < count; i++) {
    const q = i % 4;
    labels[i] = q;
    for (let y = 0; y < SIZE; y++) {
      for (let x = 0; x < SIZE; x++) {
        const inQuadrant = (y < SIZE / 2 ? 0 : 2) + (x < SIZE / 2 ? 0 : 1) === q;
        images[(i * SIZE + y) * SIZE + x] = Math.max(0, Math.min(255, (inQuadrant ? 200 : 40) + Math.round(rng.gaussian() * 20)));
      }
    }
  }
  return { name: 'quadrants', split, count, height: SIZE, width: SIZE, channels: 1, images, labels, classNames: ['top-left', 'top-right', 'bottom-left', 'bottom-right'] };
}

export function tinyData(): CompileData {
  const train = quadrants('train', 48, 1);
  const test = quadrants('test', 16, 2);
  return { train, test, checksums: { train: dataChecksum(train), test: dataChecksum(test) } };
}

export function tinyConfig(): CompileConfig {
  const fine = { epochs: 1, batchSize: 8, optimizer: { type: 'radam', lr: 1e-3, weightDecay: 1e-4 }, schedule: { type: 'cosine' } };
  return parseCompileConfig(
    {
      name: 'tiny',
      dataset: { name: 'mnist', validation: 0.25, mean: [0.3], std: [0.3] },
      model: { arch: 'resnet', depth: 8, width: 0.25, shortcut: 'projection', head: 'pool2x2' },
      seed: 3,
      degradations: { jpeg: { min: 20, max: 101 }, blur: { min: 0, max: 10 }, awgn: { min: 0, max: 20 }, saltpepper: { min: 0, max: 5 } },
      augmentation: { flip: false, pad: 1, cutout: 2 },
      stages: {
        base: { epochs: 2, batchSize: 8, optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 }, schedule: { type: 'onecycle', peak: 0.05, pctStart: 0.3 }, loss: { ce: 1 } },
        degradation: { ...fine, loss: { ce: 1, feature: 1 } },
        fusion: { bn: 'recalibrate', recalibrationBatches: 4, recalibrationBatchSize: 8 },
        distill: { ...fine, batchSize: 2, schedule: { type: 'step', unit: 'fraction', milestones: [0.5], gamma: 0.2 }, loss: { ce: 0.1, feature: 1 } },
      },
      evaluation: { step: 1, seed: 0, batchSize: 8, quick: { levels: 2, samples: 16 } },
    },
    'tiny config',
  );
}
