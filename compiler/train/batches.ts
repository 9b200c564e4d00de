/**
 * Turning a list of example indices into a training batch. Everything random is drawn
 * from an Rng derived from (epoch seed, batch index) alone, so a batch's contents do not
 * depend on where it was prepared (main thread or worker) or on whether the run was
 * resumed: that is what makes resumed training bit-identical.
 */
import { Rng } from '../../shared/rng.ts';
import type { DegradationKind } from '../../shared/manifest.ts';
import {
  type AugmentConfig,
  type BatchDims,
  applyCrop,
  applyCutout,
  applyFlip,
  normalizeBatch,
  sampleCutout,
  sampleFlipCrop,
} from './augment.ts';

/** What to do to every batch; plain data so it can be posted to a worker. */
export interface BatchRecipe {
  augment: AugmentConfig;
  /**
   * Degradations: the batch is split into `kinds.length` equal sub-batches, sub-batch k
   * degraded by kinds[k] at a level drawn uniformly per image from `levels[kind]`
   * (default: shared/degrade.ts's DEGRADATION_LEVELS).
   */
  degrade?: { kinds: DegradationKind[]; levels?: Partial<Record<DegradationKind, { min: number; max: number }>> };
  /** Also return the clean images (same flip and crop, no degradation, no Cutout), e.g. for a teacher. */
  keepClean?: boolean;
  mean: number[];
  std: number[];
}

export interface ImageSource {
  images: Uint8Array;
  labels: Uint16Array;
  count: number;
  height: number;
  width: number;
  channels: 1 | 3;
}

export interface PreparedBatch {
  /** Epoch-local batch index. */
  index: number;
  n: number;
  /** Normalized NHWC float32, what the student sees. */
  x: Float32Array;
  /** Normalized clean NHWC float32 (only with `keepClean`). */
  clean?: Float32Array;
  labels: Int32Array;
  /** Degradation level per image (only with `degrade`). */
  levels?: Int16Array;
  /** Milliseconds spent preparing this batch, wherever it ran. */
  prepMs: number;
}

/** The degradation entry points; loaded on demand so plain training does not need them. */
export interface Degrader {
  degradeBatch(images: Uint8Array, n: number, h: number, w: number, c: number, kind: DegradationKind, levels: ArrayLike<number>, rng: Rng): Uint8Array;
  DEGRADATION_LEVELS: Record<DegradationKind, { min: number; max: number }>;
}

export async function loadDegrader(): Promise<Degrader> {
  return (await import('../../shared/degrade.ts')) as Degrader;
}

/** Stream ids under an epoch's Rng: 0 shuffles, b + 1 prepares batch b. */
export function epochOrder(count: number, epochSeed: number): Uint32Array {
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  const rng = new Rng(epochSeed).fork(0);
  for (let i = count - 1; i > 0; i--) {
    const j = rng.int(0, i);
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}

export function batchRng(epochSeed: number, batchIndex: number): Rng {
  return new Rng(epochSeed).fork(batchIndex + 1);
}

/** Gathers, augments, degrades and normalizes one batch. Order as in FusionDistill: flip, degrade, crop, normalize, Cutout. */
export function prepareBatch(
  source: ImageSource,
  indices: ArrayLike<number>,
  batchIndex: number,
  epochSeed: number,
  recipe: BatchRecipe,
  degrader?: Degrader,
): PreparedBatch {
  const started = performance.now();
  const n = indices.length;
  const { height, width, channels } = source;
  const dims: BatchDims = { n, height, width, channels };
  const pixels = height * width * channels;
  const gathered = new Uint8Array(n * pixels);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const idx = indices[i]!;
    gathered.set(source.images.subarray(idx * pixels, (idx + 1) * pixels), i * pixels);
    labels[i] = source.labels[idx]!;
  }
  const rng = batchRng(epochSeed, batchIndex);
  const draw = sampleFlipCrop(n, recipe.augment, rng);
  const flipped = recipe.augment.flip ? applyFlip(gathered, dims, draw.flip) : gathered;
  let student = flipped;
  let levels: Int16Array | undefined;
  if (recipe.degrade) {
    if (!degrader) throw new Error('prepareBatch: the recipe degrades images but no degrader was loaded');
    ({ images: student, levels } = degradeSubBatches(flipped, dims, recipe.degrade, rng, degrader));
  }
  const cropped = (img: Uint8Array) => (recipe.augment.pad > 0 ? applyCrop(img, dims, draw.dy, draw.dx) : img);
  const x = normalizeBatch(cropped(student), channels, recipe.mean, recipe.std);
  if (recipe.augment.cutout > 0) {
    const { cy, cx } = sampleCutout(n, dims, rng);
    applyCutout(x, dims, recipe.augment.cutout, cy, cx);
  }
  const clean = recipe.keepClean ? normalizeBatch(cropped(flipped), channels, recipe.mean, recipe.std) : undefined;
  return { index: batchIndex, n, x, clean, labels, levels, prepMs: performance.now() - started };
}

function degradeSubBatches(
  images: Uint8Array,
  dims: BatchDims,
  degrade: NonNullable<BatchRecipe['degrade']>,
  rng: Rng,
  degrader: Degrader,
): { images: Uint8Array; levels: Int16Array } {
  const { n, height, width, channels } = dims;
  const parts = degrade.kinds.length;
  if (parts === 0 || n % parts !== 0) throw new Error(`batch of ${n} cannot be split into ${parts} equal degradation sub-batches`);
  const size = n / parts;
  const pixels = height * width * channels;
  const out = new Uint8Array(images.length);
  const levels = new Int16Array(n);
  degrade.kinds.forEach((kind, k) => {
    const range = degrade.levels?.[kind] ?? degrader.DEGRADATION_LEVELS[kind];
    const kindRng = rng.fork(1000 + k);
    const part = levels.subarray(k * size, (k + 1) * size);
    for (let i = 0; i < size; i++) part[i] = kindRng.int(range.min, range.max);
    const degraded = degrader.degradeBatch(images.subarray(k * size * pixels, (k + 1) * size * pixels), size, height, width, channels, kind, part, kindRng);
    out.set(degraded, k * size * pixels);
  });
  return { images: out, levels };
}
