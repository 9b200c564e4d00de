/**
 * Run-time choice of the tfjs backend used for training, plus registration of the fast
 * gradients (compiler/tf/conv_grads.ts, compiler/tf/ops.ts) on the backends where they pay.
 *
 * `auto` order: webgpu (when the optional `webgpu` package finds a GPU adapter), then wasm.
 * `tensorflow` (libtensorflow via @tensorflow/tfjs-node[-gpu]) is used only when asked for
 * by name: it is never a dependency of this project, its CPU speed on these small models
 * is not better than XNNPACK on wasm with the fast gradients, and silently picking a
 * different engine depending on what happens to be installed would make runs on two
 * machines differ. See docs/training-speed.md.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ensureStockGradients } from './gradients.ts';
import { registerFastConvGradient, type FilterGradMethod } from './conv_grads.ts';
import { registerWasmKernels } from './wasm_kernels.ts';

export type BackendName = 'auto' | 'wasm' | 'webgpu' | 'tensorflow' | 'cpu';
export const BACKEND_NAMES: readonly BackendName[] = ['auto', 'wasm', 'webgpu', 'tensorflow', 'cpu'];

/** Backends on which the composed convolution gradients replace the stock kernels. */
export const FAST_GRADIENT_BACKENDS = new Set(['wasm', 'webgpu']);

export class BackendUnavailableError extends Error {
  constructor(name: string, reason: string) {
    super(`tfjs backend '${name}' is not available: ${reason}`);
    this.name = 'BackendUnavailableError';
  }
}

export interface InitOptions {
  /** Use the stock tfjs gradients even where fast ones exist (for benchmarks and tests). */
  stockGradients?: boolean;
  /** How conv filter gradients are computed; 'auto' picks per backend (see below). */
  filterGrad?: FilterGradMethod | 'auto';
}

/**
 * 'auto' choice of filter-gradient method: the forward-conv form everywhere. On wasm it is
 * the fast one (XNNPACK); on webgpu (H200, ResNet-20) both forms were within noise of each
 * other (conv 146 vs im2col 172 ms per batch-64 step, 247 vs 233 ms at 128) because per-kernel launch
 * overhead dominates there, and the conv form launches fewer kernels (docs/training-speed.md).
 */
export function autoFilterGrad(_backend: string): FilterGradMethod {
  return 'conv';
}
let filterGradChoice: FilterGradMethod | 'auto' = 'auto';

let fastGradientsRegistered = false;

/** Registers the fast gradients once; `stockGradients` leaves (or puts back) the stock ones. */
export async function setupGradients(stock = false): Promise<void> {
  await ensureStockGradients();
  if (stock) {
    restoreStock?.();
    restoreStock = undefined;
    fastGradientsRegistered = false;
    return;
  }
  if (fastGradientsRegistered) return;
  restoreStock = registerFastConvGradient(FAST_GRADIENT_BACKENDS, (backend) => (filterGradChoice === 'auto' ? autoFilterGrad(backend) : filterGradChoice));
  fastGradientsRegistered = true;
}
let restoreStock: (() => void) | undefined;

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

type AdapterProbe = { ok: true; adapterInfo: string } | { ok: false; reason: string };
let adapterProbe: Promise<AdapterProbe> | undefined;

/**
 * Finds a GPU adapter through Dawn (`webgpu` package), once per process. Only when one is
 * found are the WebGPU globals and `navigator.gpu` installed (tfjs-backend-webgpu needs
 * them); without a GPU, globalThis is left untouched.
 */
export function findWebGpuAdapter(): Promise<AdapterProbe> {
  adapterProbe ??= probeAdapter();
  return adapterProbe;
}

