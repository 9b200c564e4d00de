/**
 * Batch-norm re-estimation after pruning ("adaptive BN"): removing channels shifts the
 * statistics every later BN sees, so its running mean and variance no longer normalise
 * its input, and a pruned network scores near chance before any fine-tuning. Re-estimating
 * them on a few hundred training images (no gradients) fixes that at no training cost, and
 * makes "right after pruning" accuracy a fair comparison between channel selectors.
 *
 * BN layers are visited in graph order; each one's input is measured on the network with
 * every earlier BN already re-estimated (one eval-mode pass per BN, stopped at its input).
 */
import type { Graph, ParamStore } from '../graph/ir.ts';
import { paramKey } from '../graph/ir.ts';
import { inferShapes } from '../graph/shapes.ts';
import { type TapRunner, truncateToTaps } from './catro.ts';

export async function recalibrateBatchNorm(
  graph: Graph,
  params: ParamStore,
  x: Float32Array,
  n: number,
  run: TapRunner,
  opts: { batchSize?: number } = {},
): Promise<ParamStore> {
  const batch = opts.batchSize ?? 64;
  if (!(n > 0) || x.length % n !== 0) throw new Error(`recalibrateBatchNorm: ${x.length} input values do not split into ${n} samples`);
  const shapes = inferShapes(graph);
  const per = x.length / n;
  const out: ParamStore = new Map(params);
  for (const layer of graph.layers) {
    if (layer.kind !== 'bn') continue;
    const shape = shapes.get(layer.input)!;
    const C = shape[shape.length - 1]!;
    const sum = new Float64Array(C);
    const sumSq = new Float64Array(C);
    let count = 0;
    const session = run(truncateToTaps(graph, [layer.input]), out);
    try {
      for (let lo = 0; lo < n; lo += batch) {
        const hi = Math.min(n, lo + batch);
        const t = (await session.run(x.subarray(lo * per, hi * per), hi - lo, [layer.input])).get(layer.input);
        if (!t) throw new Error(`recalibrateBatchNorm: the tap runner returned no tensor for "${layer.input}"`);
        for (let i = 0; i < t.data.length; i++) {
          const v = t.data[i]!;
          sum[i % C]! += v;
          sumSq[i % C]! += v * v;
        }
        count += t.data.length / C;
      }
    } finally {
      session.dispose();
    }
    const mean = new Float32Array(C);
    const variance = new Float32Array(C);
    for (let c = 0; c < C; c++) {
      const m = sum[c]! / count;
      mean[c] = m;
      variance[c] = Math.max(0, sumSq[c]! / count - m * m);
    }
    out.set(paramKey(layer.name, 'mean'), { shape: [C], data: mean });
    out.set(paramKey(layer.name, 'variance'), { shape: [C], data: variance });
  }
  return out;
}
