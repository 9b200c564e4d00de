import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../../shared/rng.ts';

/** Seeded standard-normal data, so a failing case can be replayed. */
export function gaussianData(rng: Rng, shape: readonly number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.gaussian();
  return out;
}

/** Runs f with `backend` active and returns plain arrays (tensors are disposed). */
export async function onBackend<T>(backend: string, f: () => T): Promise<T> {
  const previous = tf.getBackend();
  await tf.setBackend(backend);
  try {
    return f();
  } finally {
    if (previous) await tf.setBackend(previous);
  }
}

/** Max |a − b| divided by max(1, max |b|): the "relative to magnitude" error of the brief. */
export function relError(a: Float32Array | number[], b: Float32Array | number[]): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let diff = 0;
  let mag = 1;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    mag = Math.max(mag, Math.abs(b[i]!));
  }
  return diff / mag;
}
