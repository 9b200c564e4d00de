/**
 * Kernel overrides for tfjs-backend-wasm.
 *
 * Identity: the stock wasm kernel copies the tensor. The tape clones every tensor a gradient
 * saves (all conv inputs and filters, batch-norm inputs, ReLU outputs, ...), so each training
 * step copied every activation once more (Identity was ~4% of a ResNet-20 step). Sharing the
 * buffer with a reference count is what the cpu backend's Identity does, and what wasm's own
 * Reshape already does; wasm kernels never write to their inputs, so sharing is safe.
 */
import * as tf from '@tensorflow/tfjs-core';

interface RefCountingBackend {
  incRef(dataId: object): void;
}

let registered = false;

export function registerWasmKernels(): void {
  if (registered) return;
  tf.unregisterKernel(tf.Identity, 'wasm');
  tf.registerKernel({
    kernelName: tf.Identity,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend }) => {
      const x = (inputs as tf.IdentityInputs).x as tf.TensorInfo;
      (backend as unknown as RefCountingBackend).incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    },
  });
  registered = true;
}
