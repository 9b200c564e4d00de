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
 * Per-channel mean over N, H, W of an NHWC tensor. On wasm a global average pool (XNNPACK)
 * followed by a mean over the batch: one fast pass, where a Sum/Mean over non-inner axes
 * transposes first and a MatMul with a row of ones repacks the whole tensor (measured per
 * 64×28×28×16 tensor: pool 0.1 ms, MatMul 3.3 ms, Mean 2.4 ms). Elsewhere (webgpu was
 * measured with it) the MatMul with ones.
 */
function channelMeans(t: tf.Tensor4D): tf.Tensor1D {
  const [n, h, w, c] = t.shape;
  if (tf.getBackend() === 'wasm') {
    const pooled = tf.avgPool(t, [h, w], 1, 'valid');
    return tf.mean(tf.reshape(pooled, [n, c]), 0) as tf.Tensor1D;
  }
  const rows = n * h * w;
  const sums = tf.matMul(tf.ones([1, rows]) as tf.Tensor2D, tf.reshape(t, [rows, c]) as tf.Tensor2D);
  return tf.reshape(tf.div(sums, rows), [c]) as tf.Tensor1D;
}

/**
 * Training-mode batch norm over N, H, W of an NHWC tensor, with a closed-form backward.
 *
 * Why: the stock gradient of moments + batchNorm goes through Tile and Sum kernels that
 * dominated a training step on wasm (docs/training-speed.md). The backward here is the
 * textbook closed form, dx = γ·σ⁻¹·(dy − mean(dy) − x̂·mean(dy·x̂)), done with per-channel
 * broadcasts and two per-channel means.
 */
export function batchNormTrain(x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): BatchNormTrainResult {
  const [n, h, w] = x.shape;
  const rows = n * h * w;
  // The batch statistics feed only the running averages, not the loss, so computing them
  // outside the custom gradient keeps them off the backward path.
  const { mean, variance } = tf.tidy(() => {
    const m = channelMeans(x);
    return { mean: m, variance: channelMeans(tf.squaredDifference(x, m) as tf.Tensor4D) };
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
        const xHat = tf.mul(tf.sub(xs, mu), is) as tf.Tensor4D;
        const meanDy = channelMeans(dy);
        const meanDyXHat = channelMeans(tf.mul(dy, xHat) as tf.Tensor4D);
        const scale = tf.mul(gs, is);
        const dx = tf.mul(tf.sub(tf.sub(dy, meanDy), tf.mul(xHat, meanDyXHat)), scale);
        return [dx, tf.mul(meanDyXHat, rows), tf.mul(meanDy, rows)];
      },
    };
  });
  const y = normalize(x, gamma, beta);
  return { y, mean, variance };
}
