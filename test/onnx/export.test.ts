import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { createHash } from 'node:crypto';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { initParams, resnet, vgg } from '../../compiler/graph/builders.ts';
import type { Graph, ParamStore, Shape3 } from '../../compiler/graph/ir.ts';
import { inputLayer } from '../../compiler/graph/shapes.ts';
import { predict } from '../../compiler/nn/forward.ts';
import { exportOnnx, ONNX_IR_VERSION, ONNX_OPSET, readOnnxSummary } from '../../compiler/onnx/export.ts';
import { TestRng } from '../nn/test-rng.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Random parameters with BN statistics far from identity, so folding is really tested. */
function randomParams(graph: Graph, seed: number): ParamStore {
  const rng = new TestRng(seed);
  const p = initParams(graph, rng);
  for (const [key, t] of p) {
    const n = t.data.length;
    if (key.endsWith('/gamma')) t.data.set(rng.uniform(n, 0.5, 1.5));
    if (key.endsWith('/beta')) t.data.set(rng.uniform(n, -0.5, 0.5));
    if (key.endsWith('/mean')) t.data.set(rng.uniform(n, -0.5, 0.5));
    if (key.endsWith('/variance')) t.data.set(rng.uniform(n, 0.5, 2));
    if (key.endsWith('/bias')) t.data.set(rng.uniform(n, -0.2, 0.2));
  }
  return p;
}

const labelsFor = (n: number) => Array.from({ length: n }, (_, i) => `class ${i}`);

/** NHWC batch → NCHW copy for onnxruntime. */
function toNchw(x: Float32Array, n: number, [h, w, c]: Shape3): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < n; b++)
    for (let y = 0; y < h; y++)
      for (let xx = 0; xx < w; xx++)
        for (let ch = 0; ch < c; ch++) out[((b * c + ch) * h + y) * w + xx] = x[((b * h + y) * w + xx) * c + ch]!;
  return out;
}

/** Max |tfjs − onnxruntime| over the batch of 5 and over batch 1 (its first sample). */
async function maxDiff(graph: Graph, params: ParamStore, bytes: Uint8Array, seed: number): Promise<number> {
  const shape = inputLayer(graph).shape;
  const [h, w, c] = shape;
  const n = 5;
  const x = new TestRng(seed).uniform(n * h * w * c, -2, 2);
  const want = (await predict(graph, params, tf.tensor4d(x, [n, h, w, c])).data()) as Float32Array;
  const classes = want.length / n;
  const session = await ort.InferenceSession.create(bytes);
  const nchw = toNchw(x, n, shape);
  let diff = 0;
  for (const batch of [n, 1]) {
    const out = await session.run({ input: new ort.Tensor('float32', nchw.subarray(0, batch * c * h * w), [batch, c, h, w]) });
    expect(out.logits!.dims).toEqual([batch, classes]);
    const got = out.logits!.data as Float32Array;
    for (let i = 0; i < batch * classes; i++) diff = Math.max(diff, Math.abs(got[i]! - want[i]!));
  }
  await session.release();
  // A model computing nothing useful would also "agree" with itself; make sure logits vary.
  expect(Math.max(...want) - Math.min(...want)).toBeGreaterThan(1e-2);
  return diff;
}

