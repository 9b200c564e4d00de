/**
 * Export parity and interpreter shapes on many small random graphs: every layer kind, odd and non-square sizes,
 * strides, paddings, unfolded and folded BNs, adds between branches. Seeded, so a failure
 * names a graph that can be rebuilt.
 */
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Shape3 } from '../../compiler/graph/ir.ts';
import { inferShapes } from '../../compiler/graph/shapes.ts';
import { forward, toVariables } from '../../compiler/nn/forward.ts';
import { exportOnnx } from '../../compiler/onnx/export.ts';
import { TestRng } from '../nn/test-rng.ts';
import { randomGraph, randomParams } from '../helpers/random-graphs.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

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
