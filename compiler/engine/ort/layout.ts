/**
 * Parameter layouts at the boundary between a ParamStore (conv kernels HWIO, as the graph
 * IR keeps them) and onnxruntime (OIHW). Dense kernels ([in, units]) and every vector have
 * the same layout on both sides. Optimizer slots follow their parameter's layout.
 */
import type { Graph, HostTensor, Layer } from '../../graph/ir.ts';
import type { ActShape } from '../../graph/shapes.ts';

/** The onnxruntime-side shape of parameter `param` of `layer`. */
export function ortParamShape(graph: Graph, shapes: Map<string, ActShape>, layer: Layer, param: string): number[] {
  switch (layer.kind) {
    case 'conv': {
      const s = shapes.get(layer.input)!;
      const inC = s[s.length - 1]!;
      return param === 'kernel' ? [layer.filters, inC, layer.kernel, layer.kernel] : [layer.filters];
    }
    case 'bn': {
      const s = shapes.get(layer.input)!;
      return [s[s.length - 1]!];
    }
    case 'dense': {
      const s = shapes.get(layer.input)!;
      return param === 'kernel' ? [s[0]!, layer.units] : [layer.units];
    }
    default:
      throw new Error(`graph ${graph.arch}: layer "${layer.name}" (${layer.kind}) has no parameter "${param}"`);
  }
}

/** HWIO [kh, kw, in, out] → OIHW [out, in, kh, kw]. */
export function hwioToOihw(t: HostTensor): HostTensor {
  const [kh, kw, inC, outC] = t.shape as [number, number, number, number];
  const out = new Float32Array(t.data.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < inC; i++)
        for (let o = 0; o < outC; o++) out[((o * inC + i) * kh + y) * kw + x] = t.data[((y * kw + x) * inC + i) * outC + o]!;
  return { shape: [outC, inC, kh, kw], data: out };
}

/** OIHW [out, in, kh, kw] → HWIO [kh, kw, in, out]. */
export function oihwToHwio(t: HostTensor): HostTensor {
  const [outC, inC, kh, kw] = t.shape as [number, number, number, number];
  const out = new Float32Array(t.data.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < inC; i++)
        for (let o = 0; o < outC; o++) out[((y * kw + x) * inC + i) * outC + o] = t.data[((o * inC + i) * kh + y) * kw + x]!;
  return { shape: [kh, kw, inC, outC], data: out };
}

/** Keys whose tensors are conv kernels (or their optimizer slots): the ones to transpose. */
export function isConvKernelKey(graph: Graph, key: string): boolean {
  const param = key.split('#')[0]!;
  const slash = param.lastIndexOf('/');
  if (param.slice(slash + 1) !== 'kernel') return false;
  const layer = graph.layers.find((l) => l.name === param.slice(0, slash));
  return layer?.kind === 'conv';
}

export const toOrtLayout = (graph: Graph, key: string, t: HostTensor): HostTensor => (isConvKernelKey(graph, key) ? hwioToOihw(t) : t);
export const fromOrtLayout = (graph: Graph, key: string, t: HostTensor): HostTensor => (isConvKernelKey(graph, key) ? oihwToHwio(t) : t);
