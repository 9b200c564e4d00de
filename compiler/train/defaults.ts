/**
 * Per-data-set training defaults: normalization (the usual published statistics of the
 * training split) and augmentation. Digits are not flipped: a mirrored 2 is not a 2.
 */
import type { AugmentConfig } from './augment.ts';

export interface DatasetTrainingDefaults {
  mean: number[];
  std: number[];
  augment: AugmentConfig;
}

export const DATASET_TRAINING_DEFAULTS: Record<'fashion-mnist' | 'mnist' | 'cifar10' | 'cifar100', DatasetTrainingDefaults> = {
  'fashion-mnist': { mean: [0.286], std: [0.353], augment: { flip: true, pad: 4, cutout: 0 } },
  mnist: { mean: [0.1307], std: [0.3081], augment: { flip: false, pad: 2, cutout: 0 } },
  cifar10: { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616], augment: { flip: true, pad: 4, cutout: 0 } },
  cifar100: { mean: [0.5071, 0.4865, 0.4409], std: [0.2673, 0.2564, 0.2762], augment: { flip: true, pad: 4, cutout: 0 } },
};

/** Per-channel mean and std of pixel/255 over a uint8 NHWC set (for data sets without published statistics). */
export function channelStats(images: Uint8Array, channels: number): { mean: number[]; std: number[] } {
  const sum = new Float64Array(channels);
  const sq = new Float64Array(channels);
  for (let i = 0; i < images.length; i++) {
    const v = images[i]! / 255;
    sum[i % channels] += v;
    sq[i % channels] += v * v;
  }
  const n = images.length / channels;
  const mean = [...sum].map((s) => s / n);
  const std = [...sq].map((s, k) => Math.sqrt(Math.max(s / n - mean[k]! ** 2, 1e-12)));
  return { mean, std };
}
