/**
 * ONNX export benchmark: for CIFAR-style ResNets (both shortcut kinds, pool2x2 head) on
 * 28×28×1 and 32×32×3, the export time, file size, MACs, onnxruntime-node session
 * creation, batch-1 latency (median) and batch-64 throughput (single thread, as the edge
 * runs), and the largest |Δ| against the tfjs interpreter on 4 random inputs (with the
 * largest |logit|: float32 error grows with it on deep random-weight nets).
 *
 *   npx tsx bench/export.ts [--depths 20,56] [--runs 50]
 */
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { parseArgs } from 'node:util';
import { initParams, resnet } from '../compiler/graph/builders.ts';
import { countGraph } from '../compiler/graph/count.ts';
import type { Shape3 } from '../compiler/graph/ir.ts';
import { predict } from '../compiler/nn/forward.ts';
import { exportOnnx } from '../compiler/onnx/export.ts';
import { Rng } from '../shared/rng.ts';
import { median } from './stats.ts';

const { values } = parseArgs({ options: { depths: { type: 'string', default: '20,56' }, runs: { type: 'string', default: '50' } } });
const depths = values.depths.split(',').map(Number);
const runs = Number(values.runs);
await tf.setBackend('cpu');

const rows: string[][] = [['model', 'input', 'MACs', 'KiB', 'export ms', 'session ms', 'b1 ms', 'b64 img/s', 'max |Δ|', 'max |logit|']];
for (const depth of depths)
  for (const shortcut of ['A', 'projection'] as const)
    for (const input of [[28, 28, 1], [32, 32, 3]] as Shape3[]) {
      const graph = resnet({ depth, input, classes: 10, shortcut, head: 'pool2x2' });
      const rng = new Rng(depth);
      const params = initParams(graph, rng);
      for (const [k, t] of params) if (k.endsWith('/mean') || k.endsWith('/beta')) for (let i = 0; i < t.data.length; i++) t.data[i] = rng.float() - 0.5;
      const [h, w, c] = input;
      const meta = { labels: Array.from({ length: 10 }, (_, i) => `c${i}`), mean: Array(c).fill(0.5), std: Array(c).fill(0.25) };
      let t0 = performance.now();
      const bytes = exportOnnx(graph, params, meta);
      const exportMs = performance.now() - t0;
      t0 = performance.now();
      const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
      const sessionMs = performance.now() - t0;
      const x = (n: number) => Float32Array.from({ length: n * h * w * c }, () => rng.float() * 2 - 1);
      const one = new ort.Tensor('float32', x(1), [1, c, h, w]);
      for (let i = 0; i < 5; i++) await session.run({ input: one });
      const lat: number[] = [];
      for (let i = 0; i < runs; i++) {
        t0 = performance.now();
        await session.run({ input: one });
        lat.push(performance.now() - t0);
      }
      const big = new ort.Tensor('float32', x(64), [64, c, h, w]);
      await session.run({ input: big });
      t0 = performance.now();
      const reps = 3;
      for (let i = 0; i < reps; i++) await session.run({ input: big });
      const throughput = (64 * reps) / ((performance.now() - t0) / 1000);
      // |Δ| against tfjs on NHWC data; onnxruntime gets the same values in NCHW order.
      const nhwc = x(4);
      const nchw = new Float32Array(nhwc.length);
      for (let b = 0; b < 4; b++)
        for (let y = 0; y < h; y++)
          for (let xx = 0; xx < w; xx++)
            for (let ch = 0; ch < c; ch++) nchw[((b * c + ch) * h + y) * w + xx] = nhwc[((b * h + y) * w + xx) * c + ch]!;
      const want = await predict(graph, params, tf.tensor4d(nhwc, [4, h, w, c])).data();
      const got = (await session.run({ input: new ort.Tensor('float32', nchw, [4, c, h, w]) })).logits!.data as Float32Array;
      let diff = 0;
      for (let i = 0; i < got.length; i++) diff = Math.max(diff, Math.abs(got[i]! - want[i]!));
      await session.release();
      rows.push([
        graph.arch,
        input.join('×'),
        `${(countGraph(graph).macs / 1e6).toFixed(2)}M`,
        (bytes.length / 1024).toFixed(0),
        exportMs.toFixed(0),
        sessionMs.toFixed(0),
        median(lat).toFixed(2),
        throughput.toFixed(0),
        diff.toExponential(1),
        Math.max(...Array.from(want, Math.abs)).toPrecision(3),
      ]);
    }
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
for (const r of rows) console.log(r.map((v, i) => (i < 2 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join('  '));
console.log(`onnxruntime-node ${ort.env.versions?.common ?? ''}, 1 thread; node ${process.version}`);
