/**
 * One convolution on each of the training graph's conv kernels (`ConvKernel`: onnxruntime's
 * standard Conv against its blocked NCHWc kernels called directly), with the weights as a
 * graph input as in training, so the blocked form pays its in-graph weight reorder and the
 * activation reorders. ResNet-20's conv shapes on 28×28 inputs; one thread; the kernels
 * interleaved over rounds; the outputs compared.
 *
 *   npm run bench:conv-kernels -- [--batch 64] [--rounds 5] [--runs 20] [--out bench/results/conv-kernels.json]
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { defaultConvKernel } from '../compiler/engine/ort/engine.ts';
import { type ConvKernel, emitConv, NCHWC_DOMAIN } from '../compiler/engine/ort/training-graph.ts';
import { encodeModel, GraphBuilder } from '../compiler/onnx/builder.ts';
import { writeFileAtomic } from '../compiler/pipeline/cache.ts';
import { Rng } from '../shared/rng.ts';
import { median } from './stats.ts';

const { values } = parseArgs({ options: { batch: { type: 'string', default: '64' }, rounds: { type: 'string', default: '5' }, runs: { type: 'string', default: '20' }, out: { type: 'string' } } });
const n = Number(values.batch);
const rounds = Number(values.rounds);
const runs = Number(values.runs);
const blocked = await defaultConvKernel('cpu');
if (blocked === 'nchw') {
  console.log('bench:conv-kernels: this onnxruntime has no NCHWc kernels on this CPU; nothing to compare');
  process.exit(0);
}
const kernels: ConvKernel[] = ['nchw', blocked];

/** [ci, co, size, stride]: the stem, each stage's 3×3 conv, a stage's first (strided) conv. */
const SHAPES: [number, number, number, number][] = [
  [1, 16, 28, 1],
  [16, 16, 28, 1],
  [32, 32, 14, 1],
  [64, 64, 7, 1],
  [16, 32, 28, 2],
  [32, 64, 14, 2],
];

function model(kernel: ConvKernel, ci: number, co: number, size: number, stride: number): Uint8Array {
  const b = new GraphBuilder();
  const x = b.input('x', [n, ci, size, size]);
  const w = b.input('w', [co, ci, 3, 3]);
  const y = emitConv(b, kernel, x, w, undefined, { k: 3, stride, pad: 1, ci, co }, 'y');
  const out = Math.floor((size - 1) / stride) + 1;
  b.output(y, [n, co, out, out]);
  return encodeModel(
    { name: 'conv', nodes: b.nodes, initializers: b.initializers, inputs: b.inputs, outputs: b.outputs, producerName: 'facet', producerVersion: 'bench', extraOpsets: kernel === 'nchw' ? [] : [{ domain: NCHWC_DOMAIN, version: 1 }] },
    'bench:conv-kernels',
  );
}

const rng = new Rng(0);
const results = [];
console.log(`| conv (batch ${n}, 1 thread) | ${kernels.map((k) => `${k} ms (GMAC/s)`).join(' | ')} | ${blocked} vs nchw | max rel. difference |`);
console.log(`|---|${kernels.map(() => '---|').join('')}---|---|`);
for (const [ci, co, size, stride] of SHAPES) {
  const x = new ort.Tensor('float32', Float32Array.from({ length: n * ci * size * size }, () => rng.gaussian()), [n, ci, size, size]);
  const w = new ort.Tensor('float32', Float32Array.from({ length: co * ci * 9 }, () => rng.gaussian() * 0.1), [co, ci, 3, 3]);
  const sessions = await Promise.all(kernels.map((k) => ort.InferenceSession.create(model(k, ci, co, size, stride), { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential' })));
  const outs = await Promise.all(sessions.map(async (s) => (await s.run({ x, w })).y!.data as Float32Array));
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < outs[0]!.length; i++) {
    diff = Math.max(diff, Math.abs(outs[0]![i]! - outs[1]![i]!));
    scale = Math.max(scale, Math.abs(outs[0]![i]!));
  }
  // Into a preallocated output, as the engine's steps run: a fresh multi-MB output per run
  // costs page faults whose price this shared VM varies tenfold.
  const size2 = Math.floor((size - 1) / stride) + 1;
  const y = new ort.Tensor('float32', new Float32Array(n * co * size2 * size2), [n, co, size2, size2]);
  for (const s of sessions) for (let j = 0; j < runs; j++) await s.run({ x, w }, { y }); // warm-up
  const times: number[][] = kernels.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (const [i, s] of sessions.entries()) {
      const t0 = performance.now();
      for (let j = 0; j < runs; j++) await s.run({ x, w }, { y });
      times[i]!.push((performance.now() - t0) / runs);
    }
  }
  const ms = times.map((t) => median(t));
  const macs = n * co * ci * 9 * size2 * size2;
  const label = `${ci} → ${co}, ${size}×${size}${stride > 1 ? `, stride ${stride}` : ''}`;
  console.log(`| ${label} | ${ms.map((m) => `${m.toFixed(2)} (${(macs / m / 1e6).toFixed(0)})`).join(' | ')} | ${(ms[0]! / ms[1]!).toFixed(2)}× | ${(diff / scale).toExponential(1)} |`);
  results.push({ ci, co, size, stride, ms: Object.fromEntries(kernels.map((k, i) => [k, ms[i]])), relDiff: diff / scale });
  await Promise.all(sessions.map((s) => s.release()));
}
if (values.out) {
  await writeFileAtomic(values.out, `${JSON.stringify({ benchmark: 'conv-kernels', finished: new Date().toISOString(), cpu: cpus()[0]?.model, batch: n, threads: 1, rounds, runs, results }, null, 1)}\n`);
  console.log(`wrote ${values.out}`);
}
