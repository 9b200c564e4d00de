/**
 * Convolution gradients expressed as forward convolutions and matrix products.
 *
 * Why: tfjs-backend-wasm has no Conv2DBackpropFilter kernel and its Conv2DBackpropInput is
 * a naive loop, while its forward Conv2D and MatMul run on XNNPACK. Rewriting both
 * gradients in terms of the fast forward kernels is what makes training on wasm usable
 * (see docs/training-speed.md). The functions are plain tfjs ops, so they run on every
 * backend; `registerFastConvGradient` decides on which backends they replace the stock one.
 */
import * as tf from '@tensorflow/tfjs-core';

type Pads = { top: number; bottom: number; left: number; right: number };

export interface Conv2DGeometry {
  /** NHWC input shape. */
  xShape: [number, number, number, number];
  /** HWIO filter shape. */
  filterShape: [number, number, number, number];
  strides: [number, number];
  pads: Pads;
  /** Output spatial size. */
  outHeight: number;
  outWidth: number;
}

/** Resolve tfjs conv attributes (pad 'same' | 'valid' | number | explicit) to concrete pads. */
export function convGeometry(
  xShape: readonly number[],
  filterShape: readonly number[],
  strides: number | [number, number],
  pad: 'same' | 'valid' | number | number[][],
  dimRoundingMode?: 'floor' | 'round' | 'ceil',
): Conv2DGeometry {
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    strides,
    1,
    pad as tf.backend_util.ExplicitPadding,
    dimRoundingMode,
  );
  const p = info.padInfo;
  return {
    xShape: [...xShape] as Conv2DGeometry['xShape'],
    filterShape: [...filterShape] as Conv2DGeometry['filterShape'],
    strides: [info.strideHeight, info.strideWidth],
    pads: { top: p.top, bottom: p.bottom, left: p.left, right: p.right },
    outHeight: info.outHeight,
    outWidth: info.outWidth,
  };
}

/**
 * Insert (stride - 1) zeros after every row and column of an NHWC tensor (so the result has
 * h·sh rows, the last sh − 1 of them zero; callers account for them in their padding, which
 * saves a Slice, a slow generic loop on wasm). Uses rank-4 pads only: tfjs-backend-webgpu 4.22
 * generates invalid WGSL for rank-6 Pad ("cannot index type 'vec6'"), and an invalid pipeline
 * silently drops the whole command buffer.
 */
function dilateSpatial(t: tf.Tensor4D, sh: number, sw: number): tf.Tensor4D {
  if (sh === 1 && sw === 1) return t;
  const [n, h, w, c] = t.shape;
  let cols = tf.reshape(t, [n * h, w, 1, c]);
  if (sw > 1) cols = tf.pad(cols, [[0, 0], [0, 0], [0, sw - 1], [0, 0]]);
  let rows = tf.reshape(cols, [n, h, 1, w * sw * c]);
  if (sh > 1) rows = tf.pad(rows, [[0, 0], [0, 0], [0, sh - 1], [0, 0]]);
  return tf.reshape(rows, [n, h * sh, w * sw, c]) as tf.Tensor4D;
}

/** Pad (positive) or crop (negative) the spatial borders of an NHWC tensor. */
function padOrCrop(t: tf.Tensor4D, top: number, bottom: number, left: number, right: number): { t: tf.Tensor4D; pads: [[number, number], [number, number], [number, number], [number, number]] } {
  const [n, h, w, c] = t.shape;
  const cropT = Math.max(0, -top), cropB = Math.max(0, -bottom), cropL = Math.max(0, -left), cropR = Math.max(0, -right);
  const cropped = cropT || cropB || cropL || cropR
    ? tf.slice(t, [0, cropT, cropL, 0], [n, h - cropT - cropB, w - cropL - cropR, c])
    : t;
  return { t: cropped, pads: [[0, 0], [Math.max(0, top), Math.max(0, bottom)], [Math.max(0, left), Math.max(0, right)], [0, 0]] };
}

/**
 * dL/dx of a conv: a stride-1 forward conv of the zero-dilated output gradient with the
 * spatially flipped filter whose in/out channels are swapped.
 */
export function conv2dInputGrad(dy: tf.Tensor4D, filter: tf.Tensor4D, g: Conv2DGeometry): tf.Tensor4D {
  return tf.tidy(() => {
    const [, h, w] = g.xShape;
    const [fh, fw, ci, co] = g.filterShape;
    const [sh, sw] = g.strides;
    if (fh === 1 && fw === 1 && sh === 1 && sw === 1 && g.pads.top === 0 && g.pads.left === 0) {
      // Pointwise conv: dx = dy · Wᵀ, one matrix product.
      const [n, oh, ow] = dy.shape;
      const dx = tf.matMul(tf.reshape(dy, [n * oh * ow, co]), tf.reshape(filter, [ci, co]), false, true);
      return tf.reshape(dx, [n, h, w, ci]);
    }
    const dilated = dilateSpatial(dy, sh, sw);
    const flipped = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
    // Derivation (one axis): dx[i] = Σ_k D[i + top - (f-1) + k] · W[f-1-k], D = dilated dy.
    // A negative bottom/right only ever crops the dilation's trailing zero rows/columns.
    const top = fh - 1 - g.pads.top;
    const left = fw - 1 - g.pads.left;
    const bottom = h + fh - 1 - top - dilated.shape[1];
    const right = w + fw - 1 - left - dilated.shape[2];
    const { t, pads } = padOrCrop(dilated, top, bottom, left, right);
    return tf.conv2d(t, flipped, 1, pads);
  });
}

