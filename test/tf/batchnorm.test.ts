import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../shared/rng.ts';
import { initBackend } from '../../compiler/tf/backend.ts';
import { batchNormTrain } from '../../compiler/tf/ops.ts';
import { gaussianData, onBackend, relError } from './helpers.ts';

const SHAPES: [number, number, number, number][] = [
  [2, 5, 5, 3],
  [1, 4, 6, 8],
  [4, 3, 3, 16],
  [1, 1, 1, 4],
  [3, 7, 5, 2],
];
const EPS = 1e-5;

type Out = { y: Float32Array; mean: Float32Array; variance: Float32Array; dx: Float32Array; dgamma: Float32Array; dbeta: Float32Array };

/** Forward outputs and gradients of Σ y·r w.r.t. x, γ, β. */
function run(bn: typeof batchNormTrain, shape: number[], xd: Float32Array, gd: Float32Array, bd: Float32Array, rd: Float32Array): Out {
  return tf.tidy(() => {
    const c = shape[3]!;
    const x = tf.tensor4d(xd, shape as [number, number, number, number]), g = tf.tensor1d(gd), b = tf.tensor1d(bd), r = tf.tensor4d(rd, shape as [number, number, number, number]);
    const fwd = bn(x, g, b, EPS);
    const [dx, dg, db] = tf.grads((a: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(bn(a as tf.Tensor4D, gg as tf.Tensor1D, bb as tf.Tensor1D, EPS).y, r)))([x, g, b]);
    expect(fwd.mean.shape).toEqual([c]);
    return {
      y: fwd.y.dataSync() as Float32Array, mean: fwd.mean.dataSync() as Float32Array, variance: fwd.variance.dataSync() as Float32Array,
      dx: dx!.dataSync() as Float32Array, dgamma: dg!.dataSync() as Float32Array, dbeta: db!.dataSync() as Float32Array,
    };
  });
}

/** The plain composition (moments + batchNorm4d) whose stock gradient is the reference. */
function stockBatchNorm(x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number) {
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  return { y: tf.batchNorm4d(x, mean as tf.Tensor1D, variance as tf.Tensor1D, beta, gamma, eps), mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
}

describe('batchNormTrain (closed-form backward)', () => {
  beforeAll(async () => {
    await initBackend('cpu');
    await import('@tensorflow/tfjs-backend-wasm');
  });

  for (const shape of SHAPES) {
    it(`matches the stock cpu forward and gradient for ${shape.join('×')}`, async () => {
      const rng = new Rng(shape.reduce((a, b) => a * 17 + b, 3));
      const c = shape[3];
      // An offset mean and non-unit scale make the mean/variance terms of the gradient matter.
      const xd = gaussianData(rng, shape).map((v, i) => 3 * v + (i % c) - 1);
      const gd = gaussianData(rng, [c]), bd = gaussianData(rng, [c]), rd = gaussianData(rng, shape);
      const ref = await onBackend('cpu', () => run(stockBatchNorm, shape, xd, gd, bd, rd));
      for (const backend of ['cpu', 'wasm']) {
        const got = await onBackend(backend, () => run(batchNormTrain, shape, xd, gd, bd, rd));
        for (const k of Object.keys(ref) as (keyof Out)[]) {
          expect(relError(got[k], ref[k]), `${backend} ${k}`).toBeLessThanOrEqual(1e-4);
        }
      }
    });
  }

  it('runs without Tile kernels and leaks no tensors on wasm', async () => {
    await onBackend('wasm', async () => {
      const x = tf.randomNormal([4, 6, 6, 8]) as tf.Tensor4D;
      const g = tf.variable(tf.ones([8])), b = tf.variable(tf.zeros([8]));
      const step = () => tf.tidy(() => tf.variableGrads(() => tf.sum(tf.square(batchNormTrain(x, g as tf.Tensor1D, b as tf.Tensor1D, EPS).y)) as tf.Scalar).grads);
      tf.dispose(step());
      const before = tf.memory().numTensors;
      const profile = await tf.profile(() => { tf.dispose(step()); });
      expect(profile.kernels.map((k) => k.name)).not.toContain('Tile');
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([x, g, b]);
    });
  });
});
