/**
 * Composite training ops whose gradients the stock tfjs backends compute slowly.
 * The interpreter (compiler/nn) calls these instead of composing tfjs ops itself, so a
 * faster implementation here speeds up every model.
 */
import * as tf from '@tensorflow/tfjs-core';

export interface BatchNormTrainResult {
  y: tf.Tensor4D;
  /** Per-channel batch mean and (biased) variance, for the running-statistics update. */
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
}

/** Training-mode batch norm over N, H, W of an NHWC tensor. */
export function batchNormTrain(x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): BatchNormTrainResult {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, [0, 1, 2]);
    const y = tf.batchNorm4d(x, mean, variance, beta, gamma, eps);
    return { y, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
  });
}
