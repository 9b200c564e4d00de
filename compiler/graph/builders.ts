/**
 * Architecture builders (CIFAR-style ResNets, a small VGG) and parameter initialisation.
 * Layer names are stable and readable because the pruner, checkpoints and the CLI's
 * layer table refer to them: `stem.conv`, `s2b0.conv1`, `s2b0.short`, `fc`, ...
 */
import type { Graph, Layer, ParamStore, Shape3 } from './ir.ts';
import { paramKey } from './ir.ts';
import { type ActShape, inferLayerShapes, inferShapes, paramShapes, windowOut } from './shapes.ts';

export type Shortcut = 'projection' | 'A';
export type ResnetHead = 'gap' | 'pool2x2';

export interface ResnetOptions {
  /** 6n + 2: 20, 32, 44, 56, 110, ... */
  depth: number;
  /** Channel multiplier on the 16/32/64 stages (channels are rounded, at least 1). */
  width?: number;
  input: Shape3;
  classes: number;
  /** `projection` (1×1 conv stride 2 + BN, the default) or `A` (subsample + zero channels). */
  shortcut?: Shortcut;
  /** `gap`: global average pool → dense; `pool2x2`: adaptive average pool to 2×2 → flatten → dense. */
  head?: ResnetHead;
}

const BN_EPS = 1e-5;
/** Keras convention (ir.ts): 0.9 here equals PyTorch's momentum 0.1. */
const BN_MOMENTUM = 0.9;

/** Appends layers and remembers the latest one, so builders read top to bottom. */
class GraphBuilder {
  readonly layers: Layer[] = [];
  last = '';
  add<L extends Layer>(layer: L): string {
    this.layers.push(layer);
    this.last = layer.name;
    return layer.name;
  }
  conv(name: string, input: string, filters: number, kernel: number, stride: number): string {
    return this.add({ kind: 'conv', name, input, filters, kernel, stride, pad: (kernel - 1) >> 1, bias: false });
  }
  bn(name: string, input: string): string {
    return this.add({ kind: 'bn', name, input, eps: BN_EPS, momentum: BN_MOMENTUM });
  }
  relu(name: string, input: string): string {
    return this.add({ kind: 'relu', name, input });
  }
}

