import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { BackendUnavailableError, backendThreads, findWebGpuAdapter, initBackend } from '../../compiler/tf/backend.ts';
import { batchNormTrain } from '../../compiler/tf/ops.ts';
import { Rng } from '../../shared/rng.ts';
import { gaussianData, relError } from './helpers.ts';

const gpu = await findWebGpuAdapter();
const gpuNote = gpu.ok ? `adapter: ${gpu.adapterInfo}` : `skipped: ${gpu.reason}`;

async function moduleInstalled(name: string): Promise<boolean> {
  try {
    await import(name);
    return true;
  } catch {
    return false;
  }
}

describe('initBackend', () => {
  it('initialises cpu and wasm by name', async () => {
    expect(await initBackend('cpu')).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(await initBackend('wasm')).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(backendThreads()).toBeGreaterThanOrEqual(1);
  });

  it(`auto picks webgpu when Dawn finds an adapter, else wasm (${gpuNote})`, async () => {
    expect(await initBackend('auto')).toBe(gpu.ok ? 'webgpu' : 'wasm');
  });

  it.skipIf(gpu.ok)(`leaves globalThis without WebGPU globals when there is no adapter (${gpuNote})`, () => {
    const g = globalThis as { navigator?: { gpu?: unknown }; GPUBufferUsage?: unknown };
    expect(g.navigator?.gpu).toBeUndefined();
    expect(g.GPUBufferUsage).toBeUndefined();
  });

  it('rejects unknown names with the list of valid ones', async () => {
    await expect(initBackend('tpu' as never)).rejects.toThrow(/unknown backend 'tpu'.*wasm/);
  });

  it('names the missing package when tensorflow is requested without tfjs-node', async () => {
    const installed = (await moduleInstalled('@tensorflow/tfjs-node')) || (await moduleInstalled('@tensorflow/tfjs-node-gpu'));
    if (installed) {
      expect(await initBackend('tensorflow')).toBe('tensorflow');
      return;
    }
    const err = await initBackend('tensorflow').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect(String((err as Error).message)).toMatch(/'tensorflow' is not available: install @tensorflow\/tfjs-node/);
  });

  it.skipIf(gpu.ok)(`explains why webgpu is unavailable without an adapter (${gpuNote})`, async () => {
    const err = await initBackend('webgpu').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect(String((err as Error).message)).toMatch(/'webgpu' is not available: /);
  });
});

describe(`webgpu gradient parity (${gpuNote})`, () => {
  it.skipIf(!gpu.ok)('conv + batch-norm gradients on webgpu match the stock cpu gradients', async () => {
    const rng = new Rng(11);
    const xd = gaussianData(rng, [4, 9, 9, 3]), wd = gaussianData(rng, [3, 3, 3, 8]), gd = gaussianData(rng, [8]);
    const grads = async (backend: 'cpu' | 'webgpu', stock: boolean) => {
      await initBackend(backend, { stockGradients: stock });
      const out = tf.tidy(() => {
        const x = tf.tensor4d(xd, [4, 9, 9, 3]), w = tf.tensor4d(wd, [3, 3, 3, 8]), g = tf.tensor1d(gd), b = tf.zeros([8]) as tf.Tensor1D;
        const loss = (xx: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.square(batchNormTrain(tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, 2, 1), g, b, 1e-5).y));
        return tf.grads(loss)([x, w]);
      });
      const data = await Promise.all(out.map((t) => t.data() as Promise<Float32Array>));
      tf.dispose(out);
      return data;
    };
    const ref = await grads('cpu', true);
    const got = await grads('webgpu', false);
    expect(relError(got[0]!, ref[0]!)).toBeLessThanOrEqual(1e-4);
    expect(relError(got[1]!, ref[1]!)).toBeLessThanOrEqual(1e-4);
  });
});

describe('wasm Identity shares the buffer', () => {
  it('clone adds no data buffer, and each copy stays readable after the other is disposed', async () => {
    await initBackend('wasm');
    const a = tf.tensor1d([1, 2, 3]);
    const buffers = tf.memory().numDataBuffers;
    const b = tf.clone(a);
    expect(tf.memory().numDataBuffers).toBe(buffers);
    a.dispose();
    expect(Array.from(b.dataSync())).toEqual([1, 2, 3]);
    const c = tf.clone(b);
    b.dispose();
    const d = tf.add(c, 1);
    expect(Array.from(d.dataSync())).toEqual([2, 3, 4]);
    tf.dispose([c, d]);
    expect(tf.memory().numDataBuffers).toBe(buffers - 1);
  });
});
