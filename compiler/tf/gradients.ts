/**
 * Registers tfjs-core's stock gradients (once per process).
 *
 * Why this file exists: `@tensorflow/tfjs-core` resolves to its CommonJS node bundle,
 * which ships no gradients; they are only in the ESM build (`dist/register_all_gradients.js`),
 * whose extensionless imports Node's ESM loader refuses. A small resolve hook fixes those
 * imports. Gradient and kernel registries are process-global in tfjs, so gradients
 * registered by the ESM copy serve the tensors made by the CommonJS copy.
 */
import * as tf from '@tensorflow/tfjs-core';
import { register } from 'node:module';

let loaded: Promise<void> | undefined;

export function ensureStockGradients(): Promise<void> {
  if (tf.getGradient(tf.Conv2D) != null) return Promise.resolve();
  loaded ??= (async () => {
    register('./tfjs_core_resolve_hook.mjs', import.meta.url);
    await import('@tensorflow/tfjs-core/dist/register_all_gradients.js');
    if (tf.getGradient(tf.Conv2D) == null) throw new Error('tfjs-core gradients did not register (dist/register_all_gradients.js)');
  })();
  return loaded;
}
