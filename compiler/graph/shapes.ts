/**
 * Shape inference and consistency checks for a {@link Graph}. Every consumer of a graph
 * (interpreter, counter, exporter, pruner) calls `inferShapes` first, so a malformed
 * graph fails here with a message naming the layer, not deep inside tfjs or onnxruntime.
 */
import type { Graph, Layer, ParamStore, Shape3 } from './ir.ts';
import { layerInputs, paramKey } from './ir.ts';

/** A per-sample activation shape: NHWC feature map or a flat vector. */
export type ActShape = Shape3 | [number];

export const isMap = (s: ActShape): s is Shape3 => s.length === 3;

/** Output size of a conv/pool window along one axis (floor mode, symmetric padding). */
export function windowOut(size: number, kernel: number, stride: number, pad: number): number {
  return Math.floor((size + 2 * pad - kernel) / stride) + 1;
}

/**
 * For a k×k, stride-s pool with symmetric padding p over an h×w map: how many of each
 * output window's pixels lie inside the image (row-major [oh·ow]), the divisor of an
 * average pool that never counts padding.
 */
export function poolWindowCounts(h: number, w: number, k: number, s: number, p: number): Float32Array {
  const oh = windowOut(h, k, s, p);
  const ow = windowOut(w, k, s, p);
  const counts = new Float32Array(oh * ow);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      const rows = Math.min(y * s - p + k, h) - Math.max(y * s - p, 0);
      const cols = Math.min(x * s - p + k, w) - Math.max(x * s - p, 0);
      counts[y * ow + x] = rows * cols;
    }
  }
  return counts;
}

function fail(graph: Graph, layer: Layer, msg: string): never {
  throw new Error(`graph ${graph.arch}: layer "${layer.name}" (${layer.kind}): ${msg}`);
}

const fmt = (s: ActShape): string => `[${s.join('×')}]`;

function positiveInt(graph: Graph, layer: Layer, field: string, v: number, min = 1): void {
  if (!Number.isInteger(v) || v < min) fail(graph, layer, `${field} must be an integer ≥ ${min}, got ${v}`);
}

function layerShape(graph: Graph, layer: Layer, ins: ActShape[]): ActShape {
  const map = (): Shape3 => {
    const s = ins[0]!;
    if (!isMap(s)) fail(graph, layer, `needs an H×W×C input, got the vector ${fmt(s)}`);
    return s;
  };
  switch (layer.kind) {
    case 'input': {
      const s = layer.shape;
      if (!Array.isArray(s) || s.length !== 3) fail(graph, layer, `shape must be [h, w, c], got ${JSON.stringify(s)}`);
      s.forEach((v, i) => positiveInt(graph, layer, `shape[${i}]`, v));
      return [...s];
    }
    case 'conv':
    case 'maxpool':
    case 'avgpool': {
      const [h, w, c] = map();
      positiveInt(graph, layer, 'kernel', layer.kernel);
      positiveInt(graph, layer, 'stride', layer.stride);
      positiveInt(graph, layer, 'pad', layer.pad, 0);
      const oh = windowOut(h, layer.kernel, layer.stride, layer.pad);
      const ow = windowOut(w, layer.kernel, layer.stride, layer.pad);
      if (oh < 1 || ow < 1) fail(graph, layer, `kernel ${layer.kernel} (pad ${layer.pad}) does not fit the ${h}×${w} input`);
      if (layer.kind === 'conv') {
        positiveInt(graph, layer, 'filters', layer.filters);
        return [oh, ow, layer.filters];
      }
      return [oh, ow, c];
    }
    case 'bn':
    case 'relu':
      return [...ins[0]!] as ActShape;
    case 'add': {
      const [a, b] = ins as [ActShape, ActShape];
      if (a.length !== b.length || a.some((v, i) => v !== b[i])) {
        fail(graph, layer, `inputs "${layer.inputs[0]}" ${fmt(a)} and "${layer.inputs[1]}" ${fmt(b)} differ in shape`);
      }
      return [...a] as ActShape;
    }
    case 'globalavgpool':
      return [map()[2]];
    case 'flatten': {
      const s = ins[0]!;
      return [s.reduce((p, v) => p * v, 1)];
    }
    case 'dense': {
      const s = ins[0]!;
      if (isMap(s)) fail(graph, layer, `needs a vector input (add flatten or globalavgpool), got ${fmt(s)}`);
      positiveInt(graph, layer, 'units', layer.units);
      return [layer.units];
    }
    case 'padshortcut': {
      const [h, w, c] = map();
      positiveInt(graph, layer, 'stride', layer.stride);
      if (!Number.isInteger(layer.filters) || layer.filters < c) {
        fail(graph, layer, `filters must be an integer ≥ the input's ${c} channels, got ${layer.filters}`);
      }
      return [Math.ceil(h / layer.stride), Math.ceil(w / layer.stride), layer.filters];
    }
    default:
      throw new Error(`graph ${graph.arch}: layer "${(layer as Layer).name}" has unknown kind "${(layer as { kind: string }).kind}"`);
  }
}

