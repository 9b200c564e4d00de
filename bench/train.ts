/**
 * Training-speed benchmark (issue 2): CIFAR-style ResNet-20 (projection shortcuts, GAP head)
 * on 28×28×1 inputs. For each backend: training images/s (forward + backward + SGD
 * momentum update + running-statistics update, after warm-up steps) and the ratio of one
 * training step to one onnxruntime-node forward pass of the same model and batch with
 * intraOpNumThreads = the tfjs thread count. Prints a table and writes
 * bench/results/train.json atomically.
 *
 *   npm run bench:train -- [--backends wasm,cpu,webgpu,tensorflow] [--batch 64]
 *                          [--steps 5] [--warmup 2] [--cpu-steps 1] [--cpu-batch 4] [--profile] [--skip-check] [--out path]
 *
 * Unless `--skip-check`, the benchmark first compares each backend's parameter gradients on 2 images
 * with the stock cpu backend's and reports the max relative error.
 *
 * Backends that are not available are listed with the reason instead of a figure.
 */
import * as tf from '@tensorflow/tfjs-core';
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { resnet, initParams } from '../compiler/graph/builders.ts';
import { countGraph } from '../compiler/graph/count.ts';
import type { Graph, ParamStore } from '../compiler/graph/ir.ts';
import { forward, toVariables, trainableVariables, updateRunningStats, type BnBatchStats } from '../compiler/nn/forward.ts';
import { exportOnnx } from '../compiler/onnx/export.ts';
import { autoFilterGrad, BackendUnavailableError, FAST_GRADIENT_BACKENDS, backendThreads, findWebGpuAdapter, initBackend, type BackendName } from '../compiler/tf/backend.ts';
import type { FilterGradMethod } from '../compiler/tf/conv_grads.ts';
import { Rng } from '../shared/rng.ts';
import { median } from './stats.ts';

const { values: args } = parseArgs({
  options: {
    backends: { type: 'string', default: 'wasm,webgpu,webgpu-stock,tensorflow,cpu,wasm-stock' },
    batch: { type: 'string', default: '64' },
    steps: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '2' },
    'cpu-steps': { type: 'string', default: '1' },
    // The stock cpu kernels take minutes per batch-64 step; img/s barely depends on the batch there.
    'cpu-batch': { type: 'string', default: '4' },
    profile: { type: 'boolean', default: false },
    'skip-check': { type: 'boolean', default: false },
    dw: { type: 'string', default: 'auto' },
    out: { type: 'string', default: 'bench/results/train.json' },
  },
});

