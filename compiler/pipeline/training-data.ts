/**
 * The images a compile trains and selects on, as pure functions of the config and the data
 * set: the training/validation split, fixed degraded copies, the BN recalibration batches
 * and the repeated set of stage 4. The training stages, the subtask stages and the studies
 * in bench/ take them from here, so they all see the same images.
 */
import { degradeBatch } from '../../shared/degrade.ts';
import { DEGRADATION_KINDS, type DegradationKind } from '../../shared/manifest.ts';
import { batchToNHWC } from '../../shared/preprocess.ts';
import { Rng } from '../../shared/rng.ts';
import { gather, splitValidation, take } from '../data/split.ts';
import type { LabelledImages } from '../data/types.ts';
import type { CompileConfig, DegradationRanges } from './config.ts';
import type { ImageBatch } from './fusion.ts';

/** The training images a compile uses (trainLimit applied) and the held-out validation split. */
export function trainingSplits(config: CompileConfig, train: LabelledImages): { train: LabelledImages; val?: LabelledImages } {
  const { trainLimit, validation } = config.dataset;
  const limited = trainLimit && trainLimit < train.count ? take(train, trainLimit, config.seed) : train;
  if (validation === 0) return { train: limited };
  return splitValidation(limited, { fraction: validation, seed: config.seed });
}

/**
 * A copy of `data` where image i is degraded by kinds[i mod K] at a level drawn uniformly
 * from its range: a fixed validation set for models that must do well on degraded images.
 */
export function degradedCopy(data: LabelledImages, kinds: readonly DegradationKind[], ranges: DegradationRanges, seed: number): LabelledImages {
  const { height: h, width: w, channels: c } = data;
  const per = h * w * c;
  const images = new Uint8Array(data.images);
  kinds.forEach((kind, k) => {
    const rng = new Rng(seed).fork(0xd00 + k);
    const idx: number[] = [];
    for (let i = k; i < data.count; i += kinds.length) idx.push(i);
    if (idx.length === 0) return;
    const batch = new Uint8Array(idx.length * per);
    idx.forEach((i, j) => batch.set(data.images.subarray(i * per, (i + 1) * per), j * per));
    const levels = idx.map(() => rng.int(ranges[kind].min, ranges[kind].max));
    const out = degradeBatch(batch, idx.length, h, w, c, kind, levels, rng);
    idx.forEach((i, j) => images.set(out.subarray(j * per, (j + 1) * per), i * per));
  });
  return { ...data, split: `${data.split}-degraded`, images };
}

/**
 * `count` batches of `size` random training images (no augmentation), batch b degraded by
 * the b-th degradation in turn at uniformly drawn levels, normalized, NHWC.
 */
export function* recalibrationBatches(data: LabelledImages, count: number, size: number, ranges: DegradationRanges, norm: { mean: number[]; std: number[] }, seed: number): Generator<ImageBatch> {
  const { height: h, width: w, channels: c } = data;
  const per = h * w * c;
  for (let b = 0; b < count; b++) {
    const kind = DEGRADATION_KINDS[b % DEGRADATION_KINDS.length]!;
    const rng = new Rng(seed).fork(0x5ec0 + b);
    const n = Math.min(size, data.count);
    const batch = new Uint8Array(n * per);
    for (let j = 0; j < n; j++) {
      const i = rng.int(0, data.count - 1);
      batch.set(data.images.subarray(i * per, (i + 1) * per), j * per);
    }
    const levels = Array.from({ length: n }, () => rng.int(ranges[kind].min, ranges[kind].max));
    const degraded = degradeBatch(batch, n, h, w, c, kind, levels, rng);
    yield { x: batchToNHWC(degraded, n, h, w, c, norm), n };
  }
}

/**
 * The training set repeated `times` times. Stage 4 and its baselines see every image once
 * per degradation per epoch, as the published code does (one shuffled loader per
 * degradation, zipped): an epoch is N/B steps of K·B images, not N/(K·B).
 */
export function repeatSet(data: LabelledImages, times: number): LabelledImages {
  if (times === 1) return data;
  const indices = new Uint32Array(data.count * times);
  for (let i = 0; i < indices.length; i++) indices[i] = i % data.count;
  return gather(data, indices, `${data.split}×${times}`);
}
