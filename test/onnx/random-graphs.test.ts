/**
 * Export parity and interpreter shapes on many small random graphs: every layer kind, odd and non-square sizes,
 * strides, paddings, unfolded and folded BNs, adds between branches. Seeded, so a failure
 * names a graph that can be rebuilt.
 */
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { initParams } from '../../compiler/graph/builders.ts';
import type { Graph, Layer, ParamStore, Shape3 } from '../../compiler/graph/ir.ts';
import { type ActShape, inferLayerShapes, inferShapes } from '../../compiler/graph/shapes.ts';
import { forward, toVariables } from '../../compiler/nn/forward.ts';
import { exportOnnx } from '../../compiler/onnx/export.ts';
import { TestRng } from '../nn/test-rng.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const pick = <T>(rng: TestRng, xs: readonly T[]): T => xs[Math.floor(rng.float() * xs.length)]!;
const int = (rng: TestRng, lo: number, hi: number): number => lo + Math.floor(rng.float() * (hi - lo + 1));

/** A random valid graph: a chain of feature-map layers with occasional adds, then a head. */
function randomGraph(seed: number): Graph {
  const rng = new TestRng(seed);
  const input: Shape3 = [int(rng, 3, 11), int(rng, 3, 11), int(rng, 1, 3)];
  const layers: Layer[] = [{ kind: 'input', name: 'input', shape: input }];
  const shapes = new Map<string, ActShape>([['input', input]]);
  let last = 'input';
  let n = 0;
  const push = (layer: Layer): void => {
    const s = inferLayerShapes({ arch: 'trial', layers: [...layers, layer], output: layer.name });
    layers.push(layer);
    shapes.set(layer.name, s.get(layer.name)!);
    last = layer.name;
  };
  const steps = int(rng, 2, 7);
  for (let i = 0; i < steps; i++) {
    const [h, w, c] = shapes.get(last) as Shape3;
    const name = `l${n++}`;
    const op = pick(rng, ['conv', 'conv', 'convbn', 'bn', 'relu', 'pool', 'padshortcut', 'add'] as const);
    if (op === 'conv' || op === 'convbn') {
      const kernel = Math.min(int(rng, 1, 3), h, w);
      push({ kind: 'conv', name, input: last, filters: int(rng, 1, 5), kernel, stride: int(rng, 1, 2), pad: int(rng, 0, kernel - 1), bias: rng.float() < 0.5 });
      if (op === 'convbn') push({ kind: 'bn', name: `${name}.bn`, input: name, eps: pick(rng, [1e-5, 1e-3]), momentum: 0.9 });
    } else if (op === 'bn') {
      push({ kind: 'bn', name, input: last, eps: 1e-5, momentum: 0.9 });
    } else if (op === 'relu') {
      push({ kind: 'relu', name, input: last });
    } else if (op === 'pool') {
      const kernel = Math.min(int(rng, 1, 3), h, w);
      push({ kind: pick(rng, ['maxpool', 'avgpool'] as const), name, input: last, kernel, stride: int(rng, 1, 2), pad: int(rng, 0, kernel >> 1) });
    } else if (op === 'padshortcut') {
      push({ kind: 'padshortcut', name, input: last, stride: int(rng, 1, 2), filters: c + int(rng, 0, 3) });
    } else {
      // Add the current tensor to an earlier one of the same shape, or else to its own ReLU.
      const same = [...shapes].filter(([k, s]) => k !== last && s.join() === [h, w, c].join()).map(([k]) => k);
      const a = last;
      let b: string;
      if (same.length > 0) b = pick(rng, same);
      else push({ kind: 'relu', name: (b = `${name}.r`), input: last });
      push({ kind: 'add', name, inputs: [a, b] });
    }
  }
  const [h, w] = shapes.get(last) as Shape3;
  if (rng.float() < 0.5 || h * w === 1) push({ kind: 'globalavgpool', name: 'head', input: last });
  else push({ kind: 'flatten', name: 'head', input: last });
  if (rng.float() < 0.3) push({ kind: 'relu', name: 'head.relu', input: last });
  push({ kind: 'dense', name: 'fc', input: last, units: int(rng, 1, 4) });
  if (rng.float() < 0.3) push({ kind: 'bn', name: 'fc.bn', input: 'fc', eps: 1e-5, momentum: 0.9 });
  const graph: Graph = { arch: `random-${seed}`, layers, output: last };
  inferShapes(graph);
  return graph;
}