/**
 * Output shape of every layer, in graph order. Throws on duplicate names, unknown or
 * later-defined inputs, shape mismatches, and unknown `output`/`feature` names.
 */
export function inferShapes(graph: Graph): Map<string, ActShape> {
  const shapes = inferLayerShapes(graph);
  if (!shapes.has(graph.output)) throw new Error(`graph ${graph.arch}: output "${graph.output}" is not a layer`);
  const out = shapes.get(graph.output)!;
  if (isMap(out)) throw new Error(`graph ${graph.arch}: output "${graph.output}" must be a vector of logits, got ${fmt(out)}`);
  if (graph.feature !== undefined && !shapes.has(graph.feature)) {
    throw new Error(`graph ${graph.arch}: feature "${graph.feature}" is not a layer`);
  }
  return shapes;
}

/** Like {@link inferShapes} but ignores `output` and `feature`: for graphs under construction. */
export function inferLayerShapes(graph: Graph): Map<string, ActShape> {
  const shapes = new Map<string, ActShape>();
  const all = new Set(graph.layers.map((l) => l.name));
  if (graph.layers.length === 0) throw new Error(`graph ${graph.arch}: has no layers`);
  for (const layer of graph.layers) {
    if (typeof layer.name !== 'string' || layer.name === '') throw new Error(`graph ${graph.arch}: a ${layer.kind} layer has no name`);
    if (shapes.has(layer.name)) fail(graph, layer, 'duplicate layer name');
    const ins = layerInputs(layer).map((name) => {
      const s = shapes.get(name);
      if (s) return s;
      if (all.has(name)) fail(graph, layer, `input "${name}" is defined after this layer (layers must be in topological order)`);
      fail(graph, layer, `unknown input "${name}"`);
    });
    shapes.set(layer.name, layerShape(graph, layer, ins));
  }
  return shapes;
}

/** The single input layer of a graph. */
export function inputLayer(graph: Graph): Extract<Layer, { kind: 'input' }> {
  const inputs = graph.layers.filter((l) => l.kind === 'input');
  if (inputs.length !== 1) throw new Error(`graph ${graph.arch}: needs exactly one input layer, has ${inputs.length}`);
  return inputs[0] as Extract<Layer, { kind: 'input' }>;
}

/** Every parameter the graph needs, with its shape (see ir.ts for the layouts). */
export function paramShapes(graph: Graph): Map<string, number[]> {
  const shapes = inferShapes(graph);
  const out = new Map<string, number[]>();
  for (const layer of graph.layers) {
    const inShape = layer.kind === 'input' || layer.kind === 'add' ? undefined : shapes.get(layer.input)!;
    const channels = inShape ? inShape[inShape.length - 1]! : 0;
    switch (layer.kind) {
      case 'conv':
        out.set(paramKey(layer.name, 'kernel'), [layer.kernel, layer.kernel, channels, layer.filters]);
        if (layer.bias) out.set(paramKey(layer.name, 'bias'), [layer.filters]);
        break;
      case 'bn':
        for (const p of ['gamma', 'beta', 'mean', 'variance']) out.set(paramKey(layer.name, p), [channels]);
        break;
      case 'dense':
        out.set(paramKey(layer.name, 'kernel'), [inShape![0]!, layer.units]);
        out.set(paramKey(layer.name, 'bias'), [layer.units]);
        break;
      default:
        break;
    }
  }
  return out;
}

/** Throws, naming the key, if a parameter is missing or has the wrong shape or size. */
export function checkParams(graph: Graph, params: ParamStore): void {
  for (const [key, shape] of paramShapes(graph)) {
    const t = params.get(key);
    if (!t) throw new Error(`graph ${graph.arch}: parameter "${key}" is missing`);
    const size = shape.reduce((p, v) => p * v, 1);
    if (t.shape.length !== shape.length || t.shape.some((v, i) => v !== shape[i])) {
      throw new Error(`graph ${graph.arch}: parameter "${key}" has shape [${t.shape}], expected [${shape}]`);
    }
    if (t.data.length !== size) throw new Error(`graph ${graph.arch}: parameter "${key}" has ${t.data.length} values, expected ${size}`);
  }
}