export type FilterGradMethod = 'conv' | 'im2col';

/**
 * dL/dW of a conv. Stride-1 pointwise convs are one matrix product. Otherwise:
 * - 'conv': a forward conv in which the batch axis plays the role of channels and the output
 *   gradient is the filter, dilated by the forward stride (fast on wasm/XNNPACK);
 * - 'im2col': the fh·fw strided views of the padded input side by side, times the output
 *   gradient (one tall-skinny matrix product, which GPU backends split along its long axis).
 */
export function conv2dFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, g: Conv2DGeometry, method: FilterGradMethod = 'conv'): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, w, ci] = g.xShape;
    const [fh, fw, , co] = g.filterShape;
    const [sh, sw] = g.strides;
    const [, oh, ow] = dy.shape;
    const p = g.pads;
    if (fh === 1 && fw === 1 && sh === 1 && sw === 1 && p.top === 0 && p.left === 0) {
      // Explicit transpose: wasm's MatMul with transposeA falls off the XNNPACK path.
      // (Strided pointwise convs take the conv form below: wasm's StridedSlice is a slow
      // generic loop, 25 vs 8 ms for a 64×28×28×16 input.)
      const xt = tf.transpose(tf.reshape(x, [n * oh * ow, ci]));
      const dw = tf.matMul(xt, tf.reshape(dy, [n * oh * ow, co]));
      return tf.reshape(dw, [1, 1, ci, co]);
    }
    if (method === 'im2col') {
      // Rows a forward conv reads span [−top, (o−1)·s + f − 1 − top]; pad (or crop) to exactly that.
      const { t: xp, pads } = padOrCrop(x, p.top, (oh - 1) * sh + fh - h - p.top, p.left, (ow - 1) * sw + fw - w - p.left);
      const padded = tf.pad(xp, pads);
      const taps: tf.Tensor4D[] = [];
      for (let ky = 0; ky < fh; ky++) {
        for (let kx = 0; kx < fw; kx++) {
          taps.push(tf.stridedSlice(padded, [0, ky, kx, 0], [n, ky + (oh - 1) * sh + 1, kx + (ow - 1) * sw + 1, ci], [1, sh, sw, 1]) as tf.Tensor4D);
        }
      }
      const patches = tf.reshape(tf.concat(taps, 3), [n * oh * ow, fh * fw * ci]);
      const dw = tf.matMul(patches, tf.reshape(dy, [n * oh * ow, co]), true, false);
      return tf.reshape(dw, [fh, fw, ci, co]);
    }
    const xT = tf.transpose(x, [3, 1, 2, 0]) as tf.Tensor4D; // [ci, h, w, n]
    const dyT = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D; // [oh, ow, n, co]
    // The oh-tap "filter" dilated by the stride spans s(oh-1)+1 rows, so the output has
    // h + top + bottom - s(oh-1) rows, which must be fh; bottom comes out negative when the
    // forward conv never read the last input rows.
    // Rather than crop the input (a slow Slice of the whole tensor on wasm), let the conv
    // produce a few extra output rows/columns and slice the small result.
    const bottom = fh + sh * (oh - 1) - h - p.top;
    const right = fw + sw * (ow - 1) - w - p.left;
    const pads: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [p.top, Math.max(0, bottom)], [p.left, Math.max(0, right)], [0, 0]];
    let out = tf.conv2d(xT, dyT, 1, pads, 'NHWC', [sh, sw]) as tf.Tensor4D; // [ci, ≥fh, ≥fw, co]
    if (out.shape[1] !== fh || out.shape[2] !== fw) out = tf.slice(out, [0, 0, 0, 0], [ci, fh, fw, co]);
    return tf.transpose(out, [1, 2, 0, 3]);
  });
}

export type BackendSet = ReadonlySet<string>;

/**
 * Replace the Conv2D gradient on the given backends; other backends keep the stock one.
 * Returns a function that restores the previous gradient.
 */
export function registerFastConvGradient(backends: BackendSet, filterGradMethod: (backend: string) => FilterGradMethod = () => 'conv'): () => void {
  const stock = tf.getGradient(tf.Conv2D);
  if (stock == null) throw new Error('tfjs-core has no Conv2D gradient to replace');
  tf.registerGradient({
    kernelName: tf.Conv2D,
    inputsToSave: ['x', 'filter'],
    gradFunc: (dy, saved, attrs) => {
      const a = attrs as unknown as tf.Conv2DAttrs;
      const dilations = typeof a.dilations === 'number' ? [a.dilations, a.dilations] : a.dilations ?? [1, 1];
      const usable = backends.has(tf.getBackend()) && a.dataFormat !== 'NCHW' && dilations[0] === 1 && dilations[1] === 1;
      if (!usable) return stock.gradFunc(dy, saved, attrs);
      const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
      const g = convGeometry(x.shape, filter.shape, a.strides, a.pad, a.dimRoundingMode);
      return {
        x: () => conv2dInputGrad(dy as tf.Tensor4D, filter, g),
        filter: () => conv2dFilterGrad(x, dy as tf.Tensor4D, g, filterGradMethod(tf.getBackend())),
      };
    },
  });
  return () => tf.registerGradient(stock);
}
