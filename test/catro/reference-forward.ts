/**
 * A naive, framework-free eval-mode interpreter of the graph IR for catro tests: small
 * graphs only. Independent of compiler/nn so the pruner's checks don't share its bugs.
 */
import type { Graph, HostTensor, ParamStore } from '../../compiler/graph/ir.ts';
import { inferShapes } from '../../compiler/graph/shapes.ts';

const p = (params: ParamStore, layer: string, name: string): Float32Array => {
  const t = params.get(`${layer}/${name}`);
  if (!t) throw new Error(`missing ${layer}/${name}`);
  return t.data;
};

/** Runs n NHWC samples; returns every layer's output (n × per-sample size, NHWC). */
export function referenceForward(graph: Graph, params: ParamStore, x: Float32Array, n: number): Map<string, HostTensor> {
  const shapes = inferShapes(graph);
  const out = new Map<string, HostTensor>();
  for (const l of graph.layers) {
    const shape = shapes.get(l.name)!;
    const size = shape.reduce((a, b) => a * b, 1);
    const y = new Float32Array(n * size);
    const inShape = l.kind === 'input' ? shape : shapes.get(l.kind === 'add' ? l.inputs[0] : l.input)!;
    const inp = l.kind === 'input' ? x : out.get(l.kind === 'add' ? l.inputs[0] : l.input)!.data;
    const inSize = inShape.reduce((a, b) => a * b, 1);
    const [H, W, C] = inShape.length === 3 ? inShape : [1, 1, inShape[0]];
    const [OH, OW, OC] = shape.length === 3 ? shape : [1, 1, shape[0]];
    for (let s = 0; s < n; s++) {
      const xi = inp.subarray(s * inSize, (s + 1) * inSize);
      const yo = y.subarray(s * size, (s + 1) * size);
      switch (l.kind) {
        case 'input':
          yo.set(xi);
          break;
        case 'conv':
        case 'maxpool':
        case 'avgpool': {
          const K = l.kernel;
          const kern = l.kind === 'conv' ? p(params, l.name, 'kernel') : undefined;
          const bias = l.kind === 'conv' && l.bias ? p(params, l.name, 'bias') : undefined;
          for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) for (let oc = 0; oc < OC; oc++) {
            let acc = l.kind === 'maxpool' ? -Infinity : 0;
            let cnt = 0;
            for (let kh = 0; kh < K; kh++) for (let kw = 0; kw < K; kw++) {
              const ih = oh * l.stride + kh - l.pad;
              const iw = ow * l.stride + kw - l.pad;
              if (ih < 0 || iw < 0 || ih >= H || iw >= W) continue;
              if (kern) {
                for (let ic = 0; ic < C; ic++) acc += xi[(ih * W + iw) * C + ic] * kern[((kh * K + kw) * C + ic) * OC + oc];
              } else if (l.kind === 'maxpool') acc = Math.max(acc, xi[(ih * W + iw) * C + oc]);
              else {
                acc += xi[(ih * W + iw) * C + oc];
                cnt++;
              }
            }
            if (l.kind === 'avgpool') acc /= cnt;
            yo[(oh * OW + ow) * OC + oc] = acc + (bias ? bias[oc] : 0);
          }
          break;
        }
        case 'bn': {
          const [g, b, m, v] = ['gamma', 'beta', 'mean', 'variance'].map((k) => p(params, l.name, k));
          for (let i = 0; i < size; i++) {
            const c = i % C;
            yo[i] = ((xi[i] - m[c]) / Math.sqrt(v[c] + l.eps)) * g[c] + b[c];
          }
          break;
        }
        case 'relu':
          for (let i = 0; i < size; i++) yo[i] = Math.max(0, xi[i]);
          break;
        case 'add': {
          const other = out.get(l.inputs[1])!.data.subarray(s * size, (s + 1) * size);
          for (let i = 0; i < size; i++) yo[i] = xi[i] + other[i];
          break;
        }
        case 'padshortcut': {
          const before = Math.floor((OC - C) / 2);
          for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) for (let c = 0; c < C; c++) {
            yo[(oh * OW + ow) * OC + before + c] = xi[(oh * l.stride * W + ow * l.stride) * C + c];
          }
          break;
        }
        case 'globalavgpool':
          for (let i = 0; i < H * W; i++) for (let c = 0; c < C; c++) yo[c] += xi[i * C + c] / (H * W);
          break;
        case 'flatten':
          yo.set(xi);
          break;
        case 'dense': {
          const k = p(params, l.name, 'kernel');
          const b = p(params, l.name, 'bias');
          for (let u = 0; u < l.units; u++) {
            let acc = b[u];
            for (let i = 0; i < inSize; i++) acc += xi[i] * k[i * l.units + u];
            yo[u] = acc;
          }
          break;
        }
      }
    }
    out.set(l.name, { shape: [n, ...shape], data: y });
  }
  return out;
}

/** The reference interpreter as a catro TapRunner. */
export const referenceTapRunner = (graph: Graph, params: ParamStore) => ({
  async run(x: Float32Array, n: number, taps: string[]): Promise<Map<string, HostTensor>> {
    const all = referenceForward(graph, params, x, n);
    return new Map(taps.map((t) => [t, all.get(t)!]));
  },
  dispose() {},
});
