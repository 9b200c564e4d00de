/** Small graphs with random parameters and non-trivial BN statistics for catro tests. */
import { initParams, resnet, vgg } from '../../compiler/graph/builders.ts';
import type { Graph, ParamStore } from '../../compiler/graph/ir.ts';
import { prng, testRng } from './helpers.ts';

export function randomBnParams(graph: Graph, seed: number): ParamStore {
  const params = initParams(graph, testRng(seed));
  const rand = prng(seed + 1);
  for (const l of graph.layers) {
    if (l.kind !== 'bn') continue;
    for (const [name, lo, hi] of [['gamma', 0.5, 1.5], ['beta', -0.3, 0.3], ['mean', -0.2, 0.2], ['variance', 0.5, 2]] as const) {
      const t = params.get(`${l.name}/${name}`)!;
      for (let i = 0; i < t.data.length; i++) t.data[i] = lo + (hi - lo) * rand();
    }
  }
  return params;
}

export const tinyResnet = (shortcut: 'projection' | 'A' = 'projection', head: 'gap' | 'pool2x2' = 'gap') =>
  resnet({ depth: 8, width: 0.5, input: [8, 8, 1], classes: 5, shortcut, head });
export const tinyVgg = () => vgg({ stages: [6, 'M', 8, 8, 'M', 10], input: [8, 8, 3], classes: 4 });

export function randomImages(seed: number, n: number, size: number): Float32Array {
  const rand = prng(seed);
  return Float32Array.from({ length: n * size }, () => rand() * 2 - 1);
}
