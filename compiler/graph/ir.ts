/**
 * The one model description. Every part of the compiler reads this graph: the tfjs
 * interpreter (training), the pruner (edits it), the MACs/params counter and the ONNX
 * exporter (walk it). Nothing here depends on a framework.
 *
 * Conventions (all interpreters must follow them):
 * - Activations are NHWC. A graph describes one sample; the batch dimension is implicit.
 * - Layers are listed in topological order; a layer names its input(s) by layer name.
 * - Parameters live outside the graph in a {@link ParamStore}, keyed `<layer>/<param>`:
 *     conv:  `kernel` [kh, kw, inC, outC] (HWIO, tfjs' native layout), `bias` [outC] if `bias`
 *     bn:    `gamma`, `beta` [C] (trained); `mean`, `variance` [C] (running statistics)
 *     dense: `kernel` [in, units], `bias` [units]
 * - `flatten` flattens in NHWC order (h, w, c). The ONNX exporter (NCHW) permutes the
 *   following dense layer's rows so the exported model computes the same function.
 * - `pad` is symmetric zero padding in pixels. Pools with pad > 0 are not used by the
 *   builders; avgpool never counts padding.
 */

export type Shape3 = [height: number, width: number, channels: number];

interface LayerBase {
  /** Unique name; parameters are keyed by it. */
  name: string;
}

export interface InputLayer extends LayerBase {
  kind: 'input';
  shape: Shape3;
}
export interface ConvLayer extends LayerBase {
  kind: 'conv';
  input: string;
  filters: number;
  kernel: number;
  stride: number;
  pad: number;
  bias: boolean;
}
export interface BatchNormLayer extends LayerBase {
  kind: 'bn';
  input: string;
  eps: number;
  /** Running-statistics update: running = momentum·running + (1 − momentum)·batch (Keras convention). */
  momentum: number;
}
export interface ReluLayer extends LayerBase {
  kind: 'relu';
  input: string;
}
export interface AddLayer extends LayerBase {
  kind: 'add';
  inputs: [string, string];
}
export interface PoolLayer extends LayerBase {
  kind: 'maxpool' | 'avgpool';
  input: string;
  kernel: number;
  stride: number;
  pad: number;
}
export interface GlobalAvgPoolLayer extends LayerBase {
  kind: 'globalavgpool';
  input: string;
}
export interface FlattenLayer extends LayerBase {
  kind: 'flatten';
  input: string;
}
export interface DenseLayer extends LayerBase {
  kind: 'dense';
  input: string;
  units: number;
}

/**
 * Parameter-free residual shortcut ("option A" of the CIFAR ResNets): keep every
 * `stride`-th row and column (starting at 0), then zero-pad channels up to `filters`,
 * floor((filters − C) / 2) zero channels before the input's and the rest after.
 */
export interface PadShortcutLayer extends LayerBase {
  kind: 'padshortcut';
  input: string;
  stride: number;
  filters: number;
}

export type Layer =
  | InputLayer
  | ConvLayer
  | BatchNormLayer
  | ReluLayer
  | AddLayer
  | PoolLayer
  | GlobalAvgPoolLayer
  | FlattenLayer
  | DenseLayer
  | PadShortcutLayer;

export type LayerKind = Layer['kind'];

export interface Graph {
  /** Human-readable architecture id, e.g. `resnet20-w1`. */
  arch: string;
  layers: Layer[];
  /** Name of the layer whose output is the logits. */
  output: string;
  /** Name of the layer whose output is the distilled feature (FusionDistill). */
  feature?: string;
}

/** A framework-independent tensor: row-major data with its shape. */
export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

/** All parameters (trained and running statistics) of a graph, keyed `<layer>/<param>`. */
export type ParamStore = Map<string, HostTensor>;

export const paramKey = (layer: string, param: string): string => `${layer}/${param}`;

/** Parameters that gradient descent updates (running BN statistics excluded). */
export const TRAINABLE_PARAMS: Record<LayerKind, readonly string[]> = {
  input: [],
  conv: ['kernel', 'bias'],
  bn: ['gamma', 'beta'],
  relu: [],
  add: [],
  maxpool: [],
  avgpool: [],
  globalavgpool: [],
  flatten: [],
  dense: ['kernel', 'bias'],
  padshortcut: [],
};

export function layerInputs(layer: Layer): string[] {
  switch (layer.kind) {
    case 'input':
      return [];
    case 'add':
      return [...layer.inputs];
    default:
      return [layer.input];
  }
}

export function findLayer(graph: Graph, name: string): Layer {
  const layer = graph.layers.find((l) => l.name === name);
  if (!layer) throw new Error(`graph ${graph.arch}: no layer named "${name}"`);
  return layer;
}
