import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../shared/rng.ts';
import { initBackend, setupGradients } from '../../compiler/tf/backend.ts';
import { conv2dFilterGrad, conv2dInputGrad, convGeometry } from '../../compiler/tf/conv_grads.ts';
import { gaussianData, onBackend, relError } from './helpers.ts';

type Pad = 'same' | 'valid' | number | number[][];
interface Case {
  x: [number, number, number, number];
  f: [number, number, number, number];
  stride: number | [number, number];
  pad: Pad;
}

const FIXED: Case[] = [
  { x: [2, 8, 8, 3], f: [3, 3, 3, 4], stride: 1, pad: 1 },
  { x: [2, 8, 8, 3], f: [3, 3, 3, 4], stride: 2, pad: 1 },
  { x: [1, 9, 9, 2], f: [3, 3, 2, 5], stride: 2, pad: 'valid' },
  { x: [2, 7, 7, 4], f: [3, 3, 4, 4], stride: 2, pad: 'same' },
  { x: [2, 8, 8, 3], f: [1, 1, 3, 4], stride: 2, pad: 'valid' },
  { x: [1, 5, 6, 3], f: [1, 1, 3, 2], stride: 1, pad: 'same' },
  { x: [1, 7, 8, 2], f: [3, 2, 2, 3], stride: [2, 1], pad: [[0, 0], [1, 2], [0, 1], [0, 0]] },
  { x: [2, 9, 9, 3], f: [5, 5, 3, 2], stride: 3, pad: 'same' },
  { x: [1, 4, 4, 1], f: [4, 4, 1, 1], stride: 1, pad: 'valid' },
];

/** Random shapes: odd and even sizes, strides 1–2, 1×1/3×3/5×5, batch 1–3, several pads. */
function randomCases(count: number, seed: number): Case[] {
  const rng = new Rng(seed);
  const cases: Case[] = [];
  while (cases.length < count) {
    const k = [1, 3, 3, 5][rng.int(0, 3)]!;
    const stride = rng.int(1, 2);
    const h = rng.int(k, 12), w = rng.int(k, 12);
    const padKind = rng.int(0, 2);
    const pad: Pad = padKind === 0 ? 'same' : padKind === 1 ? 'valid' : rng.int(0, (k - 1) / 2);
    cases.push({ x: [rng.int(1, 3), h, w, rng.int(1, 6)], f: [k, k, 0, rng.int(1, 6)], stride, pad });
    const c = cases[cases.length - 1]!;
    c.f[2] = c.x[3];
  }
  return cases;
}

const label = (c: Case) => `x ${c.x.join('×')} f ${c.f.join('×')} s ${String(c.stride)} pad ${JSON.stringify(c.pad)}`;
const CASES = [...FIXED, ...randomCases(12, 20261126)];

interface Grads { dx: Float32Array; dw: Float32Array }

/** Gradients of Σ conv(x, w)·r through whatever Conv2D gradient is registered. */
function tapeGrads(c: Case, xd: Float32Array, wd: Float32Array, rd: Float32Array, outShape: number[]): Grads {
  return tf.tidy(() => {
    const x = tf.tensor4d(xd, c.x), w = tf.tensor4d(wd, c.f), r = tf.tensor(rd, outShape);
    const loss = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad as 'same'), r));
    const [dx, dw] = tf.grads(loss)([x, w]);
    return { dx: dx!.dataSync() as Float32Array, dw: dw!.dataSync() as Float32Array };
  });
}

describe('fast Conv2D gradients', () => {
  beforeAll(async () => {
    await initBackend('cpu');
    await import('@tensorflow/tfjs-backend-wasm');
  });

  for (const c of CASES) {
    it(`match the stock cpu gradient: ${label(c)}`, async () => {
      const rng = new Rng(c.x.concat(c.f).reduce((a, b) => a * 31 + b, 7));
      const g = convGeometry(c.x, c.f, c.stride, c.pad);
      const outShape = [c.x[0], g.outHeight, g.outWidth, c.f[3]];
      const xd = gaussianData(rng, c.x), wd = gaussianData(rng, c.f), rd = gaussianData(rng, outShape);

      // Reference: stock gradient kernels on the cpu backend.
      await setupGradients(true);
      const ref = await onBackend('cpu', () => tapeGrads(c, xd, wd, rd, outShape));
      await setupGradients(false);

      // Composed gradients, called directly, on cpu and on wasm.
      for (const backend of ['cpu', 'wasm']) {
        const got = await onBackend(backend, () =>
          tf.tidy(() => {
            const x = tf.tensor4d(xd, c.x), w = tf.tensor4d(wd, c.f), r = tf.tensor4d(rd, outShape as [number, number, number, number]);
            return {
              dx: conv2dInputGrad(r, w, g).dataSync() as Float32Array,
              dwConv: conv2dFilterGrad(x, r, g, 'conv').dataSync() as Float32Array,
              dwIm2col: conv2dFilterGrad(x, r, g, 'im2col').dataSync() as Float32Array,
            };
          }),
        );
        expect(relError(got.dx, ref.dx), `${backend} dx`).toBeLessThanOrEqual(1e-4);
        expect(relError(got.dwConv, ref.dw), `${backend} dw (conv)`).toBeLessThanOrEqual(1e-4);
        expect(relError(got.dwIm2col, ref.dw), `${backend} dw (im2col)`).toBeLessThanOrEqual(1e-4);
      }
      // Through the registered gradient (what training uses) on wasm.
      const viaTape = await onBackend('wasm', () => tapeGrads(c, xd, wd, rd, outShape));
      expect(relError(viaTape.dx, ref.dx), 'wasm tape dx').toBeLessThanOrEqual(1e-4);
      expect(relError(viaTape.dw, ref.dw), 'wasm tape dw').toBeLessThanOrEqual(1e-4);
    });
  }

  it('stays on the stock gradient on backends outside the fast set (cpu)', async () => {
    await setupGradients(false);
    const c = FIXED[1]!;
    const g = convGeometry(c.x, c.f, c.stride, c.pad);
    const outShape = [c.x[0], g.outHeight, g.outWidth, c.f[3]];
    const rng = new Rng(5);
    const xd = gaussianData(rng, c.x), wd = gaussianData(rng, c.f), rd = gaussianData(rng, outShape);
    const kernels = await onBackend('cpu', async () => {
      const profile = await tf.profile(() => { tapeGrads(c, xd, wd, rd, outShape); });
      return profile.kernels.map((k) => k.name);
    });
    expect(kernels).toContain('Conv2DBackpropFilter');
  });

  it('does not leak tensors across training steps on wasm', async () => {
    await setupGradients(false);
    await onBackend('wasm', () => {
      const w = tf.variable(tf.randomNormal([3, 3, 4, 8]));
      const x = tf.randomNormal([2, 9, 9, 4]) as tf.Tensor4D;
      const step = () => tf.tidy(() => {
        const { grads } = tf.variableGrads(() => tf.sum(tf.square(tf.conv2d(x, w as tf.Tensor4D, 2, 1))) as tf.Scalar);
        w.assign(tf.sub(w, tf.mul(grads[w.name]!, 1e-3)));
      });
      step();
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) step();
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
      w.dispose();
    });
  });
});
