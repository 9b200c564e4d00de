/**
 * Deterministic subsets of a LabelledImages: a stratified validation hold-out, a class
 * subset (for per-subtask compiles) and a small balanced sample (for quick modes). All
 * results keep the source order of the examples they contain.
 */
import { Rng } from '../../shared/rng.ts';
import type { LabelledImages } from './types.ts';

/** The examples at `indices` (in that order) as a new set with its own copies of the bytes. */
export function gather(ds: LabelledImages, indices: ArrayLike<number>, split = ds.split): LabelledImages {
  const pixelBytes = ds.height * ds.width * ds.channels;
  const images = new Uint8Array(indices.length * pixelBytes);
  const labels = new Uint16Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const src = indices[i]!;
    images.set(ds.images.subarray(src * pixelBytes, (src + 1) * pixelBytes), i * pixelBytes);
    labels[i] = ds.labels[src]!;
  }
  return { ...ds, split, count: indices.length, images, labels, classNames: [...ds.classNames] };
}

/** Example indices per class, each list in source order. */
export function indicesByClass(ds: LabelledImages): number[][] {
  const byClass: number[][] = ds.classNames.map(() => []);
  for (let i = 0; i < ds.count; i++) byClass[ds.labels[i]!]!.push(i);
  return byClass;
}

function shuffleInPlace(values: number[], rng: Rng): void {
  for (let i = values.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [values[i], values[j]] = [values[j]!, values[i]!];
  }
}

export type ValidationSpec = { seed: number } & ({ fraction: number; perClass?: never } | { perClass: number; fraction?: never });

/**
 * Holds out a validation set with the same class balance as `train`: `fraction` of each
 * class (rounded), or exactly `perClass` examples of each class. Same seed, same split.
 */
export function splitValidation(train: LabelledImages, spec: ValidationSpec): { train: LabelledImages; val: LabelledImages } {
  if (spec.fraction !== undefined && !(spec.fraction > 0 && spec.fraction < 1)) {
    throw new RangeError(`validation fraction must be in (0, 1), got ${spec.fraction}`);
  }
  if (spec.perClass !== undefined && !(Number.isInteger(spec.perClass) && spec.perClass > 0)) {
    throw new RangeError(`validation perClass must be a positive integer, got ${spec.perClass}`);
  }
  const rng = new Rng(spec.seed);
  const inVal = new Uint8Array(train.count);
  for (const [label, members] of indicesByClass(train).entries()) {
    if (members.length === 0) continue;
    const held = spec.perClass ?? Math.round(spec.fraction! * members.length);
    if (held >= members.length) {
      throw new RangeError(`class "${train.classNames[label]}" of ${train.name} has ${members.length} examples; cannot hold out ${held} for validation and keep any for training`);
    }
    // Each class draws from its own stream, so one class's size does not move another's split.
    shuffleInPlace(members, rng.fork(label));
    for (let k = 0; k < held; k++) inVal[members[k]!] = 1;
  }
  const trainIdx: number[] = [];
  const valIdx: number[] = [];
  for (let i = 0; i < train.count; i++) (inVal[i] ? valIdx : trainIdx).push(i);
  return { train: gather(train, trainIdx, 'train'), val: gather(train, valIdx, 'val') };
}

/**
 * Keeps only the examples of `classIndices`, relabelled 0..k-1 in the order given (so
 * `classNames[j]` is the source's `classNames[classIndices[j]]`).
 */
export function subsetClasses(ds: LabelledImages, classIndices: number[]): LabelledImages {
  if (classIndices.length === 0) throw new RangeError('subsetClasses needs at least one class');
  const newLabel = new Int32Array(ds.classNames.length).fill(-1);
  for (const [j, c] of classIndices.entries()) {
    if (!Number.isInteger(c) || c < 0 || c >= ds.classNames.length) {
      throw new RangeError(`class index ${c} is out of range: ${ds.name} has ${ds.classNames.length} classes`);
    }
    if (newLabel[c] !== -1) throw new RangeError(`class index ${c} is listed twice`);
    newLabel[c] = j;
  }
  const kept: number[] = [];
  for (let i = 0; i < ds.count; i++) if (newLabel[ds.labels[i]!] !== -1) kept.push(i);
  const out = gather(ds, kept);
  for (let i = 0; i < out.count; i++) out.labels[i] = newLabel[out.labels[i]!]!;
  out.classNames = classIndices.map((c) => ds.classNames[c]!);
  return out;
}

/**
 * A seeded sample of `n` examples, balanced across classes (round-robin over each class's
 * shuffled examples), so a quick run still sees every class. n ≥ count returns everything.
 */
export function take(ds: LabelledImages, n: number, seed: number): LabelledImages {
  if (!(Number.isInteger(n) && n > 0)) throw new RangeError(`take needs a positive integer count, got ${n}`);
  if (n >= ds.count) return gather(ds, Array.from({ length: ds.count }, (_, i) => i));
  const rng = new Rng(seed);
  const pools = indicesByClass(ds);
  pools.forEach((pool, label) => shuffleInPlace(pool, rng.fork(label)));
  const chosen: number[] = [];
  for (let round = 0; chosen.length < n; round++) {
    for (const pool of pools) {
      if (round < pool.length && chosen.length < n) chosen.push(pool[round]!);
    }
  }
  return gather(ds, chosen.sort((a, b) => a - b));
}
