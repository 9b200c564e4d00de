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

/**
 * Per-channel sum of a [rows, C] matrix as a [1, C] product with a row of ones: the
 * matrix product runs on XNNPACK on wasm, while a Sum over a non-inner axis transposes.
 */
function columnSums(m: tf.Tensor2D, ones: tf.Tensor2D): tf.Tensor1D {
  return tf.reshape(tf.matMul(ones, m), [m.shape[1]]);
}

/**
 * Training-mode batch norm over N, H, W of an NHWC tensor, with a closed-form backward.
 *
 * Why: the stock gradient of moments + batchNorm goes through Tile and Sum kernels that
 * dominated a training step on wasm (docs/training-speed.md). The backward here is the
 * textbook closed form, dx = γ·σ⁻¹·(dy − mean(dy) − x̂·mean(dy·x̂)), done with per-channel
 * broadcasts and two column sums.
 */
export function batchNormTrain(x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): BatchNormTrainResult {
  const [n, h, w, c] = x.shape;
  const rows = n * h * w;
  // The batch statistics feed only the running averages, not the loss, so computing them
  // outside the custom gradient keeps them off the backward path.
  const { mean, variance } = tf.tidy(() => {
    const ones = tf.ones([1, rows]) as tf.Tensor2D;
    const flat = tf.reshape(x, [rows, c]) as tf.Tensor2D;
    const m = tf.div(columnSums(flat, ones), rows) as tf.Tensor1D;
    const v = tf.div(columnSums(tf.squaredDifference(flat, m) as tf.Tensor2D, ones), rows) as tf.Tensor1D;
    return { mean: m, variance: v };
  });
  const normalize = tf.customGrad<tf.Tensor4D>((...args) => {
    const [xt, g, b, save] = args as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    const invStd = tf.rsqrt(tf.add(variance, eps)) as tf.Tensor1D;
    const y = tf.batchNorm4d(xt, mean, variance, b, g, eps);
    // Everything the backward reads must be saved: unsaved forward tensors are disposed.
    save([xt, g, invStd, mean]);
    return {
      value: y,
      gradFunc: (dy, saved) => {
        const [xs, gs, is, mu] = saved as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D];
        const ones = tf.ones([1, rows]) as tf.Tensor2D;
        const dyFlat = tf.reshape(dy, [rows, c]) as tf.Tensor2D;
        const xHat = tf.mul(tf.sub(tf.reshape(xs, [rows, c]), mu), is) as tf.Tensor2D;
        const dBeta = columnSums(dyFlat, ones);
        const dGamma = columnSums(tf.mul(dyFlat, xHat) as tf.Tensor2D, ones);
        const scale = tf.mul(gs, is);
        // dx = scale·dy − (scale·dGamma/rows)·x̂ − scale·dBeta/rows
        const dx = tf.sub(
          tf.mul(dyFlat, scale),
          tf.add(tf.mul(xHat, tf.div(tf.mul(scale, dGamma), rows)), tf.div(tf.mul(scale, dBeta), rows)),
        );
        return [tf.reshape(dx, [n, h, w, c]), dGamma, dBeta];
      },
    };
  });
  const y = normalize(x, gamma, beta);
  return { y, mean, variance };
}