const positiveInt = (name: string, v: string | undefined): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got '${v}'`);
  return n;
};
const BATCH = positiveInt('batch', args.batch);
const STEPS = positiveInt('steps', args.steps);
const WARMUP = Number(args.warmup);
const CPU_STEPS = positiveInt('cpu-steps', args['cpu-steps']);
const CPU_BATCH = Math.min(BATCH, positiveInt('cpu-batch', args['cpu-batch']));
const CLASSES = 10;
if (!['auto', 'conv', 'im2col'].includes(args.dw!)) throw new Error(`--dw must be auto, conv or im2col, got '${args.dw}'`);
const FILTER_GRAD = args.dw as FilterGradMethod | 'auto';

interface Row {
  backend: string;
  gradients: 'fast' | 'stock';
  batch: number;
  /** Filter-gradient method of the fast gradients. */
  filterGrad?: FilterGradMethod;
  status: 'ok' | 'unavailable' | 'failed';
  reason?: string;
  threads?: number;
  steps?: number;
  stepMs?: number;
  trainImgPerSec?: number;
  tfjsForwardMs?: number;
  ortForwardMs?: number;
  stepOverOrtForward?: number;
  profileTopKernelsMs?: Record<string, number>;
  profileKernelLaunches?: number;
  /** Max relative error of this backend's parameter gradients (batch of 2) vs stock cpu. */
  gradCheckRelErr?: number;
}

const CHECK_BATCH = 2;

/** Parameter gradients of the loss on the first CHECK_BATCH images, flattened in a fixed order. */
async function lossGradients(graph: Graph, params: ParamStore, data: { nhwc: Float32Array; labels: Int32Array }): Promise<Float32Array[]> {
  const vars = toVariables(params);
  const trainable = [...trainableVariables(vars).values()];
  const x = tf.tensor4d(data.nhwc.subarray(0, CHECK_BATCH * 28 * 28), [CHECK_BATCH, 28, 28, 1]);
  const y = tf.oneHot(tf.tensor1d(data.labels.subarray(0, CHECK_BATCH), 'int32'), CLASSES);
  try {
    const grads = tf.tidy(() => tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, forward(graph, vars, x, { training: true }).logits) as tf.Scalar, trainable).grads);
    const out = await Promise.all(trainable.map((v) => grads[v.name]!.data() as Promise<Float32Array>));
    tf.dispose(Object.values(grads));
    return out;
  } finally {
    tf.dispose([x, y, ...vars.values()]);
  }
}

function maxRelErr(got: Float32Array[], ref: Float32Array[]): number {
  let worst = 0;
  ref.forEach((r, i) => {
    let diff = 0, mag = 1e-3;
    for (let j = 0; j < r.length; j++) {
      diff = Math.max(diff, Math.abs(got[i]![j]! - r[j]!));
      mag = Math.max(mag, Math.abs(r[j]!));
    }
    worst = Math.max(worst, diff / mag);
  });
  return worst;
}
let referenceGradients: Float32Array[] | undefined;

function syntheticBatch(rng: Rng): { nhwc: Float32Array; labels: Int32Array } {
  const nhwc = new Float32Array(BATCH * 28 * 28);
  for (let i = 0; i < nhwc.length; i++) nhwc[i] = rng.gaussian();
  const labels = new Int32Array(BATCH);
  for (let i = 0; i < BATCH; i++) labels[i] = rng.int(0, CLASSES - 1);
  return { nhwc, labels };
}

async function ortForwardMs(bytes: Uint8Array, nhwc: Float32Array, batch: number, threads: number): Promise<number> {
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(bytes, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  // Single channel: NHWC and NCHW hold the same bytes.
  const input = new ort.Tensor('float32', nhwc.subarray(0, batch * 28 * 28), [batch, 1, 28, 28]);
  const times: number[] = [];
  for (let i = 0; i < 3 + 10; i++) {
    const t0 = performance.now();
    await session.run({ input });
    if (i >= 3) times.push(performance.now() - t0);
  }
  await session.release();
  return median(times);
}

async function trainRow(backend: Exclude<BackendName, 'auto'>, stock: boolean, graph: Graph, params: ParamStore, data: { nhwc: Float32Array; labels: Int32Array }): Promise<Row> {
  const batch = backend === 'cpu' ? CPU_BATCH : BATCH;
  // Fast gradients apply only on FAST_GRADIENT_BACKENDS; elsewhere the stock ones run.
  const fast = !stock && FAST_GRADIENT_BACKENDS.has(backend);
  const row: Row = { backend, gradients: fast ? 'fast' : 'stock', batch, status: 'ok' };
  try {
    await initBackend(backend, { stockGradients: stock, filterGrad: FILTER_GRAD });
    if (fast) row.filterGrad = FILTER_GRAD === 'auto' ? autoFilterGrad(backend) : FILTER_GRAD;
  } catch (e) {
    if (e instanceof BackendUnavailableError) return { ...row, status: 'unavailable', reason: e.message };
    throw e;
  }
  row.threads = backendThreads();
  const vars = toVariables(params);
  const trainable = [...trainableVariables(vars).values()];
  const x = tf.tensor4d(data.nhwc.subarray(0, batch * 28 * 28), [batch, 28, 28, 1]);
  const y = tf.oneHot(tf.tensor1d(data.labels.subarray(0, batch), 'int32'), CLASSES);
  const optimizer = tf.train.momentum(0.01, 0.9);
  const step = async (): Promise<void> => {
    let stats: Map<string, BnBatchStats> = new Map();
    const loss = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => {
        const out = forward(graph, vars, x, { training: true });
        for (const s of out.bnBatchStats.values()) tf.keep(s.mean), tf.keep(s.variance);
        stats = out.bnBatchStats;
        return tf.losses.softmaxCrossEntropy(y, out.logits) as tf.Scalar;
      }, trainable);
      optimizer.applyGradients(grads as tf.NamedTensorMap as Record<string, tf.Variable>);
      return value;
    });
    updateRunningStats(graph, vars, stats);
    // Reading the loss waits for the step to finish (asynchronous on webgpu).
    const v = (await loss.data())[0]!;
    loss.dispose();
    if (!Number.isFinite(v)) throw new Error(`loss became ${v}`);
  };
  try {
    if (!args['skip-check'] && referenceGradients) {
      row.gradCheckRelErr = maxRelErr(await lossGradients(graph, params, data), referenceGradients);
    }
    const steps = backend === 'cpu' ? CPU_STEPS : STEPS;
    const warmup = backend === 'cpu' ? Math.min(WARMUP, 1) : WARMUP;
    for (let i = 0; i < warmup; i++) await step();
    const times: number[] = [];
    for (let i = 0; i < steps; i++) {
      const t0 = performance.now();
      await step();
      times.push(performance.now() - t0);
    }
    row.steps = steps;
    row.stepMs = median(times);
    row.trainImgPerSec = (batch / row.stepMs) * 1000;
    const fwdTimes: number[] = [];
    for (let i = 0; i < (backend === 'cpu' ? 1 : 5); i++) {
      const t0 = performance.now();
      const logits = tf.tidy(() => forward(graph, vars, x, { training: false }).logits);
      await logits.data();
      logits.dispose();
      fwdTimes.push(performance.now() - t0);
    }
    row.tfjsForwardMs = median(fwdTimes);
    if (args.profile && backend !== 'cpu') {
      const info = await tf.profile(async () => { await step(); });
      row.profileKernelLaunches = info.kernels.length;
      const byKernel = new Map<string, number>();
      for (const k of info.kernels) byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + Number(k.kernelTimeMs));
      row.profileTopKernelsMs = Object.fromEntries([...byKernel].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([k, t]) => [k, Math.round(t * 10) / 10]));
    }
  } catch (e) {
    row.status = 'failed';
    row.reason = e instanceof Error ? e.message.split('\n')[0] : String(e);
  } finally {
    tf.dispose([x, y, ...vars.values()]);
    optimizer.dispose();
  }
  return row;
}

function writeAtomic(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

const fmt = (v: number | undefined, digits = 1): string => (v === undefined ? '—' : v.toFixed(digits));

async function main(): Promise<void> {
  const graph = resnet({ depth: 20, input: [28, 28, 1], classes: CLASSES, shortcut: 'projection', head: 'gap' });
  const params = initParams(graph, new Rng(1));
  const data = syntheticBatch(new Rng(2));
  const count = countGraph(graph);
  const onnx = exportOnnx(graph, params, { labels: Array.from({ length: CLASSES }, (_, i) => String(i)), mean: [0], std: [1] });

  if (!args['skip-check']) {
    // Reference gradients from the stock cpu kernels: a wrong fast kernel (or a GPU pipeline
    // that silently failed) shows up here instead of as a fast but meaningless figure.
    await initBackend('cpu', { stockGradients: true });
    referenceGradients = await lossGradients(graph, params, data);
  }
  const requested = (args.backends ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const rows: Row[] = [];
  const ortCache = new Map<string, number>();
  for (const name of requested) {
    const stock = name.endsWith('-stock');
    const backend = name.replace(/-stock$/, '') as Exclude<BackendName, 'auto'>;
    if (!['wasm', 'cpu', 'webgpu', 'tensorflow'].includes(backend)) throw new Error(`--backends: unknown backend '${name}'`);
    process.stderr.write(`bench:train: ${name} …\n`);
    const row = await trainRow(backend, stock, graph, params, data);
    if (row.status === 'ok') {
      const key = `${row.threads ?? 1}x${row.batch}`;
      if (!ortCache.has(key)) ortCache.set(key, await ortForwardMs(onnx, data.nhwc, row.batch, row.threads ?? 1));
      row.ortForwardMs = ortCache.get(key);
      row.stepOverOrtForward = row.stepMs! / row.ortForwardMs!;
    }
    rows.push(row);
  }

  const gpu = await findWebGpuAdapter();
  const result = {
    benchmark: 'train',
    model: { arch: graph.arch, input: [28, 28, 1], classes: CLASSES, shortcut: 'projection', head: 'gap', macsPerImage: count.macs, params: count.params },
    batch: BATCH,
    optimizer: 'SGD momentum 0.9 (tf.train.momentum), BN running-statistics update included',
    ortForward: 'onnxruntime-node, intraOpNumThreads = tfjs threads, graphOptimizationLevel all, median of 10 after 3 warm-up runs',
    date: new Date().toISOString(),
    machine: {
      cpuModel: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      gpuAdapter: gpu.ok ? gpu.adapterInfo : null,
    },
    rows,
  };
  writeAtomic(resolve(args.out!), JSON.stringify(result, null, 2) + '\n');

  const header = ['backend', 'grads', 'batch', 'threads', 'step ms', 'train img/s', 'tfjs fwd ms', 'ort fwd ms', 'step/ort fwd', 'grad err vs cpu'];
  const lines = rows.map((r) =>
    r.status === 'ok'
      ? [r.backend, r.gradients + (r.filterGrad ? ` (dW ${r.filterGrad})` : ''), String(r.batch), String(r.threads), fmt(r.stepMs), fmt(r.trainImgPerSec), fmt(r.tfjsForwardMs), fmt(r.ortForwardMs), fmt(r.stepOverOrtForward, 2) + '×', r.gradCheckRelErr === undefined ? '—' : r.gradCheckRelErr.toExponential(1)]
      : [r.backend, r.gradients, String(r.batch), '—', `${r.status}: ${r.reason}`],
  );
  console.log(`ResNet-20 (28×28×1, ${(count.macs / 1e6).toFixed(1)}M MACs/img), batch ${BATCH}, ${result.machine.cpuModel} ×${result.machine.cores}, node ${process.version}`);
  console.log(`| ${header.join(' | ')} |\n|${header.map(() => '---').join('|')}|`);
  for (const l of lines) console.log(`| ${l.join(' | ')} |`);
  for (const r of rows) if (r.profileTopKernelsMs) console.log(`profile ${r.backend}/${r.gradients}${r.filterGrad ? `/${r.filterGrad}` : ''} (${r.profileKernelLaunches} kernel launches; ms per step): ${Object.entries(r.profileTopKernelsMs).map(([k, t]) => `${k} ${t}`).join(', ')}`);
  console.log(`wrote ${args.out}`);
}

await main();