function checkPositiveInt(what: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${what} must be a positive integer, got ${v}`);
}

function checkInput(input: Shape3): void {
  if (!Array.isArray(input) || input.length !== 3) throw new Error(`input must be [h, w, c], got ${JSON.stringify(input)}`);
  input.forEach((v, i) => checkPositiveInt(`input[${i}]`, v));
}

/**
 * Kernel and stride of a plain average pool equal to PyTorch's AdaptiveAvgPool2d from
 * `size` to `out`, or undefined when its windows are not uniform. PyTorch's window i is
 * [floor(i·size/out), ceil((i+1)·size/out)).
 */
export function adaptivePoolWindow(size: number, out: number): { kernel: number; stride: number } | undefined {
  const starts: number[] = [];
  const ends: number[] = [];
  for (let i = 0; i < out; i++) {
    starts.push(Math.floor((i * size) / out));
    ends.push(Math.ceil(((i + 1) * size) / out));
  }
  const kernel = ends[0]! - starts[0]!;
  const stride = out > 1 ? starts[1]! - starts[0]! : 1;
  for (let i = 0; i < out; i++) {
    if (ends[i]! - starts[i]! !== kernel || starts[i] !== i * stride) return undefined;
  }
  // With pad 0 and floor mode the plain pool must produce exactly `out` windows.
  if (windowOut(size, kernel, stride, 0) !== out) return undefined;
  return { kernel, stride };
}

export function resnet(opts: ResnetOptions): Graph {
  const { depth, width = 1, input, classes, shortcut = 'projection', head = 'gap' } = opts;
  if (!Number.isInteger(depth) || depth < 8 || (depth - 2) % 6 !== 0) {
    throw new Error(`resnet depth must be 6n+2 with n ≥ 1 (20, 32, 56, ...), got ${depth}`);
  }
  if (!(width > 0)) throw new Error(`resnet width must be > 0, got ${width}`);
  checkInput(input);
  checkPositiveInt('classes', classes);
  if (shortcut !== 'projection' && shortcut !== 'A') throw new Error(`resnet shortcut must be "projection" or "A", got "${shortcut}"`);
  if (head !== 'gap' && head !== 'pool2x2') throw new Error(`resnet head must be "gap" or "pool2x2", got "${head}"`);

  const blocks = (depth - 2) / 6;
  const channels = [16, 32, 64].map((c) => Math.max(1, Math.round(c * width)));
  const g = new GraphBuilder();
  g.add({ kind: 'input', name: 'input', shape: [...input] });
  g.relu('stem.relu', g.bn('stem.bn', g.conv('stem.conv', 'input', channels[0]!, 3, 1)));
  let inC = channels[0]!;
  for (let s = 0; s < 3; s++) {
    const outC = channels[s]!;
    for (let b = 0; b < blocks; b++) {
      const p = `s${s + 1}b${b}`;
      const x = g.last;
      const stride = s > 0 && b === 0 ? 2 : 1;
      g.relu(`${p}.relu1`, g.bn(`${p}.bn1`, g.conv(`${p}.conv1`, x, outC, 3, stride)));
      const main = g.bn(`${p}.bn2`, g.conv(`${p}.conv2`, g.last, outC, 3, 1));
      let short = x;
      if (stride !== 1 || inC !== outC) {
        short =
          shortcut === 'A'
            ? g.add({ kind: 'padshortcut', name: `${p}.short`, input: x, stride, filters: outC })
            : g.bn(`${p}.short.bn`, g.conv(`${p}.short.conv`, x, outC, 1, stride));
      }
      g.relu(`${p}.relu`, g.add({ kind: 'add', name: `${p}.add`, inputs: [main, short] }));
      inC = outC;
    }
  }
  const feature = g.last;
  if (head === 'gap') {
    g.add({ kind: 'globalavgpool', name: 'gap', input: feature });
  } else {
    const [h, w] = inferLayerShapes({ arch: 'partial', layers: g.layers, output: feature }).get(feature) as Shape3;
    const win = adaptivePoolWindow(h, 2);
    const winW = adaptivePoolWindow(w, 2);
    if (!win || !winW || win.kernel !== winW.kernel || win.stride !== winW.stride) {
      throw new Error(`resnet head pool2x2: adaptive pooling of the ${h}×${w} feature map to 2×2 has non-uniform windows; use head "gap" or another input size`);
    }
    g.add({ kind: 'avgpool', name: 'pool', input: feature, kernel: win.kernel, stride: win.stride, pad: 0 });
    g.add({ kind: 'flatten', name: 'flatten', input: g.last });
  }
  g.add({ kind: 'dense', name: 'fc', input: g.last, units: classes });
  const graph: Graph = {
    arch: `resnet${depth}-w${width}-${shortcut === 'A' ? 'A' : 'proj'}-${head}`,
    layers: g.layers,
    output: 'fc',
    feature,
  };
  inferShapes(graph);
  return graph;
}

export interface VggOptions {
  /** Conv widths with `'M'` for 2×2 max pools; default a small CIFAR VGG. */
  stages?: (number | 'M')[];
  width?: number;
  input: Shape3;
  classes: number;
  /** `gap` (default): global average pool → dense; `flatten`: flatten → dense. */
  head?: 'gap' | 'flatten';
  /** Architecture name prefix (default `vgg<number of convs>`), e.g. `vgg11` for a preset. */
  name?: string;
}

export const VGG_SMALL: (number | 'M')[] = [32, 32, 'M', 64, 64, 'M', 128, 128, 'M'];

/** The standard VGG-11/13/16/19 conv stacks (configurations A, B, D, E of Simonyan & Zisserman). */
export const VGG_CONFIGS: Record<11 | 13 | 16 | 19, (number | 'M')[]> = {
  11: [64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'],
  13: [64, 64, 'M', 128, 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'],
  16: [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'],
  19: [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M', 512, 512, 512, 512, 'M'],
};

/** A plain VGG: conv3×3-BN-ReLU blocks with 2×2 max pools between them. */
export function vgg(opts: VggOptions): Graph {
  const { stages = VGG_SMALL, width = 1, input, classes, head = 'gap', name } = opts;
  checkInput(input);
  checkPositiveInt('classes', classes);
  if (!(width > 0)) throw new Error(`vgg width must be > 0, got ${width}`);
  if (!stages.some((s) => s !== 'M')) throw new Error('vgg stages need at least one conv width');
  const g = new GraphBuilder();
  g.add({ kind: 'input', name: 'input', shape: [...input] });
  let conv = 0;
  let pool = 0;
  for (const s of stages) {
    if (s === 'M') {
      g.add({ kind: 'maxpool', name: `pool${pool++}`, input: g.last, kernel: 2, stride: 2, pad: 0 });
    } else {
      checkPositiveInt('vgg stage width', s);
      const p = `conv${conv++}`;
      g.relu(`${p}.relu`, g.bn(`${p}.bn`, g.conv(`${p}.conv`, g.last, Math.max(1, Math.round(s * width)), 3, 1)));
    }
  }
  const feature = g.last;
  if (head === 'gap') g.add({ kind: 'globalavgpool', name: 'gap', input: feature });
  else g.add({ kind: 'flatten', name: 'flatten', input: feature });
  g.add({ kind: 'dense', name: 'fc', input: g.last, units: classes });
  const graph: Graph = { arch: `${name ?? `vgg${conv}`}-w${width}-${head}`, layers: g.layers, output: 'fc', feature };
  inferShapes(graph);
  return graph;
}

/** The part of shared/rng.ts's `Rng` that initialisation uses. */
export interface InitRng {
  float(): number;
  gaussian(): number;
}

/**
 * Fresh parameters: Kaiming-normal (fan_out, ReLU gain) conv kernels, PyTorch's default
 * dense init (kernel and bias uniform in ±1/√fan_in), BN γ=1 β=0 and running mean 0 var 1.
 * Visits parameters in graph order, so a seed gives the same parameters every time.
 */
export function initParams(graph: Graph, rng: InitRng): ParamStore {
  const shapes: Map<string, ActShape> = inferShapes(graph);
  const store: ParamStore = new Map();
  const uniform = (n: number, bound: number): Float32Array => {
    const d = new Float32Array(n);
    for (let i = 0; i < n; i++) d[i] = (rng.float() * 2 - 1) * bound;
    return d;
  };
  const fill = (n: number, v: number): Float32Array => new Float32Array(n).fill(v);
  const byName = new Map(graph.layers.map((l) => [l.name, l]));
  for (const [key, shape] of paramShapes(graph)) {
    const slash = key.lastIndexOf('/');
    const layerName = key.slice(0, slash);
    const param = key.slice(slash + 1);
    const layer = byName.get(layerName)!;
    const n = shape.reduce((p, v) => p * v, 1);
    let data: Float32Array;
    if (layer.kind === 'conv') {
      const inC = (shapes.get(layer.input) as Shape3)[2];
      if (param === 'kernel') {
        const std = Math.sqrt(2 / (layer.kernel * layer.kernel * layer.filters));
        data = new Float32Array(n);
        for (let i = 0; i < n; i++) data[i] = rng.gaussian() * std;
      } else {
        data = uniform(n, 1 / Math.sqrt(layer.kernel * layer.kernel * inC));
      }
    } else if (layer.kind === 'dense') {
      data = uniform(n, 1 / Math.sqrt((shapes.get(layer.input) as [number])[0]));
    } else {
      data = fill(n, param === 'gamma' || param === 'variance' ? 1 : 0);
    }
    store.set(key, { shape: [...shape], data });
  }
  return store;
}
