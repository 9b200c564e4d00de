/**
 * Graph + parameters → ONNX (IR version 8, opset 17), written with protobufjs from our own
 * onnx.proto subset. The model takes the normalised NCHW float tensor `input` [N, C, H, W]
 * (symbolic batch N) and returns `logits` [N, classes].
 *
 * Translation from the NHWC graph: conv kernels HWIO → OIHW; a BN whose input is a conv
 * read by nothing else is folded into that conv, any other BN becomes Mul + Add; a dense
 * layer after `flatten` gets its rows permuted from (h, w, c) to (c, h, w) order; the
 * option-A shortcut is Slice (steps) + Pad. The same graph and parameters always give the
 * same bytes (fields and nodes are written in a fixed order).
 */
import { readFileSync } from 'node:fs';
import type { BatchNormLayer, ConvLayer, DenseLayer, Graph, Layer, ParamStore, Shape3 } from '../graph/ir.ts';
import { layerInputs, paramKey } from '../graph/ir.ts';
import { type ActShape, checkParams, inferShapes, inputLayer, isMap } from '../graph/shapes.ts';
import { type Attr, encodeModel, float, floatTensor, int, int64Tensor, ints, type NodeMsg, onnxModelType, type TensorMsg, valueInfo } from './builder.ts';

export { ONNX_IR_VERSION, ONNX_OPSET, onnxModelType } from './builder.ts';
export const PRODUCER_NAME = 'facet';

export interface ExportMeta {
  /** Class labels in output order (one per logit). */
  labels: string[];
  /** Per-channel normalisation the caller applies before `input` (x/255 − mean) / std. */
  mean: number[];
  std: number[];
  /** Dataset indices of the output classes; written as `facet.classes` when given. */
  classes?: number[];
  producerVersion?: string;
  /** More `facet.*`-style metadata, written after the standard keys in key order. */
  extra?: Record<string, string>;
}

/**
 * For the compiler's own inference sessions (teachers, validation, CATRO's taps), not for
 * shipped models: layer outputs to expose, and the host's NHWC layout on both ends.
 */
export interface ExportOptions {
  /** Layers whose outputs become extra graph outputs named after the layer (a tapped conv keeps its BN unfolded). */
  taps?: string[];
  /** `nhwc`: `input` is [N, H, W, C] and taps are NHWC, as the host-side tensors are; default NCHW. */
  layout?: 'nchw' | 'nhwc';
}

/** The graph output that carries tap `layer` (the logits layer is always `logits`). */
export function tapOutputName(layer: string, layout: 'nchw' | 'nhwc' = 'nchw', graph?: Graph): string {
  if (graph && layer === graph.output) return 'logits';
  return layout === 'nhwc' ? `${layer}.nhwc` : layer;
}

let packageVersion: string | undefined;
function facetVersion(): string {
  if (packageVersion === undefined) {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    packageVersion = pkg.version ?? '0.0.0';
  }
  return packageVersion;
}

/** HWIO → OIHW, as float64 for folding. */
function kernelToOihw(k: Float32Array, kh: number, kw: number, inC: number, outC: number): Float64Array {
  const out = new Float64Array(k.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < inC; i++)
        for (let o = 0; o < outC; o++) out[((o * inC + i) * kh + y) * kw + x] = k[((y * kw + x) * inC + i) * outC + o]!;
  return out;
}

/** Per-channel y = x·scale + shift equal to eval-mode BN. */
function bnAffine(params: ParamStore, bn: BatchNormLayer): { scale: Float64Array; shift: Float64Array } {
  const g = params.get(paramKey(bn.name, 'gamma'))!.data;
  const b = params.get(paramKey(bn.name, 'beta'))!.data;
  const m = params.get(paramKey(bn.name, 'mean'))!.data;
  const v = params.get(paramKey(bn.name, 'variance'))!.data;
  const scale = new Float64Array(g.length);
  const shift = new Float64Array(g.length);
  for (let c = 0; c < g.length; c++) {
    scale[c] = g[c]! / Math.sqrt(v[c]! + bn.eps);
    shift[c] = b[c]! - m[c]! * scale[c]!;
  }
  return { scale, shift };
}