describe('exportOnnx agrees with the tfjs interpreter in onnxruntime-node (max |Δ| ≤ 1e-4)', () => {
  const cases: [string, Graph][] = [];
  for (const shortcut of ['A', 'projection'] as const)
    for (const head of ['gap', 'pool2x2'] as const)
      for (const input of [[28, 28, 1], [32, 32, 3]] as Shape3[])
        cases.push([`resnet20 ${shortcut} ${head} ${input.join('×')}`, resnet({ depth: 20, input, classes: 10, shortcut, head })]);
  cases.push(['vgg gap 32×32×3', vgg({ input: [32, 32, 3], classes: 7, stages: [16, 'M', 32, 'M', 32] })]);
  cases.push(['vgg flatten 28×28×1 (dense rows permuted)', vgg({ input: [28, 28, 1], classes: 4, stages: [8, 'M', 12, 'M'], head: 'flatten' })]);

  it.each(cases)('%s', async (_name, graph) => {
    const params = randomParams(graph, 11);
    const channels = inputLayer(graph).shape[2];
    const classes = (graph.layers.find((l) => l.name === graph.output) as { units: number }).units;
    const bytes = exportOnnx(graph, params, { labels: labelsFor(classes), mean: Array(channels).fill(0.5), std: Array(channels).fill(0.25) });
    expect(await maxDiff(graph, params, bytes, 12)).toBeLessThanOrEqual(1e-4);
  });

  it('folds BN into a conv with bias; handles unfolded BN (after ReLU and on a vector), padded pools (padding not averaged), flatten into non-dense, and an output that is not dense', async () => {
    const graph: Graph = {
      arch: 'odd',
      layers: [
        { kind: 'input', name: 'input', shape: [6, 5, 2] },
        { kind: 'conv', name: 'c1', input: 'input', filters: 3, kernel: 3, stride: 2, pad: 1, bias: true },
        { kind: 'relu', name: 'r1', input: 'c1' },
        { kind: 'bn', name: 'bn1', input: 'r1', eps: 1e-3, momentum: 0.9 },
        { kind: 'conv', name: 'c2', input: 'bn1', filters: 3, kernel: 1, stride: 1, pad: 0, bias: true },
        { kind: 'bn', name: 'bn3', input: 'c2', eps: 1e-2, momentum: 0.9 },
        { kind: 'add', name: 'sum', inputs: ['bn3', 'bn1'] },
        { kind: 'maxpool', name: 'mp', input: 'sum', kernel: 2, stride: 1, pad: 1 },
        { kind: 'avgpool', name: 'ap', input: 'mp', kernel: 3, stride: 2, pad: 1 },
        { kind: 'flatten', name: 'flat', input: 'ap' },
        { kind: 'relu', name: 'r2', input: 'flat' },
        { kind: 'dense', name: 'fc', input: 'r2', units: 4 },
        { kind: 'bn', name: 'bn2', input: 'fc', eps: 1e-5, momentum: 0.9 },
      ],
      output: 'bn2',
    };
    const params = randomParams(graph, 13);
    const bytes = exportOnnx(graph, params, { labels: labelsFor(4), mean: [0, 0], std: [1, 1] });
    expect(readOnnxSummary(bytes).ops).toEqual(['Conv', 'Relu', 'Mul', 'Add', 'Conv', 'Add', 'MaxPool', 'AveragePool', 'Transpose', 'Flatten', 'Relu', 'Gemm', 'Mul', 'Add']);
    expect(await maxDiff(graph, params, bytes, 14)).toBeLessThanOrEqual(1e-4);
  });
});

describe('exportOnnx file contents', () => {
  const graph = resnet({ depth: 8, width: 0.5, input: [16, 16, 1], classes: 3, shortcut: 'A' });
  const meta = { labels: ['Sandal', 'Sneaker', 'Ankle "boot"'], classes: [5, 7, 9], mean: [0.286], std: [0.353] };

  it('round-trips the metadata, IR version, opset and producer', () => {
    const s = readOnnxSummary(exportOnnx(graph, randomParams(graph, 1), meta));
    expect(s.irVersion).toBe(ONNX_IR_VERSION);
    expect(s.opset).toBe(ONNX_OPSET);
    expect(s.producerName).toBe('facet');
    expect(s.producerVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(JSON.parse(s.metadata['facet.labels']!)).toEqual(meta.labels);
    expect(JSON.parse(s.metadata['facet.classes']!)).toEqual(meta.classes);
    expect(JSON.parse(s.metadata['facet.mean']!)).toEqual(meta.mean);
    expect(JSON.parse(s.metadata['facet.std']!)).toEqual(meta.std);
    expect(s.metadata['facet.arch']).toBe(graph.arch);
  });

  it('declares input [N, C, H, W] and output [N, classes] with a symbolic batch', async () => {
    const session = await ort.InferenceSession.create(exportOnnx(graph, randomParams(graph, 1), meta));
    expect(session.inputNames).toEqual(['input']);
    expect(session.outputNames).toEqual(['logits']);
    const inMeta = session.inputMetadata[0] as unknown as { shape: (number | string)[] };
    const outMeta = session.outputMetadata[0] as unknown as { shape: (number | string)[] };
    expect(inMeta.shape).toEqual(['N', 1, 16, 16]);
    expect(outMeta.shape).toEqual(['N', 3]);
    await session.release();
  });

  it('is byte-for-byte deterministic, and different parameters give different bytes', () => {
    const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
    const a = sha(exportOnnx(graph, randomParams(graph, 2), meta));
    expect(sha(exportOnnx(graph, randomParams(graph, 2), meta))).toBe(a);
    expect(sha(exportOnnx(graph, randomParams(graph, 3), meta))).not.toBe(a);
  });

  it('rejects metadata and parameters that do not fit the graph, naming the field', () => {
    const p = randomParams(graph, 4);
    expect(() => exportOnnx(graph, p, { ...meta, labels: ['a', 'b'] })).toThrow(/meta\.labels must be 3 strings/);
    expect(() => exportOnnx(graph, p, { ...meta, mean: [0.1, 0.2, 0.3] })).toThrow(/meta\.mean must be 1 finite/);
    expect(() => exportOnnx(graph, p, { ...meta, std: [0] })).toThrow(/meta\.std must be > 0/);
    expect(() => exportOnnx(graph, p, { ...meta, classes: [1, 2] })).toThrow(/meta\.classes/);
    p.delete('s1b0.bn2/variance');
    expect(() => exportOnnx(graph, p, meta)).toThrow(/"s1b0\.bn2\/variance" is missing/);
  });
});
