/**
 * Seeded random model graphs for the tests that hold one interpreter of the graph IR
 * against another: the ONNX exporter (test/onnx/random-graphs.test.ts) and the ort training
 * graphs (test/engine/). A failing seed names a graph that can be rebuilt.
 */
import { initParams } from '../../compiler/graph/builders.ts';
import type { Graph, Layer, ParamStore, Shape3 } from '../../compiler/graph/ir.ts';
import { type ActShape, inferLayerShapes, inferShapes } from '../../compiler/graph/shapes.ts';
import { TestRng } from '../nn/test-rng.ts';

export const pick = <T>(rng: TestRng, xs: readonly T[]): T => xs[Math.floor(rng.float() * xs.length)]!;
export const randInt = (rng: TestRng, lo: number, hi: number): number => lo + Math.floor(rng.float() * (hi - lo + 1));

/**
 * A random valid graph: a chain of feature-map
 * layers (conv with or without BN, BN, ReLU, pools with and without padding, option-A
 * shortcuts, adds between branches) on an odd, often non-square input of 1 or 3 channels,
 * then a head: global average pool or flatten (NHWC and NCHW orders differ unless the map
 * is 1×1 or has one channel), optionally ReLU and a BN on the vector, a dense layer, and
 * sometimes a BN after the dense layer. `feature` is left unset. The first layer is a conv,
 * so every later layer has a gradient path to a parameter.
 */
export function randomGraph(seed: number): Graph {
  const rng = new TestRng(seed);
  const input: Shape3 = [randInt(rng, 3, 11), randInt(rng, 3, 11), pick(rng, [1, 3])];
  const layers: Layer[] = [{ kind: 'input', name: 'input', shape: input }];
  const shapes = new Map<string, ActShape>([['input', input]]);
  let last = 'input';
  let n = 0;
  const push = (layer: Layer): void => {
    const s = inferLayerShapes({ arch: 'trial', layers: [...layers, layer], output: layer.name });
    layers.push(layer);
    shapes.set(layer.name, s.get(layer.name)!);
    last = layer.name;
  };
  // Something trainable first, so every later layer has a gradient path to a parameter.
  const first = Math.min(randInt(rng, 1, 3), input[0], input[1]);
  push({ kind: 'conv', name: `l${n++}`, input: 'input', filters: randInt(rng, 1, 5), kernel: first, stride: randInt(rng, 1, 2), pad: randInt(rng, 0, first - 1), bias: rng.float() < 0.5 });
  const steps = randInt(rng, 2, 7);
  for (let i = 0; i < steps; i++) {
    const [h, w, c] = shapes.get(last) as Shape3;
    const name = `l${n++}`;
    const op = pick(rng, ['conv', 'conv', 'convbn', 'bn', 'relu', 'pool', 'padshortcut', 'add'] as const);
    if (op === 'conv' || op === 'convbn') {
      const kernel = Math.min(randInt(rng, 1, 3), h, w);
      push({ kind: 'conv', name, input: last, filters: randInt(rng, 1, 5), kernel, stride: randInt(rng, 1, 2), pad: randInt(rng, 0, kernel - 1), bias: rng.float() < 0.5 });
      if (op === 'convbn') push({ kind: 'bn', name: `${name}.bn`, input: name, eps: pick(rng, [1e-5, 1e-3]), momentum: 0.9 });
    } else if (op === 'bn') {
      push({ kind: 'bn', name, input: last, eps: 1e-5, momentum: 0.9 });
    } else if (op === 'relu') {
      push({ kind: 'relu', name, input: last });
    } else if (op === 'pool') {
      const kernel = Math.min(randInt(rng, 1, 3), h, w);
      const kind = pick(rng, ['maxpool', 'avgpool'] as const);
      const pad = randInt(rng, 0, kernel >> 1);
      push({ kind, name, input: last, kernel, stride: randInt(rng, 1, 2), pad });
    } else if (op === 'padshortcut') {
      push({ kind: 'padshortcut', name, input: last, stride: randInt(rng, 1, 2), filters: c + randInt(rng, 0, 3) });
    } else {
      // Add the current tensor to an earlier one of the same shape, or else to its own ReLU.
      const same = [...shapes].filter(([k, s]) => k !== last && k !== 'input' && s.join() === [h, w, c].join()).map(([k]) => k);
      const a = last;
      let b: string;
      if (same.length > 0) b = pick(rng, same);
      else push({ kind: 'relu', name: (b = `${name}.r`), input: last });
      push({ kind: 'add', name, inputs: [a, b] });
    }
  }
  const [h, w] = shapes.get(last) as Shape3;
  if (rng.float() < 0.5 || h * w === 1) push({ kind: 'globalavgpool', name: 'head', input: last });
  else push({ kind: 'flatten', name: 'head', input: last });
  if (rng.float() < 0.3) push({ kind: 'relu', name: 'head.relu', input: last });
  if (rng.float() < 0.3) push({ kind: 'bn', name: 'head.bn', input: last, eps: 1e-3, momentum: 0.9 });
  push({ kind: 'dense', name: 'fc', input: last, units: randInt(rng, 2, 5) });
  if (rng.float() < 0.3) push({ kind: 'bn', name: 'fc.bn', input: 'fc', eps: 1e-5, momentum: 0.9 });
  const graph: Graph = { arch: `random-${seed}`, layers, output: last };
  inferShapes(graph);
  return graph;
}

/** Initial parameters with BN γ, β and the running statistics moved away from 1 and 0. */
export function randomParams(graph: Graph, seed: number): ParamStore {
  const rng = new TestRng(seed);
  const p = initParams(graph, rng);
  for (const [key, t] of p) {
    const n = t.data.length;
    if (key.endsWith('/gamma')) t.data.set(rng.uniform(n, 0.5, 1.5));
    if (key.endsWith('/beta') || key.endsWith('/mean') || key.endsWith('/bias')) t.data.set(rng.uniform(n, -0.5, 0.5));
    if (key.endsWith('/variance')) t.data.set(rng.uniform(n, 0.5, 2));
  }
  return p;
}