function checkMeta(graph: Graph, meta: ExportMeta, classes: number, channels: number): void {
  const where = `exportOnnx(${graph.arch})`;
  if (!Array.isArray(meta.labels) || meta.labels.length !== classes || meta.labels.some((l) => typeof l !== 'string')) {
    throw new Error(`${where}: meta.labels must be ${classes} strings (one per logit), got ${JSON.stringify(meta.labels)}`);
  }
  for (const field of ['mean', 'std'] as const) {
    const v = meta[field];
    if (!Array.isArray(v) || v.length !== channels || v.some((x) => !Number.isFinite(x))) {
      throw new Error(`${where}: meta.${field} must be ${channels} finite numbers (one per input channel), got ${JSON.stringify(v)}`);
    }
  }
  if (meta.std.some((s) => s <= 0)) throw new Error(`${where}: meta.std must be > 0, got ${JSON.stringify(meta.std)}`);
  if (meta.classes !== undefined && (meta.classes.length !== classes || meta.classes.some((c) => !Number.isInteger(c) || c < 0))) {
    throw new Error(`${where}: meta.classes must be ${classes} non-negative integer dataset indices, got ${JSON.stringify(meta.classes)}`);
  }
}

export function exportOnnx(graph: Graph, params: ParamStore, meta: ExportMeta, options: ExportOptions = {}): Uint8Array {
  const shapes = inferShapes(graph);
  const taps = options.taps ?? [];
  for (const t of taps) if (!shapes.has(t)) throw new Error(`exportOnnx(${graph.arch}): tap "${t}" is not a layer`);
  const nhwc = options.layout === 'nhwc';
  checkParams(graph, params);
  const input = inputLayer(graph);
  const [inH, inW, inC] = input.shape;
  const outShape = shapes.get(graph.output)!;
  checkMeta(graph, meta, outShape[0]!, inC);

  const consumers = new Map<string, Layer[]>();
  for (const l of graph.layers) for (const n of layerInputs(l)) consumers.set(n, [...(consumers.get(n) ?? []), l]);
  const tensor = (layer: string): string => (layer === input.name ? (nhwc ? 'input.nchw' : 'input') : layer === graph.output ? 'logits' : layer);

  const nodes: NodeMsg[] = [];
  const inits: TensorMsg[] = [];
  const node = (op: string, name: string, inputs: string[], outputs: string[], attribute: Attr[] = []): void => {
    nodes.push({ input: inputs, output: outputs, name, op_type: op, attribute });
  };
  if (nhwc) node('Transpose', 'input.nchw', ['input'], ['input.nchw'], [ints('perm', [0, 3, 1, 2])]);
  /** BN layers folded into their conv, keyed by BN name. */
  const folded = new Set<string>();
  /** Dense layers reading an NHWC flatten: the (h, w, c) of the map. */
  const permuteRows = new Map<string, Shape3>();

  for (const layer of graph.layers) {
    const inputs = layerInputs(layer).map(tensor);
    const out = tensor(layer.name);
    const inShape = (): ActShape => shapes.get(layerInputs(layer)[0]!)!;
    switch (layer.kind) {
      case 'input':
        break;
      case 'conv': {
        const next = consumers.get(layer.name) ?? [];
        const bn = next.length === 1 && next[0]!.kind === 'bn' && layer.name !== graph.output && !taps.includes(layer.name) ? (next[0] as BatchNormLayer) : undefined;
        emitConv(layer, bn, inShape() as Shape3, inputs[0]!, bn ? tensor(bn.name) : out);
        if (bn) folded.add(bn.name);
        break;
      }
      case 'bn': {
        if (folded.has(layer.name)) break;
        const { scale, shift } = bnAffine(params, layer);
        const s = inShape();
        const dims = isMap(s) ? [1, s[2], 1, 1] : [s[0]];
        inits.push(floatTensor(`${layer.name}.scale`, dims, scale), floatTensor(`${layer.name}.shift`, dims, shift));
        node('Mul', `${layer.name}.mul`, [inputs[0]!, `${layer.name}.scale`], [`${layer.name}.scaled`]);
        node('Add', layer.name, [`${layer.name}.scaled`, `${layer.name}.shift`], [out]);
        break;
      }
      case 'relu':
        node('Relu', layer.name, inputs, [out]);
        break;
      case 'add':
        node('Add', layer.name, inputs, [out]);
        break;
      case 'maxpool':
      case 'avgpool': {
        const p = layer.pad;
        const attrs = [ints('kernel_shape', [layer.kernel, layer.kernel]), ints('strides', [layer.stride, layer.stride]), ints('pads', [p, p, p, p])];
        if (layer.kind === 'avgpool') attrs.push(int('count_include_pad', 0));
        node(layer.kind === 'maxpool' ? 'MaxPool' : 'AveragePool', layer.name, inputs, [out], attrs);
        break;
      }
      case 'globalavgpool':
        node('GlobalAveragePool', `${layer.name}.pool`, inputs, [`${layer.name}.pooled`]);
        node('Flatten', layer.name, [`${layer.name}.pooled`], [out], [int('axis', 1)]);
        break;
      case 'flatten': {
        const s = inShape();
        const next = consumers.get(layer.name) ?? [];
        // NCHW and NHWC flatten orders agree when there is one pixel or one channel.
        const sameOrder = !isMap(s) || s[0] * s[1] === 1 || s[2] === 1;
        if (sameOrder) {
          node('Flatten', layer.name, inputs, [out], [int('axis', 1)]);
        } else if (next.length > 0 && next.every((l) => l.kind === 'dense') && layer.name !== graph.output) {
          for (const d of next) permuteRows.set(d.name, s as Shape3);
          node('Flatten', layer.name, inputs, [out], [int('axis', 1)]);
        } else {
          node('Transpose', `${layer.name}.nhwc`, inputs, [`${layer.name}.nhwc`], [ints('perm', [0, 2, 3, 1])]);
          node('Flatten', layer.name, [`${layer.name}.nhwc`], [out], [int('axis', 1)]);
        }
        break;
      }
      case 'dense':
        emitDense(layer, inShape()[0]!, inputs[0]!, out);
        break;
      case 'padshortcut': {
        const [h, w, c] = inShape() as Shape3;
        const st = layer.stride;
        inits.push(
          int64Tensor(`${layer.name}.starts`, [0, 0]),
          int64Tensor(`${layer.name}.ends`, [h, w]),
          int64Tensor(`${layer.name}.axes`, [2, 3]),
          int64Tensor(`${layer.name}.steps`, [st, st]),
        );
        const extra = layer.filters - c;
        const sliced = extra > 0 ? `${layer.name}.sliced` : out;
        node('Slice', `${layer.name}.slice`, [inputs[0]!, `${layer.name}.starts`, `${layer.name}.ends`, `${layer.name}.axes`, `${layer.name}.steps`], [sliced]);
        if (extra > 0) {
          const before = Math.floor(extra / 2);
          inits.push(int64Tensor(`${layer.name}.pads`, [0, before, 0, 0, 0, extra - before, 0, 0]));
          node('Pad', layer.name, [sliced, `${layer.name}.pads`], [out]);
        }
        break;
      }
      default:
        throw new Error(`exportOnnx(${graph.arch}): layer "${(layer as Layer).name}" has unsupported kind "${(layer as { kind: string }).kind}"`);
    }
  }

  function emitConv(layer: ConvLayer, bn: BatchNormLayer | undefined, s: Shape3, x: string, out: string): void {
    const inCh = s[2];
    const outC = layer.filters;
    const k = layer.kernel;
    const w = kernelToOihw(params.get(paramKey(layer.name, 'kernel'))!.data, k, k, inCh, outC);
    const b = new Float64Array(outC);
    if (layer.bias) b.set(params.get(paramKey(layer.name, 'bias'))!.data);
    if (bn) {
      const { scale, shift } = bnAffine(params, bn);
      const per = inCh * k * k;
      for (let o = 0; o < outC; o++) {
        for (let i = 0; i < per; i++) w[o * per + i]! *= scale[o]!;
        b[o] = b[o]! * scale[o]! + shift[o]!;
      }
    }
    inits.push(floatTensor(`${layer.name}.W`, [outC, inCh, k, k], w));
    const ins = [x, `${layer.name}.W`];
    if (layer.bias || bn) {
      inits.push(floatTensor(`${layer.name}.B`, [outC], b));
      ins.push(`${layer.name}.B`);
    }
    const p = layer.pad;
    node('Conv', bn ? `${layer.name}+${bn.name}` : layer.name, ins, [out], [
      ints('kernel_shape', [k, k]),
      ints('strides', [layer.stride, layer.stride]),
      ints('pads', [p, p, p, p]),
    ]);
  }

  function emitDense(layer: DenseLayer, inN: number, x: string, out: string): void {
    const kernel = params.get(paramKey(layer.name, 'kernel'))!.data;
    const units = layer.units;
    let rows = kernel;
    const map = permuteRows.get(layer.name);
    if (map) {
      const [h, w, c] = map;
      rows = new Float32Array(kernel.length);
      for (let y = 0; y < h; y++)
        for (let xx = 0; xx < w; xx++)
          for (let ch = 0; ch < c; ch++) {
            const from = ((y * w + xx) * c + ch) * units;
            const to = ((ch * h + y) * w + xx) * units;
            rows.set(kernel.subarray(from, from + units), to);
          }
    }
    inits.push(floatTensor(`${layer.name}.W`, [inN, units], rows));
    inits.push(floatTensor(`${layer.name}.B`, [units], params.get(paramKey(layer.name, 'bias'))!.data));
    node('Gemm', layer.name, [x, `${layer.name}.W`, `${layer.name}.B`], [out], [float('alpha', 1), float('beta', 1)]);
  }

  const metadata: [string, string][] = [
    ['facet.arch', graph.arch],
    ['facet.labels', JSON.stringify(meta.labels)],
  ];
  if (meta.classes) metadata.push(['facet.classes', JSON.stringify(meta.classes)]);
  metadata.push(['facet.mean', JSON.stringify(meta.mean)], ['facet.std', JSON.stringify(meta.std)]);
  for (const key of Object.keys(meta.extra ?? {}).sort()) metadata.push([key, meta.extra![key]!]);

  // Taps leave the graph as they are (NCHW maps, [N, F] vectors) or, in the host layout, as NHWC.
  const tapOutputs = taps
    .filter((t) => t !== graph.output)
    .map((t) => {
      const s = shapes.get(t)!;
      const name = tensor(t);
      if (!nhwc) return valueInfo(name, ['N', ...(isMap(s) ? [s[2], s[0], s[1]] : s)]);
      const out = tapOutputName(t, 'nhwc');
      if (isMap(s)) node('Transpose', out, [name], [out], [ints('perm', [0, 2, 3, 1])]);
      else node('Identity', out, [name], [out]);
      return valueInfo(out, ['N', ...s]);
    });
  return encodeModel(
    {
      name: graph.arch,
      nodes,
      initializers: inits,
      inputs: [valueInfo('input', nhwc ? ['N', inH, inW, inC] : ['N', inC, inH, inW])],
      outputs: [valueInfo('logits', ['N', outShape[0]!]), ...tapOutputs],
      producerName: PRODUCER_NAME,
      producerVersion: meta.producerVersion ?? facetVersion(),
      metadata,
    },
    `exportOnnx(${graph.arch})`,
  );
}

export interface OnnxSummary {
  irVersion: number;
  opset: number;
  producerName: string;
  producerVersion: string;
  metadata: Record<string, string>;
  ops: string[];
}

/** Decodes the parts of an ONNX file that Facet writes (for checks and `facet info`). */
export function readOnnxSummary(bytes: Uint8Array): OnnxSummary {
  const type = onnxModelType();
  const m = type.toObject(type.decode(bytes), { longs: Number, defaults: true }) as {
    ir_version: number;
    opset_import: { domain: string; version: number }[];
    producer_name: string;
    producer_version: string;
    metadata_props: { key: string; value: string }[];
    graph: { node: { op_type: string }[] };
  };
  return {
    irVersion: m.ir_version,
    opset: m.opset_import.find((o) => o.domain === '')?.version ?? 0,
    producerName: m.producer_name,
    producerVersion: m.producer_version,
    metadata: Object.fromEntries(m.metadata_props.map((p) => [p.key, p.value])),
    ops: m.graph.node.map((n) => n.op_type),
  };
}
