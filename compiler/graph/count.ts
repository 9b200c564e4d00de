/**
 * MACs and parameter counts, using the convention of the pruning literature (CHIP,
 * HRank; catro.md §5): MACs of conv and dense layers only; params = conv and dense
 * weights and biases plus BN γ/β (running statistics are not parameters).
 */
import type { Graph, LayerKind } from './ir.ts';
import { type ActShape, inferShapes } from './shapes.ts';

export interface LayerCount {
  name: string;
  kind: LayerKind;
  shape: ActShape;
  macs: number;
  params: number;
}

export interface GraphCount {
  macs: number;
  params: number;
  perLayer: LayerCount[];
}

export function countGraph(graph: Graph): GraphCount {
  const shapes = inferShapes(graph);
  const perLayer: LayerCount[] = [];
  let macs = 0;
  let params = 0;
  for (const layer of graph.layers) {
    const shape = shapes.get(layer.name)!;
    let m = 0;
    let p = 0;
    if (layer.kind === 'conv') {
      const inC = shapes.get(layer.input)![2]!;
      const [h, w, c] = shape as [number, number, number];
      p = layer.kernel * layer.kernel * inC * c + (layer.bias ? c : 0);
      m = h * w * c * layer.kernel * layer.kernel * inC;
    } else if (layer.kind === 'dense') {
      const inN = shapes.get(layer.input)![0]!;
      p = inN * layer.units + layer.units;
      m = inN * layer.units;
    } else if (layer.kind === 'bn') {
      p = 2 * shape[shape.length - 1]!;
    }
    macs += m;
    params += p;
    perLayer.push({ name: layer.name, kind: layer.kind, shape, macs: m, params: p });
  }
  return { macs, params, perLayer };
}