function randomParams(graph: Graph, seed: number): ParamStore {
  const rng = new TestRng(seed);
  const p = initParams(graph, rng);
  for (const [key, t] of p) {
    const n = t.data.length;
    if (key.endsWith('/gamma')) t.data.set(rng.uniform(n, 0.5, 1.5));
    if (key.endsWith('/beta') || key.endsWith('/mean') || key.endsWith('/bias')) t.data.set(rng.uniform(n, -0.5, 0.5));
    if (key.endsWith('/variance')) t.data.set(rng.uniform(n, 0.5, 2));
  }
  return p;
}

describe('exportOnnx parity on 120 random graphs', () => {
  it('onnxruntime-node matches the tfjs interpreter within 1e-4 on every graph', async () => {
    const kinds = new Set<string>();
    for (let seed = 1; seed <= 120; seed++) {
      const graph = randomGraph(seed);
      for (const l of graph.layers) kinds.add(l.kind);
      const params = randomParams(graph, seed + 1000);
      const [h, w, c] = (graph.layers[0] as { shape: Shape3 }).shape;
      const units = (inferShapes(graph).get(graph.output) as [number])[0];
      const bytes = exportOnnx(graph, params, { labels: Array.from({ length: units }, (_, i) => `${i}`), mean: Array(c).fill(0), std: Array(c).fill(1) });
      const n = 3;
      const x = new TestRng(seed + 2000).uniform(n * h * w * c, -2, 2);
      const vars = toVariables(params);
      const want = tf.tidy(() => forward(graph, vars, tf.tensor4d(x, [n, h, w, c]), { training: false }).logits.dataSync());
      tf.dispose([...vars.values()]);
      const nchw = new Float32Array(x.length);
      for (let b = 0; b < n; b++)
        for (let y = 0; y < h; y++)
          for (let xx = 0; xx < w; xx++) for (let ch = 0; ch < c; ch++) nchw[((b * c + ch) * h + y) * w + xx] = x[((b * h + y) * w + xx) * c + ch]!;
      const session = await ort.InferenceSession.create(bytes);
      const got = (await session.run({ input: new ort.Tensor('float32', nchw, [n, c, h, w]) })).logits!.data as Float32Array;
      await session.release();
      const diff = Math.max(...Array.from(got, (v, i) => Math.abs(v - want[i]!)));
      const layers = graph.layers.map((l) => `${l.name}:${l.kind}`).join(' ');
      expect(diff, `${graph.arch} ${layers}`).toBeLessThanOrEqual(1e-4);
    }
    // The generator really covers every layer kind.
    expect([...kinds].sort()).toEqual(['add', 'avgpool', 'bn', 'conv', 'dense', 'flatten', 'globalavgpool', 'input', 'maxpool', 'padshortcut', 'relu']);
  });

  it('every layer output of the tfjs interpreter has the inferred shape, in both modes', () => {
    for (let seed = 1; seed <= 120; seed++) {
      const graph = randomGraph(seed);
      const shapes = inferShapes(graph);
      const [h, w, c] = (graph.layers[0] as { shape: Shape3 }).shape;
      const vars = toVariables(randomParams(graph, seed));
      for (const training of [false, true]) {
        tf.tidy(() => {
          const r = forward(graph, vars, tf.randomUniform([2, h, w, c]) as tf.Tensor4D, { training, taps: graph.layers.map((l) => l.name) });
          for (const [name, shape] of shapes) expect(r.taps.get(name)!.shape, `${graph.arch} ${name}`).toEqual([2, ...shape]);
          expect(r.bnBatchStats.size).toBe(training ? graph.layers.filter((l) => l.kind === 'bn').length : 0);
        });
      }
      tf.dispose([...vars.values()]);
    }
  });
});
