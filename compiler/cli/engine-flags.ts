/** The flags every training command shares: which engine, on what, with how many threads. */
import { UsageError } from './command.ts';
import type { EngineOptions } from '../engine/index.ts';
import { ENGINE_NAMES, type EngineName } from '../engine/types.ts';
import { ORT_PROVIDERS, type OrtProvider } from '../engine/ort/session.ts';
import { CONV_KERNELS, type ConvKernel } from '../engine/ort/training-graph.ts';
import { BACKEND_NAMES, type BackendName } from '../tf/backend.ts';

export const ENGINE_FLAGS = {
  engine: { type: 'string' },
  threads: { type: 'string' },
  provider: { type: 'string' },
  replicas: { type: 'string' },
  'conv-kernel': { type: 'string' },
  backend: { type: 'string' },
} as const;

export const ENGINE_HELP = `Engine
  --engine E            ort (default: onnxruntime runs the training graph the model graph
                        emits) or tfjs (the tfjs interpreter, with --backend)
  --threads N           CPU threads (default: every core)
  --provider P          ort: auto (webgpu when a GPU adapter answers, else cpu), cpu
                        (default), webgpu or cuda (\`npm run install:cuda\`); \`facet doctor\`
                        lists what this machine has
  --replicas N          ort on CPU: data-parallel replicas (default: one per thread); 1 runs
                        the whole step as one graph on --threads intra-op threads
  --conv-kernel K       ort: nchw (onnxruntime's standard Conv) or nchwc8 / nchwc16 (its
                        blocked CPU kernels, ~1.2x faster training); default: the CPU's
                        NCHWc block where it has one (\`facet doctor\` shows it)
  --backend B           tfjs: ${BACKEND_NAMES.join(', ')} (default auto)`;

type Values = { [K in keyof typeof ENGINE_FLAGS]?: string };

function positiveInt(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (!Number.isInteger(v) || v < 1) throw new UsageError(`${flag} must be a positive integer, got "${text}"`);
  return v;
}

/** Engine options from parsed flags; a flag that does not apply to the engine is a usage error. */
export function engineOptions(values: Values): EngineOptions {
  const engine = (values.engine ?? 'ort') as EngineName;
  if (!ENGINE_NAMES.includes(engine)) throw new UsageError(`--engine must be ${ENGINE_NAMES.join(' or ')}, got "${values.engine}"`);
  const threads = positiveInt('--threads', values.threads);
  const replicas = positiveInt('--replicas', values.replicas);
  if (engine === 'tfjs') {
    for (const flag of ['provider', 'replicas', 'conv-kernel'] as const) if (values[flag] !== undefined) throw new UsageError(`--${flag} applies to --engine ort`);
    if (threads !== undefined) throw new UsageError('--threads applies to --engine ort (tfjs-wasm runs one thread in Node)');
    const backend = (values.backend ?? 'auto') as BackendName;
    if (!BACKEND_NAMES.includes(backend)) throw new UsageError(`--backend must be one of ${BACKEND_NAMES.join(', ')}, got "${values.backend}"`);
    return { engine, backend };
  }
  if (values.backend !== undefined) throw new UsageError('--backend chooses the tfjs backend: use it with --engine tfjs (ort takes --provider)');
  const provider = (values.provider ?? 'cpu') as OrtProvider | 'auto';
  if (provider !== 'auto' && !ORT_PROVIDERS.includes(provider)) throw new UsageError(`--provider must be auto, ${ORT_PROVIDERS.join(', ')}, got "${values.provider}"`);
  const convKernel = values['conv-kernel'] as ConvKernel | undefined;
  if (convKernel !== undefined && !CONV_KERNELS.includes(convKernel)) throw new UsageError(`--conv-kernel must be ${CONV_KERNELS.join(', ')}, got "${convKernel}"`);
  return { engine, threads, provider, replicas, ...(convKernel ? { formulation: { convKernel } } : {}) };
}