async function probeAdapter(): Promise<AdapterProbe> {
  const existing = (globalThis as { navigator?: { gpu?: GpuLike } }).navigator?.gpu;
  let gpu: GpuLike;
  let globals: Record<string, unknown> = {};
  if (existing) {
    gpu = existing;
  } else {
    try {
      const webgpu = (await import('webgpu')) as unknown as { create: (opts: string[]) => GpuLike; globals: Record<string, unknown> };
      gpu = webgpu.create([]);
      globals = webgpu.globals;
    } catch (e) {
      return { ok: false, reason: `the optional 'webgpu' package did not load (${message(e)})` };
    }
  }
  try {
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (adapter == null) return { ok: false, reason: 'Dawn found no GPU adapter' };
    if (!existing) {
      Object.assign(globalThis, globals);
      const g = globalThis as { navigator?: object };
      if (g.navigator == null) Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
      else Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
    }
    const info = adapter.info ?? {};
    return { ok: true, adapterInfo: [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'unknown adapter' };
  } catch (e) {
    return { ok: false, reason: `requesting a GPU adapter failed (${message(e)})` };
  }
}

interface GpuLike {
  requestAdapter(o?: object): Promise<{ info?: { vendor?: string; architecture?: string; description?: string } } | null>;
}

async function activate(name: string): Promise<void> {
  const ok = await tf.setBackend(name);
  if (!ok) throw new BackendUnavailableError(name, 'tfjs could not initialise it');
  await tf.ready();
}

async function initWasm(): Promise<void> {
  try {
    await import('@tensorflow/tfjs-backend-wasm');
  } catch (e) {
    throw new BackendUnavailableError('wasm', message(e));
  }
  registerWasmKernels();
  // Node: tfjs-backend-wasm loads its single-threaded SIMD build (threads are disabled under
  // Node, tfjs issue #3830), so there is no thread count to set here. Forcing the threaded
  // build fails: its pthread workers start from blob: URLs, which worker_threads rejects.
  await activate('wasm');
}

async function initWebGpu(): Promise<void> {
  const found = await findWebGpuAdapter();
  if (!found.ok) throw new BackendUnavailableError('webgpu', found.reason);
  try {
    await import('@tensorflow/tfjs-backend-webgpu');
  } catch (e) {
    throw new BackendUnavailableError('webgpu', `@tensorflow/tfjs-backend-webgpu did not load (${message(e)})`);
  }
  await activate('webgpu');
}

async function initTensorflow(): Promise<void> {
  const errors: string[] = [];
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await import(pkg);
      await activate('tensorflow');
      return;
    } catch (e) {
      errors.push(`${pkg}: ${message(e)}`);
    }
  }
  throw new BackendUnavailableError('tensorflow', `install @tensorflow/tfjs-node or @tensorflow/tfjs-node-gpu (${errors.join('; ')})`);
}

async function initCpu(): Promise<void> {
  await import('@tensorflow/tfjs-backend-cpu');
  await activate('cpu');
}

/** Number of threads the active backend computes with (1 for wasm in Node, cpu). */
export function backendThreads(): number {
  const name = tf.getBackend();
  if (name === 'wasm') {
    const b = tf.backend() as unknown as { wasm?: { tfjs?: { getThreadsCount?: () => number } } };
    return b.wasm?.tfjs?.getThreadsCount?.() ?? 1;
  }
  return 1;
}

/**
 * Selects and initialises a backend and registers gradients. Returns the backend's name
 * (the chosen one for 'auto'). Throws BackendUnavailableError naming the backend and why.
 */
export async function initBackend(name: BackendName, opts: InitOptions = {}): Promise<string> {
  if (!BACKEND_NAMES.includes(name)) {
    throw new Error(`unknown backend '${String(name)}'; expected one of ${BACKEND_NAMES.join(', ')}`);
  }
  await setupGradients(opts.stockGradients ?? false);
  filterGradChoice = opts.filterGrad ?? 'auto';
  if (name === 'auto') {
    const gpu = await findWebGpuAdapter();
    if (gpu.ok) {
      try {
        await initWebGpu();
        return 'webgpu';
      } catch {
        // A GPU that Dawn sees but tfjs cannot use: fall back to the CPU path below.
      }
    }
    await initWasm();
    return 'wasm';
  }
  if (name === 'wasm') await initWasm();
  else if (name === 'webgpu') await initWebGpu();
  else if (name === 'tensorflow') await initTensorflow();
  else await initCpu();
  return tf.getBackend();
}
