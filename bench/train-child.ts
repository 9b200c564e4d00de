/**
 * One measurement of bench/train.ts, in its own process (so its peak resident memory is its
 * own): an engine at a thread count trains the benchmark's model on its batch, after
 * warm-up steps, and prints one JSON line. With --grads it first writes the gradients of
 * the first step (in the graph's layouts) for the gradient check.
 *
 *   node --import tsx bench/train-child.ts --work DIR --engine ort[:key=value+...]|tfjs-wasm --threads N --batch N [--steps N] [--grads FILE]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { createEngine, type Engine, type EngineOptions } from '../compiler/engine/index.ts';
import { defaultConvKernel } from '../compiler/engine/ort/engine.ts';
import { fromOrtLayout, toOrtLayout } from '../compiler/engine/ort/layout.ts';
import { type BnFormulation, buildTrainingGraph, type ConvInputGradient, type ConvKernel, type ConvWeightGradient, gradName } from '../compiler/engine/ort/training-graph.ts';
import { parseGraphJson } from '../compiler/graph/arch.ts';
import type { Graph, ParamStore } from '../compiler/graph/ir.ts';
import { readCheckpoint, writeCheckpoint } from '../compiler/train/checkpoint.ts';
import { median } from './stats.ts';

export const BENCH_OPTIMIZER = { kind: 'sgd', momentum: 0.9, weightDecay: 5e-4 } as const;
export const BENCH_LR = 0.01;

const { values } = parseArgs({
  options: {
    work: { type: 'string' },
    engine: { type: 'string' },
    threads: { type: 'string' },
    batch: { type: 'string' },
    steps: { type: 'string', default: '12' },
    warmup: { type: 'string', default: '3' },
    grads: { type: 'string' },
  },
});
const work = values.work!;
const batch = Number(values.batch);
const threads = Number(values.threads);
const graph = parseGraphJson(readFileSync(`${work}/graph.json`, 'utf8'), `${work}/graph.json`);
const params = readCheckpoint(`${work}/params.ckpt`).tensors;
const [h, w, c] = (graph.layers[0] as { shape: [number, number, number] }).shape;
const raw = readFileSync(`${work}/batch-${batch}.bin`);
const x = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + 4 * batch * h * w * c));
const labels = new Int32Array(raw.buffer.slice(raw.byteOffset + 4 * batch * h * w * c, raw.byteOffset + raw.byteLength));

/** `ort:replicas=1+dw=conv+dx=convtranspose+bn=elementwise+conv=nchw+provider=webgpu` or `tfjs-wasm` → engine options. */
function parseEngine(spec: string): EngineOptions {
  const [name, rest] = spec.split(':') as [string, string | undefined];
  const kv = Object.fromEntries((rest ?? '').split('+').filter(Boolean).map((p) => p.split('=') as [string, string]));
  if (name.startsWith('tfjs')) return { engine: 'tfjs', backend: (name.split('-')[1] ?? 'wasm') as EngineOptions['backend'] };
  if (name !== 'ort') throw new Error(`unknown engine "${spec}"`);
  return {
    engine: 'ort',
    threads,
    replicas: kv.replicas ? Number(kv.replicas) : undefined,
    provider: (kv.provider as EngineOptions['provider']) ?? 'cpu',
    formulation: { convWeightGradient: kv.dw as ConvWeightGradient | undefined, convInputGradient: kv.dx as ConvInputGradient | undefined, bn: kv.bn as BnFormulation | undefined, convKernel: kv.conv as ConvKernel | undefined },
  };
}

/** First-step gradients: the generated gradient graph (ort) or the tfjs tape (tfjs). */
async function gradients(engine: Engine, opts: EngineOptions, graph: Graph, params: ParamStore): Promise<ParamStore> {
  const onehot = new Float32Array(batch * 10);
  labels.forEach((l, i) => (onehot[i * 10 + l] = 1));
  if (engine.name === 'ort') {
    // The graph the engine trains with: on cpu, the machine's conv kernel unless named.
    const provider = opts.provider === 'auto' || opts.provider === undefined ? 'cpu' : opts.provider;
    const tg = buildTrainingGraph(graph, { batch, objective: { ce: 1 }, mode: 'gradients', ...opts.formulation, convKernel: opts.formulation?.convKernel ?? (await defaultConvKernel(provider)) });
    const session = await ort.InferenceSession.create(tg.bytes, { executionProviders: [opts.provider === 'auto' ? 'cpu' : (opts.provider ?? 'cpu')] });
    const feeds: Record<string, ort.Tensor> = { input: new ort.Tensor('float32', x, [batch, h, w, c]), onehot: new ort.Tensor('float32', onehot, [batch, 10]) };
    for (const key of tg.trainable) {
      const t = toOrtLayout(graph, key, params.get(key)!);
      feeds[key] = new ort.Tensor('float32', t.data, t.shape);
    }
    const out = await session.run(feeds);
    const grads: ParamStore = new Map();
    for (const key of tg.updated) grads.set(key, fromOrtLayout(graph, key, { shape: [...out[gradName(key)]!.dims], data: out[gradName(key)]!.data as Float32Array }));
    await session.release();
    return grads;
  }
  const tf = await import('@tensorflow/tfjs-core');
  const { forward, toVariables } = await import('../compiler/nn/forward.ts');
  const vars = toVariables(params);
  const trainable = [...vars].filter(([, v]) => v.trainable);
  const { grads } = tf.variableGrads(() => {
    const out = forward(graph, vars, tf.tensor4d(x, [batch, h, w, c]), { training: true });
    return tf.losses.softmaxCrossEntropy(tf.tensor2d(onehot, [batch, 10]), out.logits) as import('@tensorflow/tfjs-core').Scalar;
  }, trainable.map(([, v]) => v));
  const result: ParamStore = new Map();
  for (const [key, v] of trainable) result.set(key, { shape: [...v.shape], data: Float32Array.from(await grads[v.name]!.data()) });
  return result;
}

const opts = parseEngine(values.engine!);
const engine = await createEngine(opts);
if (values.grads) writeCheckpoint(values.grads, { meta: { format: 'facet.grads/1', engine: engine.description }, tensors: await gradients(engine, opts, graph, params) });
const trainer = await engine.trainer({ graph, params, optimizer: BENCH_OPTIMIZER, objective: { ce: 1 }, batchSize: batch });
const times: number[] = [];
let firstLoss = NaN;
for (let i = 0; i < Number(values.warmup) + Number(values.steps); i++) {
  const t0 = performance.now();
  const r = await trainer.step({ n: batch, x, labels }, BENCH_LR);
  if (i === 0) firstLoss = r.loss;
  if (i >= Number(values.warmup)) times.push(performance.now() - t0);
}
await trainer.dispose();
const stepMs = median(times);
console.log(JSON.stringify({ engine: engine.description, threads, batch, stepMs, imgPerSec: (1000 * batch) / stepMs, firstLoss, peakRssMiB: process.resourceUsage().maxRSS / 1024 }));
process.exit(0);
