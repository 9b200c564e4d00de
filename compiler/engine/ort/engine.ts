/** The `ort` engine: onnxruntime-node runs the generated training graphs and the compiler's inference. */
import { availableParallelism } from 'node:os';
import type { Graph, ParamStore } from '../../graph/ir.ts';
import type { Engine, Runner, Trainer, TrainerSpec } from '../types.ts';
import { createOrtRunner, createOrtStatisticsRunner } from './runner.ts';
import { type OrtProvider, probeNchwcBlock, probeProviders } from './session.ts';
import { type ConvKernel, DEFAULT_FORMULATION, type GraphFormulation } from './training-graph.ts';
import { createOrtTrainer } from './trainer.ts';

export interface OrtEngineOptions {
  /** `auto`: webgpu when a GPU adapter answers, else cpu. */
  provider?: OrtProvider | 'auto';
  /** CPU threads in all (default: every core). */
  threads?: number;
  /**
   * CPU: data-parallel replicas (one worker thread and one-thread session each); default
   * one per thread. 1 runs the whole step as one graph with `threads` intra-op threads.
   */
  replicas?: number;
  /** How the training graph is written (default {@link DEFAULT_FORMULATION}). */
  formulation?: Partial<GraphFormulation>;
}

/**
 * The conv kernel the engine uses on `provider` unless told otherwise: the CPU provider's
 * blocked NCHWc kernels where this machine has them (docs/training-engine.md,
 * "Formulations"), else the standard Conv (GPU providers have no NCHWc kernels).
 */
export async function defaultConvKernel(provider: OrtProvider): Promise<ConvKernel> {
  const block = provider === 'cpu' ? await probeNchwcBlock() : 0;
  return block === 0 ? 'nchw' : (`nchwc${block}` as ConvKernel);
}

export async function createOrtEngine(opts: OrtEngineOptions = {}): Promise<Engine> {
  const threads = opts.threads ?? availableParallelism();
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`ort engine: threads must be a positive integer, got ${threads}`);
  let provider = opts.provider ?? 'cpu';
  if (provider === 'auto' || provider !== 'cpu') {
    const reports = await probeProviders();
    if (provider === 'auto') provider = reports.find((r) => r.provider === 'webgpu')?.available ? 'webgpu' : 'cpu';
    else {
      const report = reports.find((r) => r.provider === provider)!;
      if (!report.available) throw new Error(`ort engine: the ${provider} provider is not available here: ${report.detail}`);
    }
  }
  // Replicas are a CPU device's way to use its cores; a GPU runs one fused step graph.
  const replicas = provider === 'cpu' ? (opts.replicas ?? threads) : 1;
  if (!Number.isInteger(replicas) || replicas < 1) throw new Error(`ort engine: replicas must be a positive integer, got ${replicas}`);
  const session = { provider, threads };
  const machineKernel = await defaultConvKernel(provider);
  const formulation: GraphFormulation = { ...DEFAULT_FORMULATION, convKernel: machineKernel, ...Object.fromEntries(Object.entries(opts.formulation ?? {}).filter(([, v]) => v !== undefined)) };
  if (formulation.convKernel !== 'nchw' && formulation.convKernel !== machineKernel) {
    throw new Error(`ort engine: convKernel ${formulation.convKernel} needs onnxruntime's NCHWc kernels with that block size; the ${provider} provider here has ${machineKernel === 'nchw' ? 'none' : machineKernel}`);
  }
  const parallel = replicas > 1 ? `${replicas} replicas × ${Math.max(1, Math.floor(threads / replicas))} thread` : `${threads} thread${threads === 1 ? '' : 's'}`;
  return {
    name: 'ort',
    description: `ort ${provider}, ${parallel}`,
    identity: `ort/${provider}/r${replicas}/${formulation.convWeightGradient}/${formulation.convInputGradient}/${formulation.bn}${formulation.convKernel === 'nchw' ? '' : `/${formulation.convKernel}`}`,
    trainer(spec: TrainerSpec): Promise<Trainer> {
      return createOrtTrainer(spec, { session, replicas, formulation });
    },
    runner(graph: Graph, params: ParamStore, outputs: string[] = [graph.output]): Promise<Runner> {
      return createOrtRunner(graph, params, outputs, session);
    },
    statistics: (graph, params) => createOrtStatisticsRunner(graph, params, session),
  };
}
