/**
 * onnxruntime-node sessions for the compiler: which execution providers this machine has,
 * and the session options each of Facet's sessions runs with.
 */
import * as ort from 'onnxruntime-node';
import type { Graph, ParamStore } from '../../graph/ir.ts';
import { inferShapes } from '../../graph/shapes.ts';
import { encodeModel, GraphBuilder, int } from '../../onnx/builder.ts';
import { exportOnnx } from '../../onnx/export.ts';
import { NCHWC_DOMAIN } from './training-graph.ts';

export type OrtProvider = 'cpu' | 'webgpu' | 'cuda';
export const ORT_PROVIDERS: readonly OrtProvider[] = ['cpu', 'webgpu', 'cuda'];

export interface OrtSessionConfig {
  provider: OrtProvider;
  /** Intra-op threads of one session (CPU provider). */
  threads: number;
}

export function sessionOptions(cfg: OrtSessionConfig, extra: ort.InferenceSession.SessionOptions = {}): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [cfg.provider],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    intraOpNumThreads: cfg.threads,
    interOpNumThreads: 1,
    ...extra,
  };
}

/**
 * The graph as an inference model for the compiler's own sessions: NHWC input, the
 * given layers as extra (NHWC) outputs. Labels and normalisation are not used here.
 */
export function runnerModel(graph: Graph, params: ParamStore, taps: string[]): Uint8Array {
  const classes = (inferShapes(graph).get(graph.output) as [number])[0];
  const channels = (graph.layers.find((l) => l.kind === 'input') as { shape: [number, number, number] }).shape[2];
  const zeros = new Array<number>(channels).fill(0);
  return exportOnnx(graph, params, { labels: Array.from({ length: classes }, (_, i) => String(i)), mean: zeros, std: zeros.map(() => 1), producerVersion: 'runner' }, { taps, layout: 'nhwc' });
}

export interface ProviderReport {
  provider: OrtProvider;
  available: boolean;
  /** Why not, or what was found. */
  detail: string;
}

let probed: Promise<ProviderReport[]> | undefined;

/**
 * Which providers can run a session here. The CPU provider always can; webgpu needs a GPU
 * adapter (it is bundled with onnxruntime-node on Linux and Windows); cuda needs
 * onnxruntime's CUDA libraries (`npm run install:cuda`) and a CUDA driver. Each is tried
 * with a one-node session, so the answer is what a training run would get.
 */
export function probeProviders(): Promise<ProviderReport[]> {
  probed ??= (async () => {
    const listed = new Map(ort.listSupportedBackends().map((b) => [b.name, b]));
    const reports: ProviderReport[] = [];
    for (const provider of ORT_PROVIDERS) {
      const entry = listed.get(provider);
      if (!entry) {
        reports.push({ provider, available: false, detail: 'not in this onnxruntime-node build' });
        continue;
      }
      try {
        // Fatal-only logging: a provider that is missing is the answer here, not an error to print.
        const session = await ort.InferenceSession.create(tinyModel(), { executionProviders: [provider], logSeverityLevel: 4 });
        await session.release();
        reports.push({ provider, available: true, detail: entry.bundled ? 'bundled' : 'installed' });
      } catch (err) {
        const msg = ((err as Error).message ?? String(err)).split('\n')[0]!.slice(0, 160);
        const hint = provider === 'cuda' ? ' (run `npm run install:cuda` on a CUDA host)' : provider === 'webgpu' ? ' (no GPU adapter found)' : '';
        reports.push({ provider, available: false, detail: `${msg}${hint}` });
      }
    }
    return reports;
  })();
  return probed;
}

let nchwcBlock: Promise<number> | undefined;

/**
 * The channel block of onnxruntime's NCHWc kernels on this machine (MLAS picks 16 with
 * AVX-512, 8 with AVX2, and some builds have none), or 0 where the CPU provider lacks them:
 * a four-channel ReorderInput says, since it pads the channels to one block.
 */
export function probeNchwcBlock(): Promise<number> {
  nchwcBlock ??= (async () => {
    const b = new GraphBuilder();
    b.input('x', [1, 4, 1, 1]);
    b.op('ReorderInput', ['x'], 'y', [int('channels_last', 0)], ['y'], NCHWC_DOMAIN);
    b.output('y', [1, 'blocked', 1, 1]);
    const bytes = encodeModel({ name: 'nchwc-probe', nodes: b.nodes, initializers: b.initializers, inputs: b.inputs, outputs: b.outputs, producerName: 'facet', producerVersion: 'probe', extraOpsets: [{ domain: NCHWC_DOMAIN, version: 1 }] }, 'NCHWc probe');
    try {
      const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], logSeverityLevel: 4 });
      const y = (await session.run({ x: new ort.Tensor('float32', new Float32Array(4), [1, 4, 1, 1]) })).y!;
      await session.release();
      const block = y.dims[1]!;
      return block === 8 || block === 16 ? block : 0;
    } catch {
      return 0;
    }
  })();
  return nchwcBlock;
}

/** A one-Relu model for probing providers. */
function tinyModel(): Uint8Array {
  const graph: Graph = { arch: 'probe', layers: [{ kind: 'input', name: 'x', shape: [1, 1, 1] }, { kind: 'flatten', name: 'f', input: 'x' }, { kind: 'dense', name: 'd', input: 'f', units: 1 }], output: 'd' };
  const params: ParamStore = new Map([
    ['d/kernel', { shape: [1, 1], data: new Float32Array([1]) }],
    ['d/bias', { shape: [1], data: new Float32Array([0]) }],
  ]);
  return runnerModel(graph, params, []);
}

/** A float32 tensor over `data` (no copy). */
export const floatTensor = (data: Float32Array, dims: readonly number[]): ort.Tensor => new ort.Tensor('float32', data, dims as number[]);

/**
 * Throws unless `session` has every named input and output. onnxruntime-node ignores a
 * fetch it does not know, so a misnamed preallocated output would silently never be written.
 */
export function requireIo(session: ort.InferenceSession, inputs: Iterable<string>, outputs: Iterable<string>, what: string): void {
  const ins = new Set(session.inputNames);
  const outs = new Set(session.outputNames);
  const missing = [...[...inputs].filter((n) => !ins.has(n)).map((n) => `input ${n}`), ...[...outputs].filter((n) => !outs.has(n)).map((n) => `output ${n}`)];
  if (missing.length > 0) throw new Error(`${what}: the session lacks ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''}`);
}
